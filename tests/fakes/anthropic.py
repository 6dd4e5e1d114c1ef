"""Fake Anthropic Messages API: POST /v1/messages (also ?beta=true), POST /v1/messages/count_tokens,
GET /v1/models. Bodies are validated against the `anthropic` SDK's request TypedDicts (the beta
variants when the request uses a beta header, ?beta=true or a beta-only field)."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web
from anthropic.types import message_count_tokens_params, message_create_params
from anthropic.types.beta import message_count_tokens_params as beta_count_params
from anthropic.types.beta import message_create_params as beta_create_params
from pydantic import TypeAdapter

from .common import (
    JSON,
    STOP_CONTENT_FILTER,
    STOP_END,
    STOP_MAX_TOKENS,
    STOP_SEQUENCE,
    STOP_TOOL_USE,
    BodyInvalid,
    ConversationView,
    FakeError,
    FakeServer,
    Reply,
    Scenario,
    ToolOffer,
    base64_bytes,
    body_size,
    error_headers,
    fake_signature,
    json_body,
    json_response,
    plan_reply,
    split_string,
    split_text,
    sse_frame,
    stream_frames,
    typed_dict_keys,
    validate_typed,
)

API_VERSIONS_PREFIX = "20"  # any dated version such as 2023-06-01 or 2026-10-21
TOOL_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
MIN_THINKING_BUDGET = 1024

STOP_REASONS = {
    STOP_END: "end_turn",
    STOP_MAX_TOKENS: "max_tokens",
    STOP_TOOL_USE: "tool_use",
    STOP_SEQUENCE: "stop_sequence",
    STOP_CONTENT_FILTER: "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
MODELS = ("claude-opus-4-8", "claude-sonnet-4-5", "claude-haiku-4-5")

# The SDK's `betas` parameter travels as the anthropic-beta header, never in the body.
SDK_ONLY_KEYS = frozenset({"betas"})
CREATE_KEYS = typed_dict_keys(message_create_params.MessageCreateParamsStreaming)
BETA_CREATE_KEYS = typed_dict_keys(beta_create_params.MessageCreateParamsStreaming) - SDK_ONLY_KEYS
COUNT_KEYS = typed_dict_keys(message_count_tokens_params.MessageCountTokensParams)
BETA_COUNT_KEYS = typed_dict_keys(beta_count_params.MessageCountTokensParams) - SDK_ONLY_KEYS


@functools.cache
def _adapter(name: str) -> TypeAdapter[Any]:
    types: dict[str, Any] = {
        "create": message_create_params.MessageCreateParams,
        "beta_create": beta_create_params.MessageCreateParams,
        "count": message_count_tokens_params.MessageCountTokensParams,
        "beta_count": beta_count_params.MessageCountTokensParams,
    }
    return TypeAdapter(types[name])


class FakeAnthropic(FakeServer):
    kind = "anthropic"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model_id}", self._model)

    # --- handlers
    async def _messages(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        body = json_body(request)
        try:
            self._validate_create(request, body)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message, "invalid_request_error"))
        scenario, scripted_error = await self.scripted()
        if scripted_error is not None:
            return scripted_error
        reply = plan_reply(conversation_view(body, body_size(request)), scenario, self.kind)
        message = self._message(body, reply)
        if body.get("stream"):
            return await stream_frames(request, stream_events(message, reply), scenario, headers=self._headers())
        return json_response(message, headers=self._headers())

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        body = json_body(request)
        try:
            if not isinstance(body, dict):
                raise BodyInvalid("body: Input should be a valid dictionary")
            beta = self._is_beta(request, body, COUNT_KEYS)
            keys = BETA_COUNT_KEYS if beta else COUNT_KEYS
            validate_typed(_adapter("beta_count" if beta else "count"), body, keys)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message, "invalid_request_error"))
        return json_response({"input_tokens": max(1, body_size(request) // 4)}, headers=self._headers())

    async def _models(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        data = [model_info(model_id) for model_id in MODELS]
        payload = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        return json_response(payload, headers=self._headers())

    async def _model(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        model_id = request.match_info["model_id"]
        if model_id not in MODELS:
            return self.error_response(FakeError(404, f"model: {model_id}", "not_found_error"))
        return json_response(model_info(model_id), headers=self._headers())

    # --- checks
    def _check_access(self, request: web.Request) -> web.Response | None:
        key = self.bearer_or_header_key(request, "x-api-key")
        if not key or key not in self.api_keys:
            return self.error_response(FakeError(401, "invalid x-api-key", "authentication_error"))
        if not request.headers.get("anthropic-version", "").startswith(API_VERSIONS_PREFIX):
            return self.error_response(
                FakeError(400, "anthropic-version: header is required", "invalid_request_error")
            )
        return None

    def _is_beta(self, request: web.Request, body: JSON, stable_keys: frozenset[str]) -> bool:
        return (
            "anthropic-beta" in request.headers
            or request.query.get("beta") == "true"
            or any(key not in stable_keys for key in body)
        )

    def _validate_create(self, request: web.Request, body: Any) -> None:
        if not isinstance(body, dict):
            raise BodyInvalid("body: Input should be a valid dictionary")
        beta = self._is_beta(request, body, CREATE_KEYS)
        keys = BETA_CREATE_KEYS if beta else CREATE_KEYS
        validate_typed(_adapter("beta_create" if beta else "create"), body, keys)
        check_semantics(body)
        images_in(body)

    # --- rendering
    def _message(self, body: JSON, reply: Reply) -> JSON:
        content: list[JSON] = []
        if reply.thinking is not None:
            content.append(
                {"type": "thinking", "thinking": reply.thinking, "signature": fake_signature(reply.thinking)}
            )
        if reply.text:
            content.append({"type": "text", "text": reply.text, "citations": None})
        for name, arguments in reply.tool_calls:
            content.append({"type": "tool_use", "id": self.ids.next("toolu_"), "name": name, "input": arguments})
        return {
            "id": self.ids.next("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": STOP_REASONS.get(reply.stop, reply.stop),
            "stop_sequence": reply.stop_sequence,
            "usage": usage_body(reply),
        }

    def _headers(self) -> dict[str, str]:
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        headers = {"request-id": self.ids.next("req_"), "anthropic-organization-id": "fake-org"}
        for bucket, limit in (("requests", "4000"), ("tokens", "2000000"), ("input-tokens", "1600000"),
                              ("output-tokens", "400000")):
            headers[f"anthropic-ratelimit-{bucket}-limit"] = limit
            headers[f"anthropic-ratelimit-{bucket}-remaining"] = str(int(limit) - 1)
            headers[f"anthropic-ratelimit-{bucket}-reset"] = reset
        return headers

    def error_response(self, error: FakeError) -> web.Response:
        headers = {**self._headers(), **error_headers(error)}
        error_type = error.type or ERROR_TYPES.get(error.status, "api_error")
        payload = {
            "type": "error",
            "error": {"type": error_type, "message": error.message},
            "request_id": headers["request-id"],
        }
        return json_response(payload, status=error.status, headers=headers)


def model_info(model_id: str) -> JSON:
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id.replace("-", " ").title(),
        "created_at": "2025-09-29T00:00:00Z",
        "lifecycle": "active",
    }


def usage_body(reply: Reply) -> JSON:
    usage = reply.usage
    # Anthropic's input_tokens counts only the uncached part of the prompt.
    uncached = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens)
    body: JSON = {
        "input_tokens": uncached,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "service_tier": "standard",
    }
    if usage.reasoning_tokens:
        body["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return body


# ---------------------------------------------------------------------------
# Semantic rules the real API enforces beyond the types


def check_semantics(body: JSON) -> None:
    messages: list[JSON] = body["messages"]
    if not messages:
        raise BodyInvalid("messages: at least one message is required", "messages")
    _check_thinking(body)
    _check_tools(body.get("tools") or [])
    _check_tool_pairing(messages)


def _check_thinking(body: JSON) -> None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") != "enabled":
        return
    budget = thinking["budget_tokens"]
    if budget < MIN_THINKING_BUDGET:
        raise BodyInvalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            "thinking.budget_tokens",
        )
    if budget >= body["max_tokens"]:
        raise BodyInvalid(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation "
            "at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
            "max_tokens",
        )


def _check_tools(tools: list[JSON]) -> None:
    for index, tool in enumerate(tools):
        if "input_schema" in tool and not TOOL_NAME_PATTERN.match(tool.get("name", "")):
            raise BodyInvalid(
                f"tools.{index}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
                f"tools.{index}.name",
            )


def _blocks(message: JSON) -> list[JSON]:
    content = message.get("content")
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _check_tool_pairing(messages: list[JSON]) -> None:
    # Mid-conversation system messages (a beta) sit between turns; pairing skips them.
    turns = [(index, message) for index, message in enumerate(messages) if message["role"] != "system"]
    for position, (index, message) in enumerate(turns):
        tool_use_ids = [block["id"] for block in _blocks(message) if block.get("type") == "tool_use"]
        for block_index, tool_id in enumerate(tool_use_ids):
            if not TOOL_ID_PATTERN.match(tool_id):
                raise BodyInvalid(
                    f"messages.{index}.content.{block_index}.tool_use.id: String should match pattern "
                    "'^[a-zA-Z0-9_-]+$'",
                    f"messages.{index}.content",
                )
        previous_ids = set()
        if position > 0 and turns[position - 1][1]["role"] == "assistant":
            previous_ids = {b["id"] for b in _blocks(turns[position - 1][1]) if b.get("type") == "tool_use"}
        result_ids = [b["tool_use_id"] for b in _blocks(message) if b.get("type") == "tool_result"]
        unexpected = [tool_id for tool_id in result_ids if tool_id not in previous_ids]
        if unexpected:
            raise BodyInvalid(
                f"messages.{index}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{unexpected[0]}. Each `tool_result` block must have a corresponding `tool_use` block in "
                "the previous message.",
                f"messages.{index}.content",
            )
        if message["role"] != "assistant" or not tool_use_ids:
            continue
        following = turns[position + 1][1] if position + 1 < len(turns) else None
        if following is None:
            continue  # the conversation ends with the tool call: nothing to answer yet
        answered = {b["tool_use_id"] for b in _blocks(following) if b.get("type") == "tool_result"}
        missing = [tool_id for tool_id in tool_use_ids if tool_id not in answered]
        if missing:
            raise BodyInvalid(
                f"messages.{turns[position + 1][0]}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message.",
                f"messages.{turns[position + 1][0]}",
            )


# ---------------------------------------------------------------------------
# Request -> neutral view


def conversation_view(body: JSON, body_size: int) -> ConversationView:
    messages: list[JSON] = body["messages"]
    last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    view = ConversationView(body_size=body_size, max_tokens=body["max_tokens"])
    view.stop_sequences = list(body.get("stop_sequences") or [])
    view.thinking_enabled = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    view.tools = [
        ToolOffer(tool["name"], tool.get("input_schema") or {})
        for tool in body.get("tools") or []
        if "input_schema" in tool
    ]
    view.json_schema = _json_schema(body)
    view.cache_requested = b'"cache_control"' in orjson.dumps(body)
    if last_user is not None:
        _read_user_turn(last_user, view)
    return view


def _json_schema(body: JSON) -> JSON | None:
    output_format = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        schema = output_format.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _read_user_turn(message: JSON, view: ConversationView) -> None:
    content = message["content"]
    if isinstance(content, str):
        view.last_user_text = content
        return
    texts: list[str] = []
    results: list[str] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "image":
            source = block.get("source") or {}
            view.image_mime_types.append(source.get("media_type") or source.get("type", "url"))
        elif kind == "tool_result":
            results.append(_tool_result_text(block.get("content")))
    view.last_user_text = "\n".join(texts)
    if results:
        view.tool_result_text = "\n".join(results)


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(block.get("text", "") for block in content if block.get("type") == "text")
    return ""


# ---------------------------------------------------------------------------
# Stream rendering


def stream_events(message: JSON, reply: Reply) -> Iterator[bytes]:
    start_usage = {**message["usage"], "output_tokens": 1}
    start_usage.pop("output_tokens_details", None)
    yield sse_frame(
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                              "stop_sequence": None, "usage": start_usage}},
        "message_start",
    )
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block, ping_after_start=index == 0)
    if not message["content"]:
        yield sse_frame({"type": "ping"}, "ping")
    final_usage = {key: value for key, value in message["usage"].items() if key != "service_tier"}
    yield sse_frame(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
            "usage": final_usage,
        },
        "message_delta",
    )
    yield sse_frame({"type": "message_stop"}, "message_stop")


def _block_events(index: int, block: JSON, *, ping_after_start: bool) -> Iterator[bytes]:
    kind = block["type"]
    if kind == "thinking":
        yield _start(index, {"type": "thinking", "thinking": "", "signature": ""})
        yield from _ping(ping_after_start)
        for piece in split_text(block["thinking"]):
            yield _delta(index, {"type": "thinking_delta", "thinking": piece})
        yield _delta(index, {"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        yield _start(index, {"type": "text", "text": "", "citations": None})
        yield from _ping(ping_after_start)
        for piece in split_text(block["text"]):
            yield _delta(index, {"type": "text_delta", "text": piece})
    else:
        yield _start(index, {**block, "input": {}})
        yield from _ping(ping_after_start)
        for piece in split_string(orjson.dumps(block["input"]).decode()):
            yield _delta(index, {"type": "input_json_delta", "partial_json": piece})
    yield sse_frame({"type": "content_block_stop", "index": index}, "content_block_stop")


def _ping(wanted: bool) -> Iterator[bytes]:
    if wanted:
        yield sse_frame({"type": "ping"}, "ping")


def _start(index: int, block: JSON) -> bytes:
    return sse_frame({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")


def _delta(index: int, delta: JSON) -> bytes:
    return sse_frame({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")


__all__ = ["FakeAnthropic", "Scenario"]


def images_in(body: JSON) -> list[bytes]:
    """The inline images and documents of a request, decoded as the API does (BodyInvalid if it cannot)."""
    found: list[bytes] = []

    def blocks(content: Any, where: str) -> None:
        for index, block in enumerate(content if isinstance(content, list) else ()):
            place = f"{where}.{index}"
            if block.get("type") in ("image", "document") and (block.get("source") or {}).get("type") == "base64":
                found.append(base64_bytes(block["source"].get("data"), f"{place}.source.data"))
            elif block.get("type") == "tool_result":
                blocks(block.get("content"), f"{place}.content")

    for number, message in enumerate(body.get("messages") or ()):
        blocks(message.get("content"), f"messages.{number}.content")
    return found
