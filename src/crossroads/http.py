"""A minimal ASGI request/response layer for the hot path (no framework)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from crossroads.record import RequestRecord

log = logging.getLogger("crossroads.http")

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


def head_request(scope: Scope) -> Request:
    """The request without its body: enough to route it and check its key."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    return Request(scope["method"], scope["path"], scope.get("query_string", b""), headers,
                   client_host=client[0] if client else None)


async def read_body(request: Request, receive: Receive, limit: int = MAX_BODY) -> None:
    """Read the body into ``request``; a declared or actual size over ``limit``
    stops the read at once (the caller bounds the time it may take)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_reply(send: Send, reply: Reply, head_only: bool = False) -> None:
    headers = [(b"content-type", reply.content_type), (b"content-length", str(len(reply.body)).encode())]
    headers.extend(reply.headers)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else reply.body})


async def send_stream(send: Send, reply: StreamReply) -> None:
    """Stream chunks to the client. The caller's in-flight watcher cancels this
    when the client goes away; either way the chunk iterator is closed, which
    releases the upstream connection."""
    headers = [(b"content-type", reply.content_type), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
    headers.extend(reply.headers)
    chunks = reply.chunks
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        async for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception as exc:
        if not _is_disconnect(exc):
            raise
        log.debug("client disconnected mid-stream")
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError | OSError) or type(exc).__name__ in {
        "ClientDisconnected", "ClientDisconnect", "ConnectionClosed"} or (
        isinstance(exc, RuntimeError) and "closed" in str(exc).lower())
