"""Fake Gemini API (generativelanguage): POST /{v1beta,v1}/models/{model}:generateContent,
:streamGenerateContent (alt=sse -> SSE, otherwise a streamed JSON array), :countTokens, and
GET /{v1beta,v1}/models. Each top-level body field is validated with the google-genai pydantic
model for it (camelCase aliases, unknown fields forbidden, bytes as base64)."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from typing import Any

import orjson
import pydantic
from aiohttp import web
from google.genai import types as genai_types
from pydantic import TypeAdapter, ValidationError

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
    base64_bytes,
    body_size,
    error_headers,
    fake_signature,
    json_body,
    json_response,
    plan_reply,
    split_text,
    stream_frames,
)

FINISH_REASONS = {
    STOP_END: "STOP",
    STOP_SEQUENCE: "STOP",
    STOP_TOOL_USE: "STOP",
    STOP_MAX_TOKENS: "MAX_TOKENS",
    STOP_CONTENT_FILTER: "SAFETY",
}
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-3.8-flash", "gemini-3.5-flash-lite")
ROLES = ("user", "model")

# REST field name (camelCase and the snake_case protobuf JSON also accepts) -> pydantic type.
FIELD_TYPES: dict[str, Any] = {
    "contents": list[genai_types.Content],
    "systemInstruction": genai_types.Content,
    "tools": list[genai_types.Tool],
    "toolConfig": genai_types.ToolConfig,
    "generationConfig": genai_types.GenerationConfig,
    "safetySettings": list[genai_types.SafetySetting],
    "cachedContent": str,
}
SNAKE_CASE = {
    "system_instruction": "systemInstruction",
    "tool_config": "toolConfig",
    "generation_config": "generationConfig",
    "safety_settings": "safetySettings",
    "cached_content": "cachedContent",
}


@functools.cache
def _adapter(field: str) -> TypeAdapter[Any]:
    return TypeAdapter(FIELD_TYPES[field])


class FakeGemini(FakeServer):
    kind = "gemini"

    def add_routes(self, app: web.Application) -> None:
        for version in ("v1beta", "v1"):
            app.router.add_post(f"/{version}/models/{{target}}", self._model_action)
            app.router.add_get(f"/{version}/models", self._models)
            app.router.add_get(f"/{version}/models/{{target}}", self._model)

    async def _model_action(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        model, _, action = request.match_info["target"].partition(":")
        if action == "countTokens":
            return await self._count_tokens(request)
        if action not in ("generateContent", "streamGenerateContent"):
            return self.error_response(FakeError(404, f"Method not found: {action}"))
        body = json_body(request)
        try:
            validate_request(body)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message))
        scenario, scripted_error = await self.scripted()
        if scripted_error is not None:
            return scripted_error
        reply = plan_reply(conversation_view(body, body_size(request)), scenario, self.kind)
        response_id = self.ids.next("")
        if action == "generateContent":
            return json_response(final_response(model, response_id, reply, _parts(reply)))
        chunks = stream_chunks(model, response_id, reply)
        if request.query.get("alt") == "sse":
            frames = (b"data: " + orjson.dumps(chunk) + b"\r\n\r\n" for chunk in chunks)
            return await stream_frames(request, frames, scenario)
        return await stream_frames(request, json_array_frames(chunks), scenario, content_type="application/json")

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body = json_body(request)
        if not isinstance(body, dict):
            return self.error_response(FakeError(400, "Invalid JSON payload received."))
        try:
            inner = body.get("generateContentRequest")
            if inner is not None:
                validate_request({k: v for k, v in inner.items() if k != "model"})
            else:
                validate_request(body)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message))
        tokens = max(1, body_size(request) // 4)
        return json_response({"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})

    async def _models(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        return json_response({"models": [model_info(model) for model in MODELS]})

    async def _model(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        model = request.match_info["target"]
        if model not in MODELS:
            return self.error_response(FakeError(404, f"models/{model} is not found for API version v1beta"))
        return json_response(model_info(model))

    def _check_access(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            key = self.bearer_or_header_key(request, "x-goog-api-key")
        if not key:
            message = (
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API."
            )
            return self.error_response(FakeError(403, message))
        if key not in self.api_keys:
            return self.error_response(FakeError(400, "API key not valid. Please pass a valid API key."))
        return None

    def error_response(self, error: FakeError) -> web.Response:
        status = error.type or STATUSES.get(error.status, "UNKNOWN")
        payload: JSON = {"error": {"code": error.status, "message": error.message, "status": status}}
        if error.retry_after is not None:
            payload["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{error.retry_after:g}s"}
            ]
        return json_response(payload, status=error.status, headers=error_headers(error))


def model_info(model: str) -> JSON:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model.replace("-", " ").title(),
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "thinking": True,
    }


# ---------------------------------------------------------------------------
# Validation


def validate_request(body: Any) -> None:
    if not isinstance(body, dict):
        raise BodyInvalid("Invalid JSON payload received. Expected an object.")
    for name, value in body.items():
        field = SNAKE_CASE.get(name, name)
        if field not in FIELD_TYPES:
            raise BodyInvalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
        try:
            validated = _adapter(field).validate_json(orjson.dumps(value))
        except ValidationError as error:
            raise BodyInvalid(_describe(field, error)) from None
        _reject_unknown_enums(validated, field)
    check_semantics(body)
    images_in(body)


def _reject_unknown_enums(value: Any, path: str) -> None:
    """google-genai keeps unknown enum values (with a warning) for forward compatibility; the
    API itself rejects them."""
    if isinstance(value, enum.Enum):
        if value not in type(value).__members__.values():
            raise BodyInvalid(f"Invalid value at '{path}' ({type(value).__name__}), \"{value.value}\"")
    elif isinstance(value, pydantic.BaseModel):
        for name in type(value).model_fields:
            item = getattr(value, name)
            if item is not None:
                _reject_unknown_enums(item, f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_unknown_enums(item, f"{path}[{index}]")


def _describe(field: str, error: ValidationError) -> str:
    detail = error.errors()[0]
    loc = list(detail["loc"])
    if detail["type"] == "extra_forbidden":
        return (
            f'Invalid JSON payload received. Unknown name "{loc[-1]}" at '
            f"'{_proto_path(field, loc[:-1])}': Cannot find field."
        )
    return f"Invalid value at '{_proto_path(field, loc)}': {detail['msg']}"


def _proto_path(field: str, loc: list[Any]) -> str:
    path = field
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def check_semantics(body: JSON) -> None:
    contents = body.get("contents") or []
    if not contents:
        raise BodyInvalid("* GenerateContentRequest.contents: contents is not specified\n")
    for index, content in enumerate(contents):
        role = content.get("role")
        if role is not None and role not in ROLES:
            raise BodyInvalid("Please use a valid role: user, model.")
        parts = content.get("parts") or []
        if not parts:
            raise BodyInvalid(f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n")
        for part_index, part in enumerate(parts):
            response = _get(part, "functionResponse")
            if response is not None and not response.get("name"):
                raise BodyInvalid(
                    f"* GenerateContentRequest.contents[{index}].parts[{part_index}].function_response.name: "
                    "Name cannot be empty.\n"
                )
    _check_call_response_counts(contents)
    for tool_index, tool in enumerate(body.get("tools") or []):
        declarations = _get(tool, "functionDeclarations") or []
        for index, declaration in enumerate(declarations):
            if not declaration.get("name"):
                raise BodyInvalid(
                    f"* GenerateContentRequest.tools[{tool_index}].function_declarations[{index}].name: "
                    "Name cannot be empty.\n"
                )


def _get(obj: JSON, camel: str) -> Any:
    """Protobuf JSON accepts both spellings (the genai SDK itself mixes them)."""
    if camel in obj:
        return obj[camel]
    return obj.get(_snake(camel))


@functools.cache
def _snake(camel: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in camel)


def _count_parts(content: JSON, camel: str) -> int:
    return sum(1 for part in content.get("parts") or [] if _get(part, camel) is not None)


def _check_call_response_counts(contents: list[JSON]) -> None:
    for index, content in enumerate(contents[:-1]):
        calls = _count_parts(content, "functionCall")
        if not calls:
            continue
        responses = _count_parts(contents[index + 1], "functionResponse")
        if responses != calls:
            raise BodyInvalid(
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            )


# ---------------------------------------------------------------------------
# Request -> neutral view


def conversation_view(body: JSON, body_size: int) -> ConversationView:
    config: JSON = _get(body, "generationConfig") or {}
    view = ConversationView(body_size=body_size)
    view.max_tokens = _get(config, "maxOutputTokens")
    view.stop_sequences = list(_get(config, "stopSequences") or [])
    view.thinking_enabled = bool(_get(_get(config, "thinkingConfig") or {}, "includeThoughts"))
    view.tools = [
        ToolOffer(declaration["name"], _get(declaration, "parametersJsonSchema") or _get(declaration, "parameters") or {})
        for tool in body.get("tools") or []
        for declaration in _get(tool, "functionDeclarations") or []
    ]
    if _get(config, "responseMimeType") == "application/json":
        schema = _get(config, "responseJsonSchema") or _get(config, "responseSchema") or {}
        view.json_schema = schema if isinstance(schema, dict) else {}
    view.cache_requested = bool(_get(body, "cachedContent"))
    last = body["contents"][-1]
    if last.get("role", "user") == "user":
        _read_user_turn(last, view)
    return view


def _read_user_turn(content: JSON, view: ConversationView) -> None:
    texts: list[str] = []
    results: list[str] = []
    for part in content.get("parts") or []:
        if "text" in part and not part.get("thought"):
            texts.append(part["text"])
        elif (blob := _get(part, "inlineData") or _get(part, "fileData")) is not None:
            view.image_mime_types.append(_get(blob, "mimeType") or "application/octet-stream")
        elif (function_response := _get(part, "functionResponse")) is not None:
            results.append(_function_response_text(function_response.get("response")))
    view.last_user_text = "\n".join(texts)
    if results:
        view.tool_result_text = "\n".join(results)


def _function_response_text(response: Any) -> str:
    # A translator wraps a plain-text result as {"result": "..."} (or output/content);
    # show the text itself so the same assertion works whichever dialect sent it.
    if isinstance(response, dict) and len(response) == 1:
        (value,) = response.values()
        if isinstance(value, str):
            return value
    return orjson.dumps(response).decode()


# ---------------------------------------------------------------------------
# Rendering


def _parts(reply: Reply) -> list[JSON]:
    parts: list[JSON] = []
    if reply.thinking is not None:
        parts.append({"text": reply.thinking, "thought": True, "thoughtSignature": fake_signature(reply.thinking)})
    if reply.text:
        parts.append({"text": reply.text})
    for index, (name, arguments) in enumerate(reply.tool_calls):
        call: JSON = {"functionCall": {"name": name, "args": arguments}}
        if index == 0 and reply.thinking is not None:
            call["thoughtSignature"] = fake_signature(f"{name}:{reply.thinking}")
        parts.append(call)
    return parts


def usage_metadata(reply: Reply) -> JSON:
    usage = reply.usage
    # Gemini counts thoughts apart from candidates; the total adds both.
    candidates = max(0, usage.output_tokens - usage.reasoning_tokens)
    metadata: JSON = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
    }
    if usage.reasoning_tokens:
        metadata["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_tokens
    return metadata


def final_response(model: str, response_id: str, reply: Reply, parts: list[JSON]) -> JSON:
    candidate: JSON = {
        "content": {"parts": parts, "role": "model"},
        "finishReason": FINISH_REASONS.get(reply.stop, reply.stop),
        "index": 0,
    }
    return {
        "candidates": [candidate],
        "usageMetadata": usage_metadata(reply),
        "modelVersion": model,
        "responseId": response_id,
    }


def stream_chunks(model: str, response_id: str, reply: Reply) -> list[JSON]:
    """Thoughts and text split over several chunks; function calls arrive whole; the last
    chunk carries finishReason and the full usageMetadata."""
    pieces: list[JSON] = []
    for part in _parts(reply):
        if "text" in part:
            texts = list(split_text(part["text"]))
            for position, text in enumerate(texts):
                piece = {**part, "text": text}
                if position < len(texts) - 1:
                    piece.pop("thoughtSignature", None)
                pieces.append(piece)
        else:
            pieces.append(part)
    if not pieces:
        pieces.append({"text": ""})
    prompt_usage = {"promptTokenCount": reply.usage.input_tokens, "totalTokenCount": reply.usage.input_tokens}
    chunks: list[JSON] = [
        {
            "candidates": [{"content": {"parts": [piece], "role": "model"}, "index": 0}],
            "usageMetadata": prompt_usage,
            "modelVersion": model,
            "responseId": response_id,
        }
        for piece in pieces[:-1]
    ]
    chunks.append(final_response(model, response_id, reply, [pieces[-1]]))
    return chunks


def json_array_frames(chunks: list[JSON]) -> Iterator[bytes]:
    for index, chunk in enumerate(chunks):
        yield (b"[" if index == 0 else b",\r\n") + orjson.dumps(chunk)
    yield b"]"


__all__ = ["FakeGemini"]


def images_in(body: JSON) -> list[bytes]:
    """The inline data of a request's parts, decoded as the API does (either base64 alphabet)."""
    found: list[bytes] = []
    for number, content in enumerate(body.get("contents") or ()):
        for index, part in enumerate(content.get("parts") or ()):
            blob = _get(part, "inlineData")
            if isinstance(blob, dict):
                found.append(base64_bytes(blob.get("data"), f"contents[{number}].parts[{index}].inlineData.data",
                                          urlsafe=True))
    return found
