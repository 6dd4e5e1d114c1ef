"""A self-hosted OpenAI-compatible server with the careless habits some have:
it echoes the credential it was given, and the request's headers, back in its
errors. The model name picks the habit:

- ``echo-key-json``: 401 ``{"error": {"message": "Incorrect API key provided: <full key>"}}``
- ``echo-key-429``: 429 with the key in the message (the account cools down, with that reason)
- ``echo-headers-raw``: 500 ``text/plain`` listing every request header
- ``echo-key-stream``: a 200 stream whose second event is an error naming the key (a 500 naming
  it when the request does not stream)
- anything else: an ordinary completion (the OpenAI chat fake's)
"""

from __future__ import annotations

from aiohttp import web

from .common import json_body, sse_frame
from .openai_chat import FakeOpenAIChat


class FakeEchoingServer(FakeOpenAIChat):
    kind = "openai-echoing"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.echoed: dict[str, int] = {}  # model -> echoes sent

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.base_path}/chat/completions", self._echoing)
        app.router.add_get(f"{self.base_path}/models", self._models)

    async def _echoing(self, request: web.Request) -> web.StreamResponse:
        body = json_body(request)
        model = body.get("model") if isinstance(body, dict) else None
        key = request.headers.get("Authorization", "")[7:]
        if isinstance(model, str) and model.startswith("echo-"):
            self.echoed[model] = self.echoed.get(model, 0) + 1
        if model == "echo-key-json":
            return web.json_response({"error": {"message": f"Incorrect API key provided: {key}",
                                                 "type": "invalid_request_error", "code": "invalid_api_key"}},
                                     status=401)
        if model == "echo-key-429":
            return web.json_response({"error": {"message": f"Rate limit reached for key {key}",
                                                 "type": "requests", "code": "rate_limit_exceeded"}},
                                     status=429, headers={"retry-after": "30"})
        if model == "echo-headers-raw":
            dump = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
            return web.Response(status=500, text=f"Internal error while handling request\n{dump}")
        if model == "echo-key-stream" and not body.get("stream"):
            return web.json_response({"error": {"message": f"backend failed for key {key}",
                                                 "type": "server_error"}}, status=500)
        if model == "echo-key-stream":
            response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(sse_frame({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                            "model": model, "choices": [{"index": 0, "delta": {
                                                "role": "assistant", "content": "Hel"}, "finish_reason": None}]}))
            await response.write(sse_frame({"error": {"message": f"backend failed for key {key}",
                                                      "type": "server_error"}}))
            await response.write_eof()
            return response
        return await self._chat_completions(request)
