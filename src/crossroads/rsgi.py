"""granian's native interface, RSGI: the body arrives in one call and a
reply leaves in one, with none of ASGI's per-message dicts — the
interface ``crossroads serve`` runs on granian.

HTTP requests become the server's :class:`Wire`. The WebSocket door speaks
ASGI messages; :func:`websocket_messages` gives it ``receive``/``send`` over
RSGI's WebSocket protocol (not the hot path: one adapter per socket).
"""

from __future__ import annotations

import logging
from typing import Any

from crossroads.http import (
    MAX_BODY,
    STREAM_HEADERS,
    BodyTooLarge,
    ClientGone,
    Message,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    StreamReply,
    close_chunks,
    is_disconnect,
)
from crossroads.record import RequestRecord

log = logging.getLogger("crossroads.http")

_STREAM_HEADERS = [(k.decode(), v.decode()) for k, v in STREAM_HEADERS]
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def _text_headers(content_type: bytes, extra: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    headers = [("content-type", content_type.decode("latin-1"))]
    headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in extra)
    return headers


def client_host(client: str) -> str | None:
    """``"127.0.0.1:5000"`` or ``"[::1]:5000"`` -> the address alone."""
    if not client:
        return None
    host = client.rsplit(":", 1)[0] if ":" in client else client
    return host.strip("[]") or None


class RsgiWire:
    __slots__ = ("protocol", "scope")

    def __init__(self, scope: Any, protocol: Any) -> None:
        self.scope, self.protocol = scope, protocol

    def head(self, record: RequestRecord) -> Request:
        scope = self.scope
        return Request(scope.method, scope.path, scope.query_string.encode("latin-1"), dict(scope.headers.items()),
                       client_host=client_host(scope.client), record=record)

    async def read_body(self, request: Request, limit: int = MAX_BODY) -> None:
        headers = request.headers
        declared = headers.get("content-length")
        try:
            if declared is not None and declared.isdigit():
                if int(declared) > limit:
                    raise BodyTooLarge()
                request.body = await self.protocol() if declared != "0" else b""
                return
            if request.method in _BODILESS and "transfer-encoding" not in headers:
                return
            chunks: list[bytes] = []  # a body of unknown length: counted as it comes
            size = 0
            async for chunk in self.protocol:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge()
                chunks.append(chunk)
            request.body = b"".join(chunks)
        except (BodyTooLarge, ClientGone):
            raise
        except Exception as exc:
            if is_disconnect(exc):
                raise ClientGone() from None
            raise

    async def client_left(self) -> None:
        await self.protocol.client_disconnect()

    async def reply(self, reply: Reply, head_only: bool = False) -> None:
        headers = _text_headers(reply.content_type, reply.headers)
        if head_only:
            headers.append(("content-length", str(len(reply.body))))
            self.protocol.response_empty(reply.status, headers)
        else:
            self.protocol.response_bytes(reply.status, headers, reply.body)

    async def stream(self, reply: StreamReply) -> None:
        headers = _text_headers(reply.content_type, reply.headers)
        headers.extend(_STREAM_HEADERS)
        chunks = reply.chunks
        try:
            transport = self.protocol.response_stream(reply.status, headers)
            async for chunk in chunks:
                if chunk:
                    await transport.send_bytes(chunk)
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            log.debug("client disconnected mid-stream")
        finally:
            await close_chunks(chunks)


def websocket_messages(scope: Any, protocol: Any) -> tuple[Scope, Receive, Send]:
    """An ASGI view of one RSGI WebSocket: the scope the door reads, and
    ``receive``/``send`` speaking ASGI's ``websocket.*`` messages."""
    asgi_scope: Scope = {
        "type": "websocket", "path": scope.path, "query_string": scope.query_string.encode("latin-1"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": (client_host(scope.client), 0),
    }
    state: dict[str, Any] = {"transport": None, "connected": False}

    async def receive() -> Message:
        if not state["connected"]:
            state["connected"] = True
            return {"type": "websocket.connect"}
        transport = state["transport"]
        if transport is None:
            return {"type": "websocket.disconnect", "code": 1006}
        try:
            message = await transport.receive()
        except Exception as exc:
            if is_disconnect(exc):
                return {"type": "websocket.disconnect", "code": 1006}
            raise
        kind = int(message.kind)
        if kind == 0:  # close
            return {"type": "websocket.disconnect", "code": 1000}
        if kind == 2:  # text
            return {"type": "websocket.receive", "text": message.data}
        return {"type": "websocket.receive", "bytes": message.data}

    async def send(message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            state["transport"] = await protocol.accept()
        elif kind == "websocket.send":
            transport = state["transport"]
            if transport is None:
                raise RuntimeError("websocket closed")
            if message.get("text") is not None:
                await transport.send_str(message["text"])
            else:
                await transport.send_bytes(message.get("bytes") or b"")
        elif kind == "websocket.close" and state["transport"] is not None:
            # (before the accept, nothing: returning without one makes granian refuse the upgrade with 403)
            state["transport"] = None
            protocol.close(message.get("code", 1000))

    return asgi_scope, receive, send
