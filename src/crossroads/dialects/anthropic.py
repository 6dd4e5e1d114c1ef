"""Anthropic Messages API (``POST /v1/messages``) <-> IR.

Choices worth knowing (the SDK's types, ``anthropic`` 2.14, are the reference):

* Mid-conversation ``role: "system"`` messages (a Claude Code beta) parse to
  ``ir.Message(role="system")`` in place. When rendering, leading system
  messages join the top-level ``system`` blocks; a later one is folded into
  the adjacent user turn as a plain text block (``mid_conversation_system=
  "fold"``, the default: works on every Anthropic-compatible upstream) or
  kept as a system message (``"keep"``: the SDK's ``SystemMessageParam``).
* The SDK's create params have no ``temperature``/``top_p``/``top_k`` (and
  the API rejects unknown top-level fields), so they are parsed into the IR
  but only rendered when ``sampling_params=True`` (for Anthropic-compatible
  upstreams that still take them). With thinking on, temperature and top_k
  are dropped and top_p is kept only when >= 0.95.
* ``max_tokens`` is mandatory: None renders as 8192. A thinking budget is at
  least 1024 and must stay below ``max_tokens``; when it does not,
  ``max_tokens`` becomes budget + the answer room the client asked for.
  Forced tool use (``any``/``tool``) is incompatible with a thinking budget:
  thinking is omitted then. Effort ``none`` renders ``thinking: disabled``.
* Usage: IR ``input_tokens`` = ``input_tokens`` + cache reads + cache
  writes; ``output_tokens_details.thinking_tokens`` <-> ``reasoning_tokens``.
* Extra fields round-trip through ``extra["anthropic"]`` dicts whose keys are
  the wire keys they merge back into. Blocks the IR cannot hold (server tool
  results, file sources, ...) are kept as ``[position, block]`` pairs under
  ``extra["anthropic"]["content"]`` of their message / tool result / response.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

import orjson

from crossroads import ids, ir, reasoning, sse
from crossroads.dialects.wire import optional_int as _opt_int
from crossroads.dialects.wire import optional_str as _opt_str
from crossroads.dialects.wire import require_dict as _dict
from crossroads.dialects.wire import require_list as _list
from crossroads.dialects.wire import require_str as _str

NAME = "anthropic"
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
MIN_TOP_P_WITH_THINKING = 0.95
TOOL_KIND_PREFIX = NAME + ":"

JSON = dict[str, Any]

# --------------------------------------------------------------------- tables

STOP_FROM_WIRE: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}
STOP_TO_WIRE: dict[str, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "content_filter": "refusal",
    "error": "end_turn",
}

ERROR_KIND_FROM_TYPE: dict[str, ir.ErrorKind] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication",
    "billing_error": "permission",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit",
    "timeout_error": "timeout",
    "api_error": "server_error",
    "overloaded_error": "overloaded",
}
# The SDK's ErrorObject union has no "request_too_large" type: a 413 carries
# invalid_request_error.
ERROR_WIRE_FOR_KIND: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "authentication": (401, "authentication_error"),
    "permission": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "request_too_large": (413, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "timeout": (504, "timeout_error"),
    "server_error": (500, "api_error"),
    "overloaded": (529, "overloaded_error"),
}
# Error types the SDK's ErrorObject union accepts; an ir.Error.code naming one
# of them (e.g. billing_error) is rendered as that type.
SDK_ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "billing_error", "permission_error",
    "not_found_error", "rate_limit_error", "timeout_error", "api_error", "overloaded_error",
})
_CANONICAL_ERROR_TYPES = frozenset(ERROR_KIND_FROM_TYPE) - {"billing_error"}

NATIVE_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
DISPLAY_FROM_INCLUDE = {True: "summarized", False: "omitted"}
INCLUDE_FROM_DISPLAY = {"summarized": True, "omitted": False}

_IMAGE_MAGIC = (("/9j/", "image/jpeg"), ("iVBORw0KGgo", "image/png"), ("R0lGOD", "image/gif"),
                ("UklGR", "image/webp"))

# Known keys per wire object; anything else is kept in ``extra``.
_REQUEST_KEYS = frozenset({
    "model", "messages", "system", "max_tokens", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "metadata", "output_config", "output_format",
})
_MESSAGE_KEYS = frozenset({"role", "content"})
_TEXT_KEYS = frozenset({"type", "text", "cache_control"})
_IMAGE_KEYS = frozenset({"type", "source", "cache_control"})
_DOCUMENT_KEYS = frozenset({"type", "source", "cache_control", "title"})
_TOOL_USE_KEYS = frozenset({"type", "id", "name", "input"})
_TOOL_RESULT_KEYS = frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"})
_THINKING_KEYS = frozenset({"type", "thinking", "signature"})
_TOOL_KEYS = frozenset({"name", "description", "input_schema", "cache_control", "strict"})
_RESPONSE_KEYS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "stop_sequence",
                            "usage"})
_USAGE_KEYS = frozenset({"input_tokens", "output_tokens", "cache_read_input_tokens",
                         "cache_creation_input_tokens", "output_tokens_details"})

UPSTREAM_CUT = "upstream stream ended before completion"


# --------------------------------------------------------------------- small helpers


def _leftovers(obj: JSON, known: frozenset[str]) -> JSON | None:
    if obj.keys() <= known:
        return None
    return {key: value for key, value in obj.items() if key not in known}


def _wrap(fields: JSON | None) -> JSON | None:
    return {NAME: fields} if fields else None


def _mine(extra: JSON | None) -> JSON:
    if not extra:
        return {}
    fields = extra.get(NAME)
    return fields if isinstance(fields, dict) else {}


def _merge_extra(block: JSON, extra: JSON | None) -> JSON:
    fields = _mine(extra)
    if not fields:
        return block
    return {**fields, **block}












def _opt_number(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ir.bad_request(f"{param}: expected a number", param)
    return value


def _opt_dict(value: Any, param: str) -> JSON | None:
    return None if value is None else _dict(value, param)


def sniff_image_type(data: str) -> str | None:
    for prefix, media_type in _IMAGE_MAGIC:
        if data.startswith(prefix):
            return media_type
    return None


def parse_data_url(url: str) -> tuple[str | None, str]:
    """``data:[type][;base64],payload`` -> (media type, base64 data)."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise ir.bad_request("malformed data URL")
    media_type = header.split(";", 1)[0] or None
    if ";base64" in header:
        return media_type, payload
    return media_type, base64.b64encode(unquote_to_bytes(payload)).decode()


def tool_input(arguments: str) -> JSON:
    """Tool-call argument text -> the ``input`` object Anthropic requires."""
    if not arguments or arguments.isspace():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    else:
        if isinstance(value, dict):
            return value
    # Invalid or non-object arguments (e.g. a truncated call in the history)
    # cannot be an ``input``; keep the text rather than fail the request.
    return {"_raw_arguments": arguments}


def _tool_arguments(value: Any, param: str) -> str:
    if not isinstance(value, dict):
        raise ir.bad_request(f"{param}: expected an object", param)
    return orjson.dumps(value).decode()


class _ToolIds:
    """Sanitises tool ids consistently within one rendering (calls and results)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, tool_id: str) -> str:
        safe = self._seen.get(tool_id)
        if safe is None:
            safe = self._seen[tool_id] = ids.safe_tool_id(tool_id)
        return safe


def interleave(blocks: list[tuple[int, JSON]], raw: Any) -> list[JSON]:
    """``blocks`` are (IR part position, rendered block); ``raw`` holds the
    ``[position, block]`` pairs the parser kept for blocks the IR cannot hold."""
    if not raw:
        return [block for _, block in blocks]
    pending = sorted((pair for pair in raw if isinstance(pair, list | tuple) and len(pair) == 2),
                     key=lambda pair: pair[0])
    out: list[JSON] = []
    waiting = 0
    for position, block in blocks:
        while waiting < len(pending) and pending[waiting][0] <= position:
            out.append(pending[waiting][1])
            waiting += 1
        out.append(block)
    out.extend(pair[1] for pair in pending[waiting:])
    return out


# --------------------------------------------------------------------- usage


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_wire(usage: JSON) -> ir.Usage:
    uncached = _count(usage.get("input_tokens"))
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    return ir.Usage(
        input_tokens=None if uncached is None else uncached + (cache_read or 0) + (cache_write or 0),
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=_count(details.get("thinking_tokens")) if isinstance(details, dict) else None,
    )


def _uncached_input(usage: ir.Usage) -> int | None:
    if usage.input_tokens is None:
        return None
    return max(0, usage.input_tokens - (usage.cache_read_tokens or 0) - (usage.cache_write_tokens or 0))


def usage_to_wire(usage: ir.Usage | None, *, complete: bool) -> JSON:
    """``complete``: the full ``Usage`` shape (input/output required) rather than
    ``MessageDeltaUsage`` (only output required)."""
    body: JSON = {}
    if usage is None:
        usage = ir.Usage()
    uncached = _uncached_input(usage)
    if uncached is not None or complete:
        body["input_tokens"] = uncached or 0
    body["output_tokens"] = usage.output_tokens or 0
    if usage.cache_write_tokens is not None:
        body["cache_creation_input_tokens"] = usage.cache_write_tokens
    if usage.cache_read_tokens is not None:
        body["cache_read_input_tokens"] = usage.cache_read_tokens
    if usage.reasoning_tokens is not None:
        body["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return body


# --------------------------------------------------------------------- request: wire -> IR


def _cache_control(block: JSON, param: str) -> JSON | None:
    return _opt_dict(block.get("cache_control"), f"{param}.cache_control")


def _parse_text_block(block: JSON, param: str) -> ir.TextPart:
    return ir.TextPart(
        text=_str(block.get("text"), f"{param}.text"),
        cache_control=_cache_control(block, param),
        extra=_wrap(_leftovers(block, _TEXT_KEYS)),
    )


def _parse_image_block(block: JSON, param: str) -> ir.ImagePart | None:
    source = _dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    part = ir.ImagePart(cache_control=_cache_control(block, param), extra=_wrap(_leftovers(block, _IMAGE_KEYS)))
    if kind == "base64":
        part.media_type = _opt_str(source.get("media_type"), f"{param}.source.media_type")
        part.data = _str(source.get("data"), f"{param}.source.data")
    elif kind == "url":
        url = _str(source.get("url"), f"{param}.source.url")
        if url.startswith("data:"):
            part.media_type, part.data = parse_data_url(url)
        else:
            part.url = url
    else:
        return None  # file ids and future sources stay raw
    return part


def _parse_document_block(block: JSON, param: str) -> ir.DocumentPart | None:
    source = _dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    part = ir.DocumentPart(
        filename=_opt_str(block.get("title"), f"{param}.title"),
        cache_control=_cache_control(block, param),
        extra=_wrap(_leftovers(block, _DOCUMENT_KEYS)),
    )
    if kind == "base64":
        part.media_type = _opt_str(source.get("media_type"), f"{param}.source.media_type")
        part.data = _str(source.get("data"), f"{param}.source.data")
    elif kind == "text":
        # IR documents are always base64; plain-text sources carry raw text.
        text = _str(source.get("data"), f"{param}.source.data")
        part.media_type = _opt_str(source.get("media_type"), f"{param}.source.media_type") or "text/plain"
        part.data = base64.b64encode(text.encode()).decode()
    elif kind == "url":
        part.url = _str(source.get("url"), f"{param}.source.url")
    else:
        return None  # "content" and "file" sources stay raw
    return part


def _parse_media_or_text(block: JSON, param: str) -> ir.TextPart | ir.ImagePart | ir.DocumentPart | None:
    kind = block.get("type")
    if kind == "text":
        return _parse_text_block(block, param)
    if kind == "image":
        return _parse_image_block(block, param)
    if kind == "document":
        return _parse_document_block(block, param)
    return None


def _parse_tool_result(block: JSON, param: str, tool_names: dict[str, str]) -> ir.ToolResultPart:
    tool_use_id = _str(block.get("tool_use_id"), f"{param}.tool_use_id")
    content = block.get("content")
    parts: list[ir.TextPart | ir.ImagePart | ir.DocumentPart] = []
    raw: list[list[Any]] = []
    if isinstance(content, str):
        parts.append(ir.TextPart(text=content))
    elif content is not None:
        for index, item in enumerate(_list(content, f"{param}.content")):
            item_param = f"{param}.content.{index}"
            part = _parse_media_or_text(_dict(item, item_param), item_param)
            if part is None:
                raw.append([len(parts), item])
            else:
                parts.append(part)
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise ir.bad_request(f"{param}.is_error: expected a boolean", f"{param}.is_error")
    fields = _leftovers(block, _TOOL_RESULT_KEYS) or {}
    if raw:
        fields["content"] = raw
    return ir.ToolResultPart(
        tool_call_id=tool_use_id,
        content=parts,
        is_error=is_error,
        name=tool_names.get(tool_use_id),
        cache_control=_cache_control(block, param),
        extra=_wrap(fields),
    )


def _parse_block(block: JSON, param: str, tool_names: dict[str, str]) -> ir.Part | None:
    kind = block.get("type")
    if kind == "text" or kind == "image" or kind == "document":
        return _parse_media_or_text(block, param)
    if kind == "tool_use":
        tool_id = _str(block.get("id"), f"{param}.id")
        name = _str(block.get("name"), f"{param}.name")
        tool_names[tool_id] = name
        return ir.ToolCallPart(
            id=tool_id,
            name=name,
            arguments=_tool_arguments(block.get("input"), f"{param}.input"),
            extra=_wrap(_leftovers(block, _TOOL_USE_KEYS)),
        )
    if kind == "tool_result":
        return _parse_tool_result(block, param, tool_names)
    if kind == "thinking":
        return ir.ThinkingPart(
            text=_str(block.get("thinking"), f"{param}.thinking"),
            signature=_opt_str(block.get("signature"), f"{param}.signature"),
            extra=_wrap(_leftovers(block, _THINKING_KEYS)),
        )
    if kind == "redacted_thinking":
        return ir.ThinkingPart(redacted=_str(block.get("data"), f"{param}.data"))
    if not isinstance(kind, str):
        raise ir.bad_request(f"{param}.type: expected a string", f"{param}.type")
    return None


def _parse_content(content: Any, param: str, tool_names: dict[str, str]) -> tuple[list[ir.Part], list[list[Any]]]:
    if isinstance(content, str):
        return [ir.TextPart(text=content)], []
    parts: list[ir.Part] = []
    raw: list[list[Any]] = []
    for index, block in enumerate(_list(content, param)):
        block_param = f"{param}.{index}"
        part = _parse_block(_dict(block, block_param), block_param, tool_names)
        if part is None:
            raw.append([len(parts), block])
        else:
            parts.append(part)
    return parts, raw


def _parse_message(message: Any, param: str, tool_names: dict[str, str]) -> ir.Message:
    message = _dict(message, param)
    role = message.get("role")
    if role not in ("user", "assistant", "system"):
        raise ir.bad_request(f"{param}.role: expected user, assistant or system, got {role!r}", f"{param}.role")
    if "content" not in message:
        raise ir.bad_request(f"{param}.content: field required", f"{param}.content")
    parts, raw = _parse_content(message["content"], f"{param}.content", tool_names)
    if role == "system" and any(not isinstance(part, ir.TextPart) for part in parts):
        raise ir.bad_request(f"{param}.content: system messages take text blocks only", f"{param}.content")
    fields = _leftovers(message, _MESSAGE_KEYS) or {}
    if raw:
        fields["content"] = raw
    return ir.Message(role=role, parts=parts, extra=_wrap(fields))


def _parse_system(system: Any) -> list[ir.TextPart]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.TextPart(text=system)] if system else []
    parts = []
    for index, block in enumerate(_list(system, "system")):
        param = f"system.{index}"
        block = _dict(block, param)
        if block.get("type") != "text":
            raise ir.bad_request(f"{param}.type: system blocks must be text", f"{param}.type")
        parts.append(_parse_text_block(block, param))
    return parts


def _parse_tool(tool: Any, param: str) -> ir.Tool:
    tool = _dict(tool, param)
    kind = tool.get("type")
    if kind is None or kind == "custom":
        if "input_schema" not in tool:
            raise ir.bad_request(f"{param}.input_schema: field required", f"{param}.input_schema")
        strict = tool.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise ir.bad_request(f"{param}.strict: expected a boolean", f"{param}.strict")
        return ir.Tool(
            name=_str(tool.get("name"), f"{param}.name"),
            description=_opt_str(tool.get("description"), f"{param}.description"),
            parameters=_dict(tool["input_schema"], f"{param}.input_schema"),
            strict=strict,
            cache_control=_cache_control(tool, param),
            extra=_wrap(_leftovers(tool, _TOOL_KEYS)),
        )
    kind = _str(kind, f"{param}.type")
    name = tool.get("name")
    return ir.Tool(
        name=name if isinstance(name, str) else kind,
        kind=TOOL_KIND_PREFIX + kind,
        raw=tool,
        cache_control=_opt_dict(tool.get("cache_control"), f"{param}.cache_control"),
    )


def _parse_tool_choice(choice: Any) -> tuple[ir.ToolChoice, bool | None]:
    choice = _dict(choice, "tool_choice")
    kind = choice.get("type")
    disable_parallel = choice.get("disable_parallel_tool_use")
    if disable_parallel is not None and not isinstance(disable_parallel, bool):
        raise ir.bad_request("tool_choice.disable_parallel_tool_use: expected a boolean",
                             "tool_choice.disable_parallel_tool_use")
    parallel = None if disable_parallel is None else not disable_parallel
    if kind == "auto":
        return ir.ToolChoice("auto"), parallel
    if kind == "any":
        return ir.ToolChoice("required"), parallel
    if kind == "none":
        return ir.ToolChoice("none"), parallel
    if kind == "tool":
        return ir.ToolChoice("tool", _str(choice.get("name"), "tool_choice.name")), parallel
    raise ir.bad_request(f"tool_choice.type: expected auto, any, tool or none, got {kind!r}", "tool_choice.type")


def _parse_reasoning(thinking: Any, output_config: JSON) -> tuple[ir.Reasoning | None, bool]:
    """-> (reasoning, whether output_config.effort was used up by it)."""
    thinking = _dict(thinking, "thinking")
    kind = thinking.get("type")
    display = thinking.get("display")
    include = INCLUDE_FROM_DISPLAY.get(display) if isinstance(display, str) else None
    if kind == "enabled":
        budget = _opt_int(thinking.get("budget_tokens"), "thinking.budget_tokens")
        if budget is None:
            raise ir.bad_request("thinking.budget_tokens: field required", "thinking.budget_tokens")
        return ir.Reasoning(budget=budget, include_thoughts=include), False
    if kind == "disabled":
        return ir.Reasoning(effort="none"), False
    if kind == "adaptive":
        effort = _opt_str(output_config.get("effort"), "output_config.effort")
        return ir.Reasoning(effort=effort, adaptive=True, include_thoughts=include), True
    raise ir.bad_request(f"thinking.type: unsupported value {kind!r}", "thinking.type")


def _parse_output_format(value: Any, param: str) -> ir.ResponseFormat | None:
    if value is None:
        return None
    value = _dict(value, param)
    if value.get("type") != "json_schema":
        raise ir.bad_request(f"{param}.type: expected json_schema", f"{param}.type")
    return ir.ResponseFormat(type="json_schema", schema=_dict(value.get("schema"), f"{param}.schema"))


def parse_request(body: Any, model: str | None, stream: bool | None) -> ir.Request:
    body = _dict(body, "body")
    model_name = model if model is not None else body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("model: field required", "model")
    tool_names: dict[str, str] = {}
    messages = [
        _parse_message(message, f"messages.{index}", tool_names)
        for index, message in enumerate(_list(body.get("messages"), "messages"))
    ]
    request = ir.Request(model=model_name, messages=messages, system=_parse_system(body.get("system")))
    extra = _leftovers(body, _REQUEST_KEYS) or {}

    request.max_tokens = _opt_int(body.get("max_tokens"), "max_tokens")
    request.temperature = _opt_number(body.get("temperature"), "temperature")
    request.top_p = _opt_number(body.get("top_p"), "top_p")
    request.top_k = _opt_int(body.get("top_k"), "top_k")
    stops = body.get("stop_sequences")
    if stops is not None:
        request.stop = [_str(stop, f"stop_sequences.{i}") for i, stop in enumerate(_list(stops, "stop_sequences"))]
    request.stream = bool(body.get("stream")) if stream is None else stream

    tools = body.get("tools")
    if tools is not None:
        request.tools = [_parse_tool(tool, f"tools.{i}") for i, tool in enumerate(_list(tools, "tools"))]
    if body.get("tool_choice") is not None:
        request.tool_choice, request.parallel_tool_calls = _parse_tool_choice(body["tool_choice"])

    output_config = dict(_opt_dict(body.get("output_config"), "output_config") or {})
    if body.get("thinking") is not None:
        request.reasoning, effort_used = _parse_reasoning(body["thinking"], output_config)
        if effort_used:
            output_config.pop("effort", None)
    if "format" in output_config:
        request.response_format = _parse_output_format(output_config.pop("format"), "output_config.format")
    elif body.get("output_format") is not None:  # the structured-outputs beta's spelling
        request.response_format = _parse_output_format(body["output_format"], "output_format")
    if output_config:
        extra["output_config"] = output_config

    metadata = _opt_dict(body.get("metadata"), "metadata")
    if metadata:
        request.user = _opt_str(metadata.get("user_id"), "metadata.user_id")
        other = {key: value for key, value in metadata.items() if key != "user_id"}
        if other:
            extra["metadata"] = other
    if extra:
        request.extra[NAME] = extra
    return request


# --------------------------------------------------------------------- request: IR -> wire


def _render_text(part: ir.TextPart) -> JSON | None:
    if not part.text:
        return None  # the API rejects empty text blocks
    block: JSON = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return _merge_extra(block, part.extra)


def _placeholder(text: str) -> JSON:
    return {"type": "text", "text": text}


def _render_image(part: ir.ImagePart) -> JSON | None:
    if part.data:
        source: JSON = {"type": "base64", "media_type": part.media_type or sniff_image_type(part.data)
                        or "image/png", "data": part.data}
    elif part.url and part.url.startswith("data:"):
        media_type, data = parse_data_url(part.url)
        source = {"type": "base64", "media_type": media_type or sniff_image_type(data) or "image/png",
                  "data": data}
    elif part.url and part.url.startswith(("http://", "https://")):
        source = {"type": "url", "url": part.url}
    elif part.url:
        return _placeholder(f"[image: {part.url}]")
    else:
        return None
    block: JSON = {"type": "image", "source": source}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return _merge_extra(block, part.extra)


def _decode_text(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ir.bad_request("text document: data is not base64-encoded UTF-8") from None


def _render_document(part: ir.DocumentPart) -> JSON | None:
    media_type = (part.media_type or "").lower()
    if part.data and media_type.startswith("image/"):
        return _render_image(ir.ImagePart(media_type=part.media_type, data=part.data,
                                          cache_control=part.cache_control))
    if part.data and media_type.startswith("text/"):
        source: JSON = {"type": "text", "media_type": "text/plain", "data": _decode_text(part.data)}
    elif part.data and media_type in ("", "application/pdf"):
        source = {"type": "base64", "media_type": "application/pdf", "data": part.data}
    elif part.data:
        # Anthropic documents are PDF or plain text only.
        return _placeholder(f"[file: {part.filename or 'attachment'} ({part.media_type})]")
    elif part.url:
        source = {"type": "url", "url": part.url}
    else:
        return None
    block: JSON = {"type": "document", "source": source}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    if part.filename is not None:
        block["title"] = part.filename
    return _merge_extra(block, part.extra)


def _render_media_or_text(part: ir.Part) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return _render_text(part)
    if isinstance(part, ir.ImagePart):
        return _render_image(part)
    if isinstance(part, ir.DocumentPart):
        return _render_document(part)
    return None


def _compact(blocks: list[JSON]) -> str | list[JSON]:
    """A lone plain text block is sent as a string, the shorthand clients use."""
    if len(blocks) == 1 and blocks[0].keys() == {"type", "text"} and blocks[0]["type"] == "text":
        text: str = blocks[0]["text"]
        return text
    return blocks


def _render_tool_result(part: ir.ToolResultPart, tool_ids: _ToolIds) -> JSON:
    block: JSON = {"type": "tool_result", "tool_use_id": tool_ids(part.tool_call_id)}
    fields = _mine(part.extra)
    if len(part.content) == 1 and isinstance(part.content[0], ir.TextPart) and not fields.get("content"):
        only = part.content[0]
        rendered = _render_text(only) or {"type": "text", "text": ""}
        block["content"] = _compact([rendered])
    else:
        rendered_items = []
        for position, item in enumerate(part.content):
            rendered_item = _render_media_or_text(item)
            if rendered_item is not None:
                rendered_items.append((position, rendered_item))
        items = interleave(rendered_items, fields.get("content"))
        if items:
            block["content"] = items
    if part.is_error:
        block["is_error"] = True
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    other = {key: value for key, value in fields.items() if key != "content"}
    return {**other, **block} if other else block


def _render_thinking(part: ir.ThinkingPart) -> JSON | None:
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.signature:
        # Without Anthropic's signature the API rejects a thinking block
        # (e.g. reasoning text from OpenAI-style upstreams): drop it.
        return None
    return _merge_extra({"type": "thinking", "thinking": part.text, "signature": part.signature}, part.extra)


def _render_part(part: ir.Part, tool_ids: _ToolIds) -> JSON | None:
    if isinstance(part, ir.ToolCallPart):
        block: JSON = {"type": "tool_use", "id": tool_ids(part.id), "name": part.name,
                       "input": tool_input(part.arguments)}
        return _merge_extra(block, part.extra)
    if isinstance(part, ir.ToolResultPart):
        return _render_tool_result(part, tool_ids)
    if isinstance(part, ir.ThinkingPart):
        return _render_thinking(part)
    return _render_media_or_text(part)


def _render_blocks(message: ir.Message, tool_ids: _ToolIds) -> list[JSON]:
    rendered = []
    for position, part in enumerate(message.parts):
        block = _render_part(part, tool_ids)
        if block is not None:
            rendered.append((position, block))
    return interleave(rendered, _mine(message.extra).get("content"))


def _system_blocks(parts: list[ir.Part]) -> list[JSON]:
    blocks = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            block = _render_text(part)
            if block is not None:
                blocks.append(block)
    return blocks


def _tool_results_first(blocks: list[JSON]) -> list[JSON]:
    results = [block for block in blocks if block.get("type") == "tool_result"]
    if not results or len(results) == len(blocks):
        return blocks
    return results + [block for block in blocks if block.get("type") != "tool_result"]


class _Turn:
    __slots__ = ("blocks", "fields", "role")

    def __init__(self, role: str, blocks: list[JSON], fields: JSON) -> None:
        self.role = role
        self.blocks = blocks
        self.fields = fields

    def wire(self) -> JSON:
        blocks = _tool_results_first(self.blocks) if self.role == "user" else self.blocks
        return {**self.fields, "role": self.role, "content": _compact(blocks)}


def _message_fields(message: ir.Message) -> JSON:
    fields = _mine(message.extra)
    if not fields:
        return {}
    return {key: value for key, value in fields.items() if key not in ("content", "role")}


def render_messages(messages: list[ir.Message], *, keep_system: bool) -> tuple[list[JSON], list[JSON]]:
    """-> (top-level system blocks from leading system messages, wire messages)."""
    tool_ids = _ToolIds()
    system: list[JSON] = []
    turns: list[_Turn] = []
    leading = True
    for message in messages:
        if message.role == "system":
            blocks = _system_blocks(message.parts)
            if leading:
                system.extend(blocks)
                continue
            role = "system" if keep_system else "user"
        else:
            leading = False
            blocks = _render_blocks(message, tool_ids)
            role = message.role
        if not blocks:
            continue
        if turns and turns[-1].role == role:
            turns[-1].blocks.extend(blocks)  # the API wants alternating turns
        else:
            turns.append(_Turn(role, blocks, _message_fields(message)))
    return system, [turn.wire() for turn in turns]


def _tool_to_wire(tool: ir.Tool) -> JSON | None:
    if tool.kind == "function":
        block: JSON = {"name": tool.name,
                       "input_schema": tool.parameters if tool.parameters is not None
                       else {"type": "object", "properties": {}}}
        if tool.description is not None:
            block["description"] = tool.description
        if tool.cache_control is not None:
            block["cache_control"] = tool.cache_control
        if tool.strict is not None:
            block["strict"] = tool.strict
        return _merge_extra(block, tool.extra)
    if tool.kind.startswith(TOOL_KIND_PREFIX) and tool.raw is not None:
        return tool.raw
    return None  # another dialect's server tool: nothing equivalent here


def _tool_choice_to_wire(choice: ir.ToolChoice | None, parallel: bool | None) -> JSON | None:
    mode = choice.mode if choice is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    if choice is None and parallel is None:
        return None
    if mode == "required":
        wire: JSON = {"type": "any"}
    elif mode == "tool" and choice is not None and choice.name:
        wire = {"type": "tool", "name": choice.name}
    else:
        wire = {"type": "auto"}
    if parallel is not None:
        wire["disable_parallel_tool_use"] = not parallel
    return wire


def anthropic_effort(effort: str | None) -> str | None:
    if effort is None:
        return None
    effort = effort.lower()
    if effort in NATIVE_EFFORTS:
        return effort
    return reasoning.ANTHROPIC_EFFORTS.get(effort)


def _thinking_display(setting: ir.Reasoning, thinking: JSON) -> JSON:
    if setting.include_thoughts is not None:
        thinking["display"] = DISPLAY_FROM_INCLUDE[setting.include_thoughts]
    return thinking


def _render_reasoning(request: ir.Request, body: JSON, output_config: JSON) -> bool:
    """Sets ``thinking`` (and maybe ``output_config.effort`` / ``max_tokens``).
    Returns whether thinking is on."""
    setting = request.reasoning
    if setting is None:
        return False
    if setting.adaptive:
        body["thinking"] = _thinking_display(setting, {"type": "adaptive"})
        level = reasoning.effective_level(setting)
        effort = anthropic_effort(level) if level != "none" else None
        if effort is not None:
            output_config["effort"] = effort
        return True
    budget = reasoning.effective_budget(setting)
    if budget is None:
        return False
    if budget == 0:
        body["thinking"] = {"type": "disabled"}
        return False
    choice = request.tool_choice
    if choice is not None and choice.mode in ("required", "tool"):
        return False  # forced tool use and a thinking budget are mutually exclusive
    if budget < 0:  # "auto": let the table's Anthropic equivalent decide
        budget = reasoning.budget_for_level(reasoning.ANTHROPIC_EFFORTS["auto"])
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget >= body["max_tokens"]:
        body["max_tokens"] = budget + body["max_tokens"]
    body["thinking"] = _thinking_display(setting, {"type": "enabled", "budget_tokens": budget})
    return True


def _render_output_format(response_format: ir.ResponseFormat | None) -> JSON | None:
    if response_format is None or response_format.type == "text":
        return None
    schema = response_format.schema if response_format.schema is not None else {"type": "object"}
    return {"type": "json_schema", "schema": schema}


def _render_sampling(request: ir.Request, body: JSON, thinking_on: bool) -> None:
    if request.temperature is not None and not thinking_on:
        body["temperature"] = request.temperature
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k
    if request.top_p is not None and (not thinking_on or request.top_p >= MIN_TOP_P_WITH_THINKING):
        body["top_p"] = request.top_p


def render_request(request: ir.Request, *, keep_system: bool, sampling_params: bool) -> JSON:
    extra = dict(request.extra.get(NAME) or {})
    output_config: JSON = dict(extra.pop("output_config", None) or {})
    metadata: JSON = dict(extra.pop("metadata", None) or {})
    body: JSON = extra
    body["model"] = request.model
    body["max_tokens"] = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS

    leading_system, messages = render_messages(request.messages, keep_system=keep_system)
    system = _system_blocks(list(request.system)) + leading_system
    if system:
        body["system"] = _compact(system)
    body["messages"] = messages

    tools = [wire for wire in map(_tool_to_wire, request.tools) if wire is not None]
    if tools:
        body["tools"] = tools
        choice = _tool_choice_to_wire(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice

    thinking_on = _render_reasoning(request, body, output_config)
    if sampling_params:
        _render_sampling(request, body, thinking_on)
    output_format = _render_output_format(request.response_format)
    if output_format is not None:
        output_config["format"] = output_format
    if output_config:
        body["output_config"] = output_config
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        metadata["user_id"] = request.user
    if metadata:
        body["metadata"] = metadata
    if request.stream:
        body["stream"] = True
    return body


# --------------------------------------------------------------------- responses


def stop_from_wire(value: Any) -> ir.StopReason | None:
    if value is None:
        return None
    return STOP_FROM_WIRE.get(value, "end_turn")


def stop_to_wire(stop: ir.StopReason | None, has_tool_calls: bool) -> str:
    # Some upstreams report a plain stop alongside tool calls; Anthropic
    # clients look at tool_use to run the tools.
    if has_tool_calls and stop in (None, "end_turn"):
        return "tool_use"
    return STOP_TO_WIRE.get(stop or "end_turn", "end_turn")


def _parse_response_block(block: JSON, param: str) -> ir.Part | None:
    kind = block.get("type")
    if kind == "text":
        return _parse_text_block(block, param)
    if kind == "thinking" or kind == "redacted_thinking" or kind == "tool_use":
        return _parse_block(block, param, {})
    return None


def parse_response(body: Any) -> ir.Response:
    body = _dict(body, "response")
    parts: list[ir.Part] = []
    raw: list[list[Any]] = []
    for index, block in enumerate(_list(body.get("content") or [], "content")):
        part = _parse_response_block(_dict(block, f"content.{index}"), f"content.{index}")
        if part is None:
            raw.append([len(parts), block])
        else:
            parts.append(part)
    fields = _leftovers(body, _RESPONSE_KEYS) or {}
    if raw:
        fields["content"] = raw
    wire_stop = body.get("stop_reason")
    stop = stop_from_wire(wire_stop)
    if wire_stop is not None and STOP_TO_WIRE.get(stop or "") != wire_stop:
        fields["stop_reason"] = wire_stop  # e.g. model_context_window_exceeded
    usage_body = body.get("usage")
    usage = None
    if isinstance(usage_body, dict):
        usage = usage_from_wire(usage_body)
        usage_rest = _leftovers(usage_body, _USAGE_KEYS)
        if usage_rest:
            fields["usage"] = usage_rest
    response = ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        parts=parts,
        stop_reason=stop,
        stop_sequence=body.get("stop_sequence"),
        usage=usage,
    )
    if fields:
        response.extra[NAME] = fields
    return response


def _render_response_part(part: ir.Part, tool_ids: _ToolIds) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return _merge_extra({"type": "text", "text": part.text}, part.extra)
    if isinstance(part, ir.ThinkingPart):
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.redacted}
        if not part.text and not part.signature:
            return None  # e.g. only OpenAI encrypted reasoning: nothing to show here
        return _merge_extra({"type": "thinking", "thinking": part.text, "signature": part.signature or ""},
                            part.extra)
    if isinstance(part, ir.ToolCallPart):
        return _merge_extra({"type": "tool_use", "id": tool_ids(part.id), "name": part.name,
                             "input": tool_input(part.arguments)}, part.extra)
    return None


def render_response(response: ir.Response) -> JSON:
    fields = dict(response.extra.get(NAME) or {})
    tool_ids = _ToolIds()
    rendered = []
    for position, part in enumerate(response.parts):
        block = _render_response_part(part, tool_ids)
        if block is not None:
            rendered.append((position, block))
    content = interleave(rendered, fields.pop("content", None))
    has_tool_calls = any(isinstance(part, ir.ToolCallPart) for part in response.parts)
    stop = stop_to_wire(response.stop_reason, has_tool_calls)
    wire_stop = fields.pop("stop_reason", None)
    if isinstance(wire_stop, str) and stop_from_wire(wire_stop) == response.stop_reason:
        stop = wire_stop
    usage_rest = fields.pop("usage", None)
    usage = usage_to_wire(response.usage, complete=True)
    if isinstance(usage_rest, dict):
        usage = {**usage_rest, **usage}
    return {
        **fields,
        "id": response.id or ids.new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": response.stop_sequence,
        "usage": usage,
    }


# --------------------------------------------------------------------- errors


def error_from_payload(payload: Any, status: int | None) -> ir.Error:
    """An Anthropic error body (``{"type": "error", "error": {...}}``) -> ir.Error.
    ``status`` None (a mid-stream ``error`` event) derives it from the type."""
    error = payload.get("error") if isinstance(payload, dict) else None
    wire_type: str | None = None
    code: str | None = None
    message = ""
    if isinstance(error, dict):
        wire_type = error.get("type") if isinstance(error.get("type"), str) else None
        message = str(error.get("message") or "")
        details = error.get("details")
        if isinstance(details, dict) and isinstance(details.get("error_code"), str):
            code = details["error_code"]
    elif isinstance(error, str):
        message = error
    kind = ERROR_KIND_FROM_TYPE.get(wire_type or "")
    if status is None:
        kind = kind or "server_error"
        status = ERROR_WIRE_FOR_KIND[kind][0]
    elif status == 413:
        kind = "request_too_large"
    elif kind is None:
        kind = ir.kind_for_status(status)
    if code is None and wire_type is not None and wire_type not in _CANONICAL_ERROR_TYPES:
        code = wire_type
    return ir.Error(status, kind, message or wire_type or f"upstream returned HTTP {status}", code=code)


def parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and "error" in payload:
        return error_from_payload(payload, status)
    text = body.decode(errors="replace").strip()[:500]
    return ir.Error(status, ir.kind_for_status(status), text or f"upstream returned HTTP {status}")


def error_body(error: ir.Error) -> JSON:
    wire_type = error.code if error.code in SDK_ERROR_TYPES else ERROR_WIRE_FOR_KIND[error.kind][1]
    message = error.message
    if error.param and not message.startswith(error.param):
        message = f"{error.param}: {message}"
    return {"type": "error", "error": {"type": wire_type, "message": message}}


def render_error(error: ir.Error) -> tuple[int, JSON]:
    status = error.status if 400 <= error.status <= 599 else ERROR_WIRE_FOR_KIND[error.kind][0]
    return status, error_body(error)


# --------------------------------------------------------------------- stream: wire -> IR


def _raw_usage_update(raw: JSON, usage: Any) -> None:
    if isinstance(usage, dict):
        for key, value in usage.items():
            if value is not None:
                raw[key] = value


class AnthropicStreamDecoder:
    """Anthropic SSE events -> IR events. Blocks the IR cannot hold (server tool
    use and results) are skipped, so IR indices stay dense."""

    __slots__ = ("_done", "_indices", "_next", "_stop", "_stop_sequence", "_usage")

    def __init__(self) -> None:
        self._indices: dict[int, int] = {}  # wire index -> IR index
        self._next = 0
        self._usage: JSON = {}  # raw Anthropic counters, later reports win
        self._stop: Any = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, event: str | None, data: str) -> list[ir.Event]:
        if self._done:
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(ir.Error(502, "server_error", "malformed event in upstream stream"))
        if not isinstance(payload, dict):
            return []
        try:
            return self._dispatch(payload.get("type") or event, payload)
        except (AttributeError, KeyError, TypeError, ValueError):
            return self._fail(ir.Error(502, "server_error", "malformed event in upstream stream"))

    def _dispatch(self, kind: Any, payload: JSON) -> list[ir.Event]:
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "content_block_stop":
            index = self._indices.get(payload.get("index", -1))
            return [] if index is None else [ir.PartStop(index)]
        if kind == "message_start":
            message = payload.get("message") or {}
            _raw_usage_update(self._usage, message.get("usage"))
            usage = usage_from_wire(self._usage) if self._usage else None
            return [ir.Start(id=str(message.get("id") or ""), model=str(message.get("model") or ""),
                             usage=usage)]
        if kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self._stop = delta["stop_reason"]
            if delta.get("stop_sequence") is not None:
                self._stop_sequence = delta["stop_sequence"]
            _raw_usage_update(self._usage, payload.get("usage"))
            return []
        if kind == "message_stop":
            self._done = True
            return [ir.Finish(stop_reason=stop_from_wire(self._stop),
                              usage=usage_from_wire(self._usage) if self._usage else None,
                              stop_sequence=self._stop_sequence)]
        if kind == "error":
            return self._fail(error_from_payload(payload, None))
        return []  # ping and future event types

    def _fail(self, error: ir.Error) -> list[ir.Event]:
        self._done = True
        return [ir.ErrorEvent(error)]

    def _block_start(self, payload: JSON) -> list[ir.Event]:
        block = payload.get("content_block") or {}
        kind = block.get("type")
        index = self._next
        events: list[ir.Event] = []
        if kind == "text":
            events.append(ir.PartStart(index, ir.TextPart(text="")))
            if block.get("text"):
                events.append(ir.PartDelta(index, text=block["text"]))
        elif kind == "thinking":
            events.append(ir.PartStart(index, ir.ThinkingPart()))
            if block.get("thinking") or block.get("signature"):
                events.append(ir.PartDelta(index, text=block.get("thinking") or "",
                                           signature=block.get("signature") or None))
        elif kind == "redacted_thinking":
            events.append(ir.PartStart(index, ir.ThinkingPart(redacted=block.get("data") or "")))
        elif kind == "tool_use":
            events.append(ir.PartStart(index, ir.ToolCallPart(id=str(block.get("id") or ""),
                                                              name=str(block.get("name") or ""))))
            if block.get("input"):
                events.append(ir.PartDelta(index, text=orjson.dumps(block["input"]).decode()))
        else:
            return []
        self._indices[payload.get("index", index)] = index
        self._next += 1
        return events

    def _delta(self, payload: JSON) -> list[ir.Event]:
        index = self._indices.get(payload.get("index", -1))
        if index is None:
            return []
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [ir.PartDelta(index, text=delta.get("text") or "")]
        if kind == "input_json_delta":
            return [ir.PartDelta(index, text=delta.get("partial_json") or "")]
        if kind == "thinking_delta":
            return [ir.PartDelta(index, text=delta.get("thinking") or "")]
        if kind == "signature_delta":
            return [ir.PartDelta(index, signature=delta.get("signature") or "")]
        return []  # citations_delta and future kinds

    def close(self) -> list[ir.Event]:
        if self._done:
            return []
        return self._fail(ir.Error(502, "server_error", UPSTREAM_CUT))


# --------------------------------------------------------------------- stream: IR -> wire


def _frame(payload: JSON, event: str) -> bytes:
    return sse.frame(orjson.dumps(payload), event)


_PING = _frame({"type": "ping"}, "ping")
_MESSAGE_STOP = _frame({"type": "message_stop"}, "message_stop")
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def _delta_frame(index: int, delta_type: bytes, field: bytes, value: str) -> bytes:
    # Hand-assembled: this is the one frame per token on the hot path.
    return (_DELTA_HEAD + str(index).encode() + b',"delta":{"type":"' + delta_type + b'","' + field
            + b'":' + orjson.dumps(value) + b"}}\n\n")


class AnthropicStreamEncoder:
    """IR events -> Anthropic SSE: message_start, ping, content_block_* per
    part, message_delta (stop reason + final usage), message_stop."""

    __slots__ = (
        "_done",
        "_indices",
        "_kinds",
        "_model",
        "_next",
        "_open",
        "_signatures",
        "_started",
        "_tool_calls",
        "_tool_ids",
        "_usage",
    )

    def __init__(self, *, model: str, request: ir.Request | None = None) -> None:
        self._model = model
        self._started = False
        self._done = False
        self._indices: dict[int, int] = {}  # IR index -> wire index
        self._kinds: dict[int, str] = {}  # IR index -> text | thinking | redacted | tool_use
        self._open: dict[int, int] = {}  # IR index -> wire index, blocks not yet stopped
        self._next = 0
        self._usage: ir.Usage | None = None
        self._tool_calls = False
        self._tool_ids = _ToolIds()
        self._signatures: dict[int, str] = {}

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.PartDelta):
            return self._delta(event)
        if isinstance(event, ir.PartStart):
            return self._start_if_needed(None) + self._block_start(event)
        if isinstance(event, ir.PartStop):
            return self._block_stop(event.index)
        if isinstance(event, ir.Start):
            return self._start_if_needed(event)
        if isinstance(event, ir.UsageEvent):
            self._add_usage(event.usage)
            return b""
        if isinstance(event, ir.Finish):
            return self._finish(event)
        if isinstance(event, ir.ErrorEvent):
            self._done = True
            return _frame(error_body(event.error), "error")
        return b""

    def close(self) -> bytes:
        return b""

    def _add_usage(self, usage: ir.Usage | None) -> None:
        if usage is not None:
            self._usage = usage if self._usage is None else self._usage.merged(usage)

    def _start_if_needed(self, start: ir.Start | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        if start is not None:
            self._add_usage(start.usage)
        message: JSON = {
            "id": (start.id if start is not None else "") or ids.new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self._model or (start.model if start is not None else ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(self._usage, complete=True),
        }
        return _frame({"type": "message_start", "message": message}, "message_start") + _PING

    def _block_start(self, event: ir.PartStart) -> bytes:
        part = event.part
        block: JSON
        if isinstance(part, ir.TextPart):
            kind, block = "text", {"type": "text", "text": ""}
        elif isinstance(part, ir.ToolCallPart):
            self._tool_calls = True
            kind, block = "tool_use", {"type": "tool_use", "id": self._tool_ids(part.id), "name": part.name,
                                       "input": {}}
        elif part.redacted:
            kind, block = "redacted", {"type": "redacted_thinking", "data": part.redacted}
        else:
            kind, block = "thinking", {"type": "thinking", "thinking": "", "signature": ""}
        wire = self._next
        self._next += 1
        self._indices[event.index] = wire
        self._kinds[event.index] = kind
        self._open[event.index] = wire
        return _frame({"type": "content_block_start", "index": wire, "content_block": block},
                      "content_block_start")

    def _delta(self, event: ir.PartDelta) -> bytes:
        wire = self._indices.get(event.index)
        if wire is None:
            return b""
        kind = self._kinds[event.index]
        if kind == "text":
            return _delta_frame(wire, b"text_delta", b"text", event.text) if event.text else b""
        if kind == "tool_use":
            return _delta_frame(wire, b"input_json_delta", b"partial_json", event.text) if event.text else b""
        if kind == "thinking":
            if event.signature:
                # The SDK replaces (not extends) the signature on each
                # signature_delta: send it whole, just before the block stops.
                self._signatures[event.index] = self._signatures.get(event.index, "") + event.signature
            return _delta_frame(wire, b"thinking_delta", b"thinking", event.text) if event.text else b""
        return b""  # redacted thinking has no deltas

    def _block_stop(self, index: int) -> bytes:
        wire = self._open.pop(index, None)
        if wire is None:
            return b""
        signature = self._signatures.pop(index, None)
        out = _delta_frame(wire, b"signature_delta", b"signature", signature) if signature else b""
        return out + _frame({"type": "content_block_stop", "index": wire}, "content_block_stop")

    def _finish(self, event: ir.Finish) -> bytes:
        out = self._start_if_needed(None)
        for index in list(self._open):
            out += self._block_stop(index)
        self._add_usage(event.usage)
        self._done = True
        delta = {"stop_reason": stop_to_wire(event.stop_reason, self._tool_calls),
                 "stop_sequence": event.stop_sequence}
        message_delta = {"type": "message_delta", "delta": delta,
                         "usage": usage_to_wire(self._usage, complete=False)}
        return out + _frame(message_delta, "message_delta") + _MESSAGE_STOP


# --------------------------------------------------------------------- the dialect


class AnthropicDialect:
    stream_terminators: tuple[bytes, ...] = (b"message_stop",)
    needs_inline_images = False
    name = NAME

    def __init__(self, *, mid_conversation_system: Literal["fold", "keep"] = "fold",
                 sampling_params: bool = False) -> None:
        self.keep_system_messages = mid_conversation_system == "keep"
        self.sampling_params = sampling_params

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        try:
            return parse_request(body, model, stream)
        except ir.Error:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ir.bad_request(f"malformed request: {exc}") from None

    def render_request(self, request: ir.Request) -> dict[str, Any]:
        return render_request(request, keep_system=self.keep_system_messages,
                              sampling_params=self.sampling_params)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        try:
            return parse_response(body)
        except ir.Error as exc:
            raise ir.Error(502, "server_error", f"malformed upstream response: {exc.message}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ir.Error(502, "server_error", f"malformed upstream response: {exc}") from None

    def render_response(self, response: ir.Response) -> dict[str, Any]:
        return render_response(response)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(model=model, request=request)

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        return parse_error(status, body)

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]:
        return render_error(error)


DIALECT = AnthropicDialect()
