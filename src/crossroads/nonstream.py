"""CLIProxyAPI's ``nonstream-keepalive-interval``: a non-streaming request
whose answer takes longer than the interval gets its 200 status line at
once and a blank line every interval until the JSON body follows, so
reverse proxies with idle timeouts keep the connection (JSON allows leading
whitespace). An error found after that is the body of that 200 reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

from crossroads import ir
from crossroads.http import Reply, StreamReply

_GENERATION = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages",
                         "/backend-api/codex/responses"})
PAD = b"\n"


def eligible(method: str, path: str, body: bytes) -> bool:
    """A model request that will not stream (only asked when the setting is on)."""
    if method != "POST":
        return False
    if path.endswith(":generateContent"):
        return True
    if path not in _GENERATION:
        return False
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and not data.get("stream")


async def padded(work: Awaitable[Reply | StreamReply], every: float,
                 render_error: Callable[[ir.Error], Reply]) -> Reply | StreamReply:
    """The reply itself when it is ready within ``every`` seconds; else a
    JSON stream of blank lines that ends with it."""
    task: asyncio.Future[Reply | StreamReply] = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait((task,), timeout=every)
    except BaseException:
        task.cancel()
        raise
    if done:
        return task.result()
    return StreamReply(_pad_until(task, every, render_error), content_type=b"application/json")


async def _pad_until(task: asyncio.Future[Reply | StreamReply], every: float,
                     render_error: Callable[[ir.Error], Reply]) -> AsyncIterator[bytes]:
    try:
        while True:
            yield PAD
            done, _ = await asyncio.wait((task,), timeout=every)
            if done:
                break
        try:
            reply = task.result()
        except ir.Error as error:
            yield render_error(error).body
            return
        if isinstance(reply, StreamReply):
            async for chunk in reply.chunks:
                yield chunk
        else:
            yield reply.body
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
