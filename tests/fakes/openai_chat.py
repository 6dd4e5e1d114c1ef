"""Fake OpenAI chat completions (any OpenAI-compatible server): POST {base}/chat/completions and
GET {base}/models, base path configurable (default /v1). Bodies are validated against the `openai`
SDK's CompletionCreateParams. Reasoning is streamed as `reasoning_content` deltas, the way
OpenAI-compatible servers (DeepSeek, vLLM, ...) expose it."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import orjson
from aiohttp import web
from openai.types.chat import completion_create_params
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
    ToolOffer,
    body_size,
    data_url_bytes,
    error_headers,
    json_body,
    json_response,
    plan_reply,
    split_string,
    split_text,
    stream_frames,
    typed_dict_keys,
    validate_typed,
)

FINISH_REASONS = {
    STOP_END: "stop",
    STOP_SEQUENCE: "stop",
    STOP_MAX_TOKENS: "length",
    STOP_TOOL_USE: "tool_calls",
    STOP_CONTENT_FILTER: "content_filter",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}
ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
MODELS = ("gpt-5.1", "gpt-5.1-mini", "gpt-4.1")
CREATE_KEYS = typed_dict_keys(completion_create_params.CompletionCreateParamsStreaming)
DONE_FRAME = b"data: [DONE]\n\n"


@functools.cache
def _adapter() -> TypeAdapter[Any]:
    return TypeAdapter(completion_create_params.CompletionCreateParams)


class OpenAIFake(FakeServer):
    """What every OpenAI-shaped fake shares: a configurable base path, Bearer
    keys, `GET {base}/models`, OpenAI's error shape and rate-limit headers.
    Subclasses set `create_keys` (the top-level fields their create call takes)."""

    create_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, base_path: str = "/v1", extra_fields: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_path = base_path.rstrip("/")
        self.allowed_keys = self.create_keys | frozenset(extra_fields)

    @property
    def api_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return self.base_url + self.base_path

    async def _models(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        data = [{"id": model, "object": "model", "created": 1735689600, "owned_by": "fake"} for model in MODELS]
        return json_response({"object": "list", "data": data}, headers=self._headers())

    def _check_access(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        key = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        if key in self.api_keys:
            return None
        if not key:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return self.error_response(FakeError(401, message, "invalid_request_error"))
        return self.error_response(FakeError(401, f"Incorrect API key provided: {key[:6]}***.", None))

    def _headers(self) -> dict[str, str]:
        return {
            "x-request-id": self.ids.next("req_"),
            "openai-processing-ms": "12",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "2ms",
        }

    def error_response(self, error: FakeError, param: str | None = None) -> web.Response:
        error_code = None if error.status == 400 else ERROR_CODES.get(error.status)
        payload = {
            "error": {
                "message": error.message,
                "type": error.type or ERROR_TYPES.get(error.status, "server_error"),
                "param": param,
                "code": error_code,
            }
        }
        return json_response(payload, status=error.status, headers={**self._headers(), **error_headers(error)})


class FakeOpenAIChat(OpenAIFake):
    """`extra_fields`: top-level body fields this server accepts beyond OpenAI's own (an
    OpenAI-compatible server may take e.g. `chat_template_kwargs`). Unknown fields are
    rejected like OpenAI does ("Unrecognized request argument supplied")."""

    kind = "openai-chat"
    create_keys = CREATE_KEYS

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.base_path}/chat/completions", self._chat_completions)
        app.router.add_get(f"{self.base_path}/models", self._models)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        body = json_body(request)
        try:
            self._validate(body)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message, "invalid_request_error"), invalid.param)
        scenario, scripted_error = await self.scripted()
        if scripted_error is not None:
            return scripted_error
        reply = plan_reply(conversation_view(body, body_size(request)), scenario, self.kind)
        completion = self._completion(body, reply)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = stream_chunks(completion, include_usage)
            return await stream_frames(request, frames, scenario, headers=self._headers())
        return json_response(completion, headers=self._headers())

    def _validate(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BodyInvalid("We could not parse the JSON body of your request.")
        unknown = sorted(set(body) - self.allowed_keys)
        if unknown:
            raise BodyInvalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
        validate_typed(_adapter(), body, self.allowed_keys)
        check_semantics(body)
        images_in(body)

    def _completion(self, body: JSON, reply: Reply) -> JSON:
        message: JSON = {"role": "assistant", "content": reply.text or None, "refusal": None, "annotations": []}
        if reply.thinking is not None:
            message["reasoning_content"] = reply.thinking
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self.ids.next("call_"),
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
                }
                for name, arguments in reply.tool_calls
            ]
        return {
            "id": self.ids.next("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH_REASONS.get(reply.stop, reply.stop),
                }
            ],
            "usage": usage_body(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }



def usage_body(reply: Reply) -> JSON:
    usage = reply.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# ---------------------------------------------------------------------------
# Semantic rules


def check_semantics(body: JSON) -> None:
    messages: list[JSON] = body["messages"]
    if not messages:
        raise BodyInvalid("[] is too short - 'messages'", "messages")
    pending: list[str] = []
    pending_at = 0
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if message["tool_call_id"] not in pending:
                raise BodyInvalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            _unanswered(pending, pending_at)
        if role == "assistant":
            pending = [call["id"] for call in message.get("tool_calls") or []]
            pending_at = index
    # A conversation may end with the assistant's tool calls only if nothing follows them;
    # that is a request for a continuation the real API also rejects.
    if pending:
        _unanswered(pending, pending_at)


def _unanswered(ids: list[str], index: int) -> None:
    raise BodyInvalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(ids)}",
        f"messages.[{index}].role",
    )


# ---------------------------------------------------------------------------
# Request -> neutral view


def conversation_view(body: JSON, body_size: int) -> ConversationView:
    messages: list[JSON] = body["messages"]
    view = ConversationView(body_size=body_size)
    view.max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    stop = body.get("stop")
    view.stop_sequences = [stop] if isinstance(stop, str) else list(stop or [])
    effort = body.get("reasoning_effort")
    view.thinking_enabled = effort is not None and effort != "none"
    view.tools = [
        ToolOffer(tool["function"]["name"], tool["function"].get("parameters") or {})
        for tool in body.get("tools") or []
        if tool.get("type") == "function"
    ]
    view.json_schema = _json_schema(body.get("response_format"))
    view.cache_requested = bool(body.get("prompt_cache_key"))
    trailing_results = _trailing_tool_results(messages)
    if trailing_results:
        view.tool_result_text = "\n".join(trailing_results)
    last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    if last_user is not None:
        view.last_user_text, view.image_mime_types = _user_text_and_images(last_user["content"])
    return view


def _json_schema(response_format: Any) -> JSON | None:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {}
    if response_format.get("type") == "json_object":
        return {}
    return None


def _trailing_tool_results(messages: list[JSON]) -> list[str]:
    results: list[str] = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        results.insert(0, _text_of(message.get("content")))
    return results


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    return ""


def _user_text_and_images(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    images = [
        _image_mime(part["image_url"]["url"]) for part in content if part.get("type") == "image_url"
    ]
    return _text_of(content), images


def _image_mime(url: str) -> str:
    if url.startswith("data:"):
        return url[5:].split(";", 1)[0]
    return "url"


# ---------------------------------------------------------------------------
# Stream rendering


def stream_chunks(completion: JSON, include_usage: bool) -> Iterator[bytes]:
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: JSON, finish_reason: str | None = None) -> bytes:
        payload: JSON = {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "system_fingerprint": completion["system_fingerprint"],
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            payload["usage"] = None
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in split_text(message.get("reasoning_content") or ""):
        yield chunk({"reasoning_content": piece})
    for piece in split_text(message["content"] or ""):
        yield chunk({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or []):
        head = {"index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}
        yield chunk({"tool_calls": [head]})
        for piece in split_string(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        usage_chunk = {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "system_fingerprint": completion["system_fingerprint"],
            "choices": [],
            "usage": completion["usage"],
        }
        yield b"data: " + orjson.dumps(usage_chunk) + b"\n\n"
    yield DONE_FRAME


__all__ = ["FakeOpenAIChat"]


def images_in(body: JSON) -> list[bytes]:
    """The inline images and files of a request, decoded as the API does (BodyInvalid if it cannot)."""
    found: list[bytes] = []
    for number, message in enumerate(body.get("messages") or ()):
        content = message.get("content")
        for index, part in enumerate(content if isinstance(content, list) else ()):
            where = f"messages[{number}].content[{index}]"
            if part.get("type") == "image_url":
                data = data_url_bytes(part["image_url"].get("url"), f"{where}.image_url.url")
            elif part.get("type") == "file":
                data = data_url_bytes((part.get("file") or {}).get("file_data"), f"{where}.file.file_data")
            else:
                data = None
            if data is not None:
                found.append(data)
    return found
