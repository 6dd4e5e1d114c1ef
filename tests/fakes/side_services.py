"""Fakes of the side services Crossroads reaches over HTTP, each shaped like
the real program (see the facts in the design's reference notes):

- ``FakeAIStudio``: AIstudioProxyAPI. One browser page: requests are served
  one at a time (a second one arriving while the page is busy is counted as
  an overlap, which the real page would garble). Reads ``max_output_tokens``
  and silently drops ``max_tokens``; ``reasoning_effort`` is an integer
  budget, ``0`` (off), ``"none"``/``-1`` (on, no budget) or a preset, else a
  422; thinking comes back as ``reasoning_content``. ``GET /health`` answers
  503 with browser/page details while the page is not ready.
- ``FakeWebAI``: WebAI-to-API. v0.4 answers ``stream: true`` with a single
  JSON object labelled ``chat.completion.chunk`` and has no ``/v1/models``;
  v0.5 streams SSE ending in ``data: [DONE]`` (a scenario's ``cut_after``
  ends the stream cleanly *without* it) and lists its models. A model it does
  not list is refused. No tool calling.
- ``FakeCtonew``: ctonew-proxy. The bearer token is the cookie string
  (``.....`` packs several cookies); thinking arrives inline as
  ``<think>…</think>`` in content; errors arrive as answer text
  (``错误: …``) with status 200; usage is always 0. No tool calling.

The services without tools play a model that follows an emulated-tools
prompt: asked to ``CALL_TOOL`` with a tool described in the system prompt,
they answer ``<tool_call>{...}</tool_call>``; shown a ``<tool_result>`` they
say so.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from aiohttp import web

from .common import (
    JSON,
    FakeError,
    FakeServer,
    Scenario,
    json_body,
    json_response,
    pause,
    sample_for_arguments,
    split_text,
)

_TOOL_LINE = re.compile(r"^- (\w+): .*\n  arguments schema: (.*)$", re.MULTILINE)
_RESULT = re.compile(r"<tool_result[^>]*>(.*?)</tool_result>", re.DOTALL)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class SideServiceFake(FakeServer):
    """An OpenAI-compatible chat service; subclasses add the quirks."""

    kind = "side-service"
    models: tuple[str, ...] = ()
    native_tools = False
    restrict_models = True  # refuse a model the service does not list

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("api_keys", ())
        super().__init__(**kwargs)
        self.active = 0
        self.max_active = 0
        self.overlaps = 0
        self.served: list[str] = []  # last user text of each request, in the order service started

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    def authorized(self, request: web.Request) -> bool:
        if not self.api_keys:
            return True
        return self.bearer_or_header_key(request, "X-API-Key") in self.api_keys

    def error_response(self, error: FakeError) -> web.Response:
        return json_response({"detail": error.message}, status=error.status,
                             headers={"Retry-After": f"{error.retry_after:g}"} if error.retry_after else None)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        data = [{"id": m, "object": "model", "created": 1735689600, "owned_by": self.kind} for m in self.models]
        return json_response({"object": "list", "data": data})

    def check(self, body: Any) -> str | None:
        """Why the body is refused, or None."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages must be a non-empty list"
        for message in body["messages"]:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
                return "each message needs a role of system, user, assistant or tool"
        if self.restrict_models and body.get("model") not in self.models:
            return f"model {body.get('model')!r} is not available"
        if "tools" in body and not self.native_tools:
            return "this service has no tool calling"
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return json_response({"detail": "Invalid or missing API key"}, status=401)
        body = json_body(request)
        refused = self.check(body)
        if refused is not None:
            return json_response({"detail": refused}, status=400)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        if self.active > 1:
            self.overlaps += 1
        self.served.append(text_of(body["messages"][-1].get("content")))
        try:
            scenario, failure = await self.scripted()
            if failure is not None:
                return failure
            await pause(0.05)  # the page takes a moment
            return await self.answer(request, body, scenario)
        finally:
            self.active -= 1

    async def answer(self, request: web.Request, body: JSON, scenario: Scenario | None) -> web.StreamResponse:
        raise NotImplementedError

    # ------------------------------------------------------------------ the "model"

    def reply(self, body: JSON, scenario: Scenario | None, thinking: bool) -> tuple[str, str | None, list[Any]]:
        """(text, thinking, native tool calls) as a model would answer."""
        messages = body["messages"]
        last = text_of(messages[-1].get("content"))
        system = "\n".join(text_of(m.get("content")) for m in messages if m["role"] == "system")
        thought = f"Thinking about: {last[:80]}" if thinking else None
        if scenario is not None and scenario.sets_content():
            return scenario.text or "", scenario.thinking or thought, list(scenario.tool_calls or [])
        if self.native_tools and body.get("tools"):
            if messages[-1]["role"] == "tool":
                return f"Tool result received: {text_of(messages[-1].get('content'))}", thought, []
            if "CALL_TOOL" in last:
                tool = body["tools"][0]["function"]
                return "", thought, [(tool["name"], sample_for_arguments(tool.get("parameters") or {}))]
        result = _RESULT.search(last)
        if result is not None:
            return f"Tool result received: {result.group(1)}", thought, []
        offered = _TOOL_LINE.findall(system)
        if "CALL_TOOL" in last and offered and "<tool_call>" in system:
            name, schema = offered[0]
            call = {"name": name, "arguments": sample_for_arguments(orjson.loads(schema))}
            return f"<tool_call>{orjson.dumps(call).decode()}</tool_call>", thought, []
        return f"Hello from {self.kind}. You said: {last[:200]}", thought, []

    def completion(self, body: JSON, text: str, thinking: str | None, calls: list[Any],
                   usage: JSON | None) -> JSON:
        message: JSON = {"role": "assistant", "content": text or None}
        if thinking:
            message["reasoning_content"] = thinking
        if calls:
            message["tool_calls"] = [{"id": self.ids.next("call_"), "type": "function",
                                      "function": {"name": name, "arguments": orjson.dumps(args).decode()}}
                                     for name, args in calls]
        return {"id": self.ids.next("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "message": message,
                                                     "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": usage}

    def chunks(self, completion: JSON) -> list[JSON]:
        message = completion["choices"][0]["message"]
        base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
                "model": completion["model"]}

        def chunk(delta: JSON, finish: str | None = None) -> JSON:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"reasoning_content": piece}) for piece in split_text(message.get("reasoning_content") or "")]
        out += [chunk({"content": piece}) for piece in split_text(message.get("content") or "")]
        for index, call in enumerate(message.get("tool_calls") or []):
            out.append(chunk({"tool_calls": [{"index": index, **call}]}))
        out.append(chunk({}, completion["choices"][0]["finish_reason"]))
        return out

    async def sse(self, request: web.Request, frames: list[JSON], scenario: Scenario | None,
                  done: bool = True) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await response.prepare(request)
        cut = scenario.cut_after if scenario is not None else None
        for number, frame in enumerate(frames):
            if cut is not None and number >= cut:
                done = False
                break
            await response.write(b"data: " + orjson.dumps(frame) + b"\n\n")
            await pause(scenario.chunk_delay if scenario is not None else 0.0)
        if done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class FakeAIStudio(SideServiceFake):
    kind = "aistudio"
    models = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview")
    native_tools = True
    FIELDS = frozenset({"model", "messages", "stream", "temperature", "max_output_tokens", "top_p", "stop",
                        "seed", "response_format", "reasoning_effort", "tools", "tool_choice",
                        "parallel_tool_calls", "mcp_endpoint", "attachments"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_ready = True
        self.ignored: list[list[str]] = []  # fields each request sent that the service drops

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/health", self._health)

    async def _health(self, request: web.Request) -> web.Response:
        details = {"isPlaywrightReady": self.page_ready, "isBrowserConnected": self.page_ready,
                   "isPageReady": self.page_ready, "workerRunning": True, "queueLength": self.active}
        if self.page_ready:
            return json_response({"status": "OK", "message": "Service running", "details": details})
        return json_response({"status": "Error", "message": "Service unavailable; page not ready",
                              "details": details}, status=503)

    def check(self, body: Any) -> str | None:
        refused = super().check(body)
        if refused is not None:
            return refused
        effort = body.get("reasoning_effort")
        if effort is not None and not (
                (isinstance(effort, int) and not isinstance(effort, bool) and effort >= -1)
                or effort in ("none", "low", "medium", "high")):
            return f"reasoning_effort must be an integer budget, 'none', low, medium or high; got {effort!r}"
        self.ignored.append(sorted(set(body) - self.FIELDS))
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self.page_ready:
            return json_response({"detail": "Service unavailable; page not ready"}, status=503)
        return await super()._chat(request)

    async def answer(self, request: web.Request, body: JSON, scenario: Scenario | None) -> web.StreamResponse:
        effort = body.get("reasoning_effort")
        text, thinking, calls = self.reply(body, scenario, thinking=effort is not None and effort != 0)
        limit = body.get("max_output_tokens")  # max_tokens is dropped, as pydantic does
        if isinstance(limit, int) and limit < 8:
            text = " ".join(text.split(" ")[:limit])
        words = len(text.split())
        completion = self.completion(body, text, thinking, calls,
                                     {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words})
        if not body.get("stream"):
            return json_response(completion)
        frames = self.chunks(completion)
        frames.append({**frames[-1], "choices": [], "usage": completion["usage"]})
        return await self.sse(request, frames, scenario)


class FakeWebAI(SideServiceFake):
    kind = "webai"

    def __init__(self, version: str = "0.5", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.models = ("gemini-3-pro", "gemini-3-flash", "gemini-3-flash-thinking")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        if self.version != "0.4":  # v0.4 had no model list
            app.router.add_get("/v1/models", self._models)
            app.router.add_get("/health", self._ok)

    async def _ok(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def answer(self, request: web.Request, body: JSON, scenario: Scenario | None) -> web.StreamResponse:
        text, _, _ = self.reply(body, scenario, thinking=False)
        completion = self.completion(body, text, None, [], {"prompt_tokens": 0, "completion_tokens": 0,
                                                            "total_tokens": 0})
        if not body.get("stream"):
            return json_response(completion)
        if self.version == "0.4":  # one object labelled as a chunk instead of a stream
            message = completion["choices"][0]["message"]
            return json_response({**completion, "object": "chat.completion.chunk",
                                  "choices": [{"index": 0, "delta": message, "finish_reason": "stop"}]})
        return await self.sse(request, self.chunks(completion), scenario)


class FakeCtonew(SideServiceFake):
    kind = "ctonew"
    models = ("ClaudeSonnet4_5", "GPT5")

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/", self._root)

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="enginelabs-2api-v3")

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").startswith("Bearer ")

    restrict_models = False  # the proxy passes any adapter name on

    def cookie_valid(self, request: web.Request) -> bool:
        cookie = request.headers["Authorization"][7:].replace(".....", "; ")
        cookies = dict(part.split("=", 1) for part in cookie.split("; ") if "=" in part)
        return cookies.get("__client", "") in self.api_keys

    async def answer(self, request: web.Request, body: JSON, scenario: Scenario | None) -> web.StreamResponse:
        if not self.cookie_valid(request):
            content = "错误: Error: 无法获取 JWT token: Error: HTTP 401"
            return await self._deliver(request, body, [content], scenario)
        text, thinking, _ = self.reply(body, scenario, thinking=True)
        pieces = []
        if thinking:
            pieces += ["<think>", *split_text(thinking), "</think>"]
        pieces += list(split_text(text))
        return await self._deliver(request, body, pieces, scenario)

    async def _deliver(self, request: web.Request, body: JSON, pieces: list[str],
                       scenario: Scenario | None) -> web.StreamResponse:
        if not body.get("stream"):
            completion = self.completion(body, "".join(pieces), None, [],
                                         {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
            return json_response(completion)
        base = {"id": self.ids.next("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"]}
        frames = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}]
        frames += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                   for p in pieces]
        frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return await self.sse(request, frames, scenario)

    async def scripted(self) -> tuple[Scenario | None, web.Response | None]:
        """A scripted error comes back the way the proxy reports one: as answer text."""
        scenario = self.next_scenario()
        if scenario is None:
            return None, None
        await pause(scenario.delay)
        if scenario.error is not None:
            return Scenario(text=f"错误: {scenario.error.message}"), None
        return scenario, None

