"""SSE keep-alive comments (CLIProxyAPI's ``streaming.keepalive-seconds``):
while a stream is quiet for that long, a ``: keep-alive`` comment line goes
out so reverse proxies with idle timeouts keep the connection. Clients'
SSE parsers skip comment lines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

COMMENT = b": keep-alive\n\n"


async def sse(chunks: AsyncIterator[bytes], every: float) -> AsyncIterator[bytes]:
    """``chunks`` with a comment after every ``every`` seconds of silence.
    The next chunk is awaited in a task of its own so a timeout never
    cancels the stream; closing this closes ``chunks``."""
    source = chunks.__aiter__()
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=every)
            if not done:
                yield COMMENT
                continue
            finished, pending = pending, None
            try:
                chunk = finished.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
