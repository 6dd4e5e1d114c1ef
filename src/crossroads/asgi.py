"""The ASGI side of the server (uvicorn, and granian's ASGI interface): a
request's scope, ``receive`` and ``send`` as the server's :class:`Wire`."""

from __future__ import annotations

import logging

from crossroads.http import (
    MAX_BODY,
    STREAM_HEADERS,
    BodyTooLarge,
    ClientGone,
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


class AsgiWire:
    __slots__ = ("receive", "scope", "send")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self.receive, self.send = scope, receive, send

    def head(self, record: RequestRecord) -> Request:
        scope = self.scope
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        return Request(scope["method"], scope["path"], scope.get("query_string", b""), headers,
                       client_host=client[0] if client else None, record=record)

    async def read_body(self, request: Request, limit: int = MAX_BODY) -> None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
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

    async def client_left(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass

    async def reply(self, reply: Reply, head_only: bool = False) -> None:
        headers = [(b"content-type", reply.content_type), (b"content-length", str(len(reply.body)).encode())]
        headers.extend(reply.headers)
        await self.send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await self.send({"type": "http.response.body", "body": b"" if head_only else reply.body})

    async def stream(self, reply: StreamReply) -> None:
        send = self.send
        headers = [(b"content-type", reply.content_type), *STREAM_HEADERS, *reply.headers]
        chunks = reply.chunks
        try:
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            async for chunk in chunks:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            log.debug("client disconnected mid-stream")
        finally:
            await close_chunks(chunks)
