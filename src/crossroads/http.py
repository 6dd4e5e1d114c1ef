"""Requests and replies as the server and the front doors see them,
whichever interface (ASGI or RSGI) brought the request: no framework."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson

from crossroads.record import RequestRecord

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 64 * 1024 * 1024


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query_string: bytes
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    client_key: str | None = None  # the client key presented (set after the access check)
    client_host: str | None = None
    record: RequestRecord = field(default_factory=RequestRecord.detached)  # what it did (the server's)
    _query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string.decode("latin-1"))) if self.query_string else {}
        return self._query


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class StreamReply:
    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: bytes = b"text/event-stream"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_reply(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Reply:
    return Reply(status, orjson.dumps(payload), headers=headers or [])


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its request was answered."""


class Wire(Protocol):
    """The connection a request came on, as the server's interface presents
    it (``crossroads.asgi``, ``crossroads.rsgi``): the server answers through
    this and never sees the interface itself."""

    def head(self, record: RequestRecord) -> Request:
        """The request without its body: enough to route it and check its key."""

    async def read_body(self, request: Request, limit: int) -> None:
        """Read the body into ``request``; a declared or actual size over
        ``limit`` raises BodyTooLarge at once, a client that leaves ClientGone."""

    async def client_left(self) -> None:
        """Returns when the client goes away (called once the body is in)."""

    async def reply(self, reply: Reply, head_only: bool = False) -> None:
        ...

    async def stream(self, reply: StreamReply) -> None:
        """Send the chunks; the chunk iterator is closed however it ends
        (which releases the upstream connection), and a client that leaves
        ends it quietly."""


STREAM_HEADERS = ((b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


async def close_chunks(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


def is_disconnect(exc: BaseException) -> bool:
    """The servers raise their own error types once the client is gone."""
    return isinstance(exc, ConnectionError | OSError) or type(exc).__name__ in {
        "ClientDisconnected", "ClientDisconnect", "ConnectionClosed", "RSGIProtocolClosed"} or (
        isinstance(exc, RuntimeError) and "closed" in str(exc).lower())
