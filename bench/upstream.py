"""A minimal, fast, deterministic fake LLM upstream for benchmarks.

Serves ``POST /v1/chat/completions`` (OpenAI chat) and ``POST /v1/messages``
(Anthropic Messages), plain JSON or SSE when the body says ``"stream": true``.
Every reply is pre-encoded at import time, so the per-request cost is one
small ``orjson.loads`` plus the writes. This is deliberately *not* the
validating fake used by the tests: it exists to cost as little as possible.

    python bench/upstream.py --port 18400 [--lifetime 900]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import orjson
import uvloop
from aiohttp import web

STREAM_CHUNKS = 20
CREATED = 1_700_000_000
CHAT_ID = "chatcmpl-bench000000000000000000001"
MESSAGE_ID = "msg_bench00000000000000000001"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
ANSWER = ("Crossroads benchmark reply: a fixed, deterministic answer long enough to make the "
          "JSON body about half a kilobyte, like a short real completion.")


def _token(i: int) -> str:
    return f"tok{i:02d} "


def _sse(payload: dict[str, object], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def _chat_json() -> bytes:
    return orjson.dumps({
        "id": CHAT_ID, "object": "chat.completion", "created": CREATED, "model": OPENAI_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 40, "total_tokens": 65},
        "system_fingerprint": "fp_bench",
    })


def _chat_stream(include_usage: bool) -> list[bytes]:
    """As OpenAI streams: with ``stream_options.include_usage`` every chunk
    carries ``"usage": null`` and a last chunk with empty choices carries the usage."""
    head: dict[str, object] = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED,
                               "model": OPENAI_MODEL, "system_fingerprint": "fp_bench"}
    usage_null = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice], **usage_null})

    frames = [chunk({"role": "assistant", "content": _token(0)})]
    frames += [chunk({"content": _token(i)}) for i in range(1, STREAM_CHUNKS)]
    frames.append(chunk({}, "stop"))
    if include_usage:
        frames.append(_sse({**head, "choices": [], "usage": {
            "prompt_tokens": 25, "completion_tokens": STREAM_CHUNKS, "total_tokens": 25 + STREAM_CHUNKS}}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def _messages_json() -> bytes:
    return orjson.dumps({
        "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 40},
    })


def _messages_stream() -> list[bytes]:
    frames = [
        _sse({"type": "message_start", "message": {
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1}}}, "message_start"),
        _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
             "content_block_start"),
        _sse({"type": "ping"}, "ping"),
    ]
    frames += [_sse({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": _token(i)}}, "content_block_delta")
               for i in range(STREAM_CHUNKS)]
    frames += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
              "usage": {"output_tokens": STREAM_CHUNKS}}, "message_delta"),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return frames


CHAT_JSON = _chat_json()
CHAT_STREAM = _chat_stream(include_usage=False)
CHAT_STREAM_WITH_USAGE = _chat_stream(include_usage=True)
MESSAGES_JSON = _messages_json()
MESSAGES_STREAM = _messages_stream()


async def _payload(request: web.Request) -> dict[str, object]:
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


async def _stream(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)
    for frame in frames:  # one write per event, as a real upstream flushes per token
        await response.write(frame)
    await response.write_eof()
    return response


# Faults for the soak benchmark (bench/soak.py), chosen by the model name so the
# plain benchmark never pays for them.
FAULT_MODELS = ("fault-429", "fault-500", "fault-cut", "fault-slow")
HOLD_MODEL = "hold"  # bench/streams.py: a stream that sends one chunk, then idles ``max_tokens`` seconds


async def _hold(request: web.Request, seconds: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)
    await response.write(CHAT_STREAM[0])
    await asyncio.sleep(max(1, seconds))  # open and idle, as a model thinking before it answers
    for frame in CHAT_STREAM[-2:]:
        await response.write(frame)
    await response.write_eof()
    return response


async def _fault(request: web.Request, model: object, stream: bool, frames: list[bytes]) -> web.StreamResponse:
    if model == "fault-429":
        return web.json_response({"error": {"message": "Rate limit reached", "type": "requests",
                                             "code": "rate_limit_exceeded"}}, status=429, headers={"retry-after": "1"})
    if model == "fault-500":
        return web.json_response({"error": {"message": "The server had an error", "type": "server_error"}},
                                 status=500)
    if model == "fault-cut" and stream:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for frame in frames[:5]:
            await response.write(frame)
        if request.transport is not None:
            request.transport.abort()
        return response
    await asyncio.sleep(0.5)  # fault-slow: a slow first byte
    if stream:
        return await _stream(request, frames)
    return web.Response(body=CHAT_JSON, content_type="application/json")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    payload = await _payload(request)
    model = payload.get("model")
    if model == HOLD_MODEL:
        return await _hold(request, int(payload.get("max_tokens") or 30))
    if isinstance(model, str) and model.startswith("fault-"):
        return await _fault(request, model, payload.get("stream") is True, CHAT_STREAM)
    if payload.get("stream") is True:
        options = payload.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await _stream(request, CHAT_STREAM_WITH_USAGE if with_usage else CHAT_STREAM)
    return web.Response(body=CHAT_JSON, content_type="application/json")


async def messages(request: web.Request) -> web.StreamResponse:
    if (await _payload(request)).get("stream") is True:
        return await _stream(request, MESSAGES_STREAM)
    return web.Response(body=MESSAGES_JSON, content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/healthz", health)
    return app


async def serve(host: str, port: int, lifetime: float) -> None:
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)  # never outlives its lifetime
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18400)
    parser.add_argument("--lifetime", type=float, default=900.0, help="exit after this many seconds")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.lifetime))


if __name__ == "__main__":
    main()
