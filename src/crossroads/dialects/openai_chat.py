"""OpenAI Chat Completions (``POST /v1/chat/completions``) <-> IR.

Also the dialect of most "OpenAI-compatible" servers (DeepSeek, vLLM,
OpenRouter, ...), so the codecs accept their common extensions: assistant
``reasoning_content`` / ``reasoning`` fields and deltas, usage inside the last
choice chunk, tool-call deltas without ``index``.

Same-dialect fidelity. Fields the IR does not model are kept so that
``render_request(parse_request(body)) == body``:

* ``extra["openai-chat"]`` (on the request, messages, parts, tools, tool calls
  and responses) holds unknown wire fields, merged back verbatim;
* ``extra["openai-chat:form"]`` holds wire-shape hints (string vs. list
  content, ``max_tokens`` vs ``max_completion_tokens``, how the leading system
  messages were grouped, legacy ``functions``...). A request that carries the
  request-level hint came from this dialect.

Choices made when rendering IR from other dialects:

* ``request.system`` becomes one leading ``system`` message (text blocks
  joined with a blank line); mid-conversation IR system messages stay in
  place as ``system`` messages (the API accepts them anywhere).
* Tool results are split into one ``tool`` message each, placed before the
  rest of the user turn. Chat ``tool`` messages only carry text, so images or
  documents inside a tool result move into the user message that follows.
  ``is_error`` has no field and is dropped.
* Thinking parts in request history are only sent back (as
  ``reasoning_content``) when they came from this dialect: the real OpenAI
  API rejects unknown message fields. ``OpenAIChatDialect(send_reasoning=True)``
  sends them always (DeepSeek-style servers that want them back).
* Thinking signatures, redacted and encrypted thinking have no home and are
  dropped; cache-write tokens go to ``prompt_tokens_details.cache_write_tokens``
  (present in the SDK's ``PromptTokensDetails``).
* Provider tools of other dialects are dropped; ``openai-chat:<type>`` tools
  are rendered back unchanged.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson

from crossroads import ir, reasoning
from crossroads.dialects.wire import data_url, require_dict, require_list, require_str
from crossroads.dialects.wire import invalid as _invalid
from crossroads.dialects.wire import split_data_url as parse_data_url
from crossroads.ids import new_id
from crossroads.sse import frame

NAME = "openai-chat"
FORM = "openai-chat:form"

JSON = dict[str, Any]

# ---------------------------------------------------------------------------
# Small validators: bad client input must become a 400, never a KeyError.












def opt_str(body: JSON, key: str, param: str | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    return require_str(value, param or key)


def opt_int(body: JSON, key: str, param: str | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _invalid(param or key, "an integer", value)
    return value


def opt_number(body: JSON, key: str, param: str | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(param or key, "a number", value)
    return value


def opt_bool(body: JSON, key: str, param: str | None = None) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _invalid(param or key, "a boolean", value)
    return value


def parse_stop(value: Any, form: JSON) -> list[str]:
    """``stop`` is a string or a list of strings; remembers which in ``form``."""
    if value is None:
        return []
    if isinstance(value, str):
        form["stop_str"] = True
        return [value]
    items = require_list(value, "stop")
    for i, item in enumerate(items):
        require_str(item, f"stop[{i}]")
    return list(items)


def render_stop(stop: list[str], form: JSON) -> str | list[str]:
    if form.get("stop_str") and len(stop) == 1:
        return stop[0]
    return list(stop)


def parse_include_usage(body: JSON, form: JSON) -> bool | None:
    options = body.get("stream_options")
    if options is None:
        return None
    options = require_dict(options, "stream_options")
    include = opt_bool(options, "include_usage", "stream_options.include_usage")
    rest = {k: v for k, v in options.items() if k != "include_usage"}
    if rest:
        form["stream_options"] = rest
    elif include is None:
        form["stream_options"] = {}
    return include


def render_stream_options(request: ir.Request, form: JSON) -> JSON | None:
    rest = form.get("stream_options")
    if request.include_usage is None and rest is None:
        return None
    if not request.stream and rest is None:
        return None  # the API rejects stream_options without stream
    options = dict(rest or {})
    if request.include_usage is not None:
        options["include_usage"] = request.include_usage
    return options


# ---------------------------------------------------------------------------
# Data URLs






# ---------------------------------------------------------------------------
# Finish reasons and usage (shared with openai_completions)

_STOP_BY_FINISH: dict[str, ir.StopReason] = {
    "stop": "end_turn",
    "eos": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
    "refusal": "refusal",
    "error": "error",
    "insufficient_system_resource": "error",
}

_FINISH_BY_STOP: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "error": "stop",
}


def stop_reason_from_finish(finish: Any) -> ir.StopReason | None:
    if not isinstance(finish, str) or not finish:
        return None
    return _STOP_BY_FINISH.get(finish, "end_turn")


def finish_from_stop(stop: ir.StopReason | None) -> str:
    if stop is None:
        return "stop"
    return _FINISH_BY_STOP.get(stop, "stop")


_USAGE_KNOWN = frozenset({"prompt_tokens", "completion_tokens", "total_tokens",
                          "prompt_tokens_details", "completion_tokens_details"})


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def parse_usage(raw: Any, leftovers: JSON | None = None) -> ir.Usage | None:
    """OpenAI usage -> IR usage. Fields the IR does not model go into
    ``leftovers`` (when given) so a same-dialect render can restore them."""
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    cache_read = _count(prompt_details.get("cached_tokens"))
    if cache_read is None:  # DeepSeek reports cache hits at the top level
        cache_read = _count(raw.get("prompt_cache_hit_tokens"))
    usage = ir.Usage(
        input_tokens=_count(raw.get("prompt_tokens")),
        output_tokens=_count(raw.get("completion_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=_count(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=_count(completion_details.get("reasoning_tokens")),
    )
    if leftovers is not None:
        rest = {k: v for k, v in raw.items() if k not in _USAGE_KNOWN}
        prompt_rest = {k: v for k, v in prompt_details.items() if k not in ("cached_tokens", "cache_write_tokens")}
        completion_rest = {k: v for k, v in completion_details.items() if k != "reasoning_tokens"}
        if isinstance(raw.get("prompt_tokens_details"), dict):
            rest["prompt_tokens_details"] = prompt_rest
        if isinstance(raw.get("completion_tokens_details"), dict):
            rest["completion_tokens_details"] = completion_rest
        total = raw.get("total_tokens")
        if total != usage.total_tokens:
            rest["total_tokens"] = total
        leftovers.update(rest)
    return usage


def render_usage(usage: ir.Usage, leftovers: JSON | None = None) -> JSON:
    """IR usage -> OpenAI usage; the three counts are mandatory in the SDK type."""
    prompt = usage.input_tokens or 0
    completion = usage.output_tokens or 0
    out: JSON = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion}
    rest = leftovers or {}
    prompt_details: JSON = dict(rest.get("prompt_tokens_details") or {})
    if usage.cache_read_tokens is not None:
        prompt_details["cached_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    completion_details: JSON = dict(rest.get("completion_tokens_details") or {})
    if usage.reasoning_tokens is not None:
        completion_details["reasoning_tokens"] = usage.reasoning_tokens
    if prompt_details or "prompt_tokens_details" in rest:
        out["prompt_tokens_details"] = prompt_details
    if completion_details or "completion_tokens_details" in rest:
        out["completion_tokens_details"] = completion_details
    for key, value in rest.items():
        out.setdefault(key, value)  # e.g. details that were null on the wire
    return out


# ---------------------------------------------------------------------------
# Errors (shared with openai_completions)

_TYPE_BY_KIND: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "server_error",
    "server_error": "server_error",
    "timeout": "server_error",
}
_CODE_BY_KIND: dict[str, str] = {
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "overloaded",
    "timeout": "timeout",
}
_STATUS_BY_KIND: dict[str, int] = {
    "invalid_request": 400, "authentication": 401, "permission": 403, "not_found": 404,
    "request_too_large": 413, "rate_limit": 429, "overloaded": 503, "server_error": 500,
    "timeout": 504,
}


def error_object(error: ir.Error) -> JSON:
    return {"message": error.message, "type": _TYPE_BY_KIND.get(error.kind, "server_error"),
            "param": error.param, "code": error.code or _CODE_BY_KIND.get(error.kind)}


def render_error(error: ir.Error) -> tuple[int, JSON]:
    status = error.status
    if status == 529 or (error.kind == "overloaded" and status < 500):
        status = 503  # Anthropic's 529 means nothing to OpenAI clients
    elif status < 400:
        status = _STATUS_BY_KIND.get(error.kind, 500)
    return status, {"error": error_object(error)}


_RETRY_IN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def retry_after_from_message(message: str) -> float | None:
    """OpenAI puts the wait in the 429 message: "Please try again in 1.5s"."""
    match = _RETRY_IN.search(message)
    if match is None:
        return None
    return sum(float(n) * _UNIT_SECONDS[unit.lower()] for n, unit in _DURATION_PART.findall(match.group(1)))


def _kind_for(status: int, type_: str | None, code: str | None) -> ir.ErrorKind:
    markers = f"{type_ or ''} {code or ''}".lower()
    if "overloaded" in markers:
        return "overloaded"
    if status in ir.KIND_BY_STATUS or status >= 400:
        return ir.kind_for_status(status)
    # No usable HTTP status (an error inside a 200 stream): read the type.
    if "rate_limit" in markers or "quota" in markers:
        return "rate_limit"
    if "authentication" in markers or "invalid_api_key" in markers:
        return "authentication"
    if "permission" in markers:
        return "permission"
    if "not_found" in markers:
        return "not_found"
    if "invalid_request" in markers or "context_length" in markers:
        return "invalid_request"
    if "timeout" in markers:
        return "timeout"
    return "server_error"


def _opt_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def error_from_payload(payload: Any, status: int = 0, fallback: str = "") -> ir.Error:
    """An OpenAI-style error body (also the lenient shapes of compatible
    servers: a list around it, ``error`` as a string, top-level ``message``)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    message: str | None = None
    type_ = code = param = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            message = _opt_text(err.get("message"))
            type_ = _opt_text(err.get("type") or err.get("status"))
            code = _opt_text(err.get("code"))
            param = _opt_text(err.get("param"))
        elif isinstance(err, str):
            message = err
            type_ = _opt_text(payload.get("type"))
            code = _opt_text(payload.get("code"))
        else:
            message = _opt_text(payload.get("message") or payload.get("detail"))
            type_ = _opt_text(payload.get("type"))
            code = _opt_text(payload.get("code"))
    if not message:
        message = fallback or (f"upstream returned HTTP {status}" if status else "upstream stream error")
    kind = _kind_for(status, type_, code)
    if status < 400:
        status = _STATUS_BY_KIND[kind]
    return ir.Error(status, kind, message, retry_after=retry_after_from_message(message), param=param,
                    code=code)


def parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    fallback = body[:500].decode("utf-8", "replace").strip() if payload is None else ""
    return error_from_payload(payload, status, fallback)


# ---------------------------------------------------------------------------
# Request: wire -> IR

_REQUEST_FIELDS = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call",
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n", "seed",
    "presence_penalty", "frequency_penalty", "stop", "stream", "stream_options", "reasoning_effort",
    "response_format", "user", "metadata",
})
_THINKING_FIELDS = ("reasoning_content", "reasoning")
_TOOL_ROLES = ("tool", "function")


def _text_item(raw: JSON, param: str) -> ir.TextPart:
    text = require_str(raw.get("text"), f"{param}.text")
    rest = {k: v for k, v in raw.items() if k not in ("type", "text")}
    if not rest:
        return ir.TextPart(text=text)
    # OpenRouter-style cache_control also serves dialects that cache (kept verbatim for us).
    cache = rest.get("cache_control")
    return ir.TextPart(text=text, cache_control=cache if isinstance(cache, dict) else None, extra={NAME: rest})


def _image_item(raw: JSON, param: str) -> ir.ImagePart:
    image = require_dict(raw.get("image_url"), f"{param}.image_url")
    url = require_str(image.get("url"), f"{param}.image_url.url")
    detail = opt_str(image, "detail", f"{param}.image_url.detail")
    rest = {k: v for k, v in raw.items() if k not in ("type", "image_url")}
    extra = {NAME: rest} if rest else None
    inline = parse_data_url(url)
    if inline is not None:
        return ir.ImagePart(media_type=inline[0], data=inline[1], detail=detail, extra=extra)
    return ir.ImagePart(url=url, detail=detail, extra=extra)


def _file_item(raw: JSON, param: str) -> ir.DocumentPart | None:
    """A ``file`` part with inline data; None for ``file_id`` references,
    which only OpenAI can resolve (kept opaque)."""
    file = require_dict(raw.get("file"), f"{param}.file")
    file_data = opt_str(file, "file_data", f"{param}.file.file_data")
    if file_data is None:
        return None
    filename = opt_str(file, "filename", f"{param}.file.filename")
    rest = {k: v for k, v in raw.items() if k not in ("type", "file")}
    extra: JSON = {NAME: rest} if rest else {}
    inline = parse_data_url(file_data)
    if inline is not None:
        media_type, data = inline
    else:  # bare base64: guess the type for other dialects, remember the shape
        guessed = mimetypes.guess_type(filename or "")[0]
        media_type, data = guessed or "application/pdf", file_data
        extra[FORM] = {"bare": True}
    return ir.DocumentPart(media_type=media_type, data=data, filename=filename, extra=extra or None)


def _parse_parts(content: list[Any], param: str, *, images: bool) -> tuple[list[ir.Part], list[list[Any]]]:
    """Content parts -> IR parts plus opaque parts ([position, raw]) the IR cannot
    hold (audio, file ids, unknown types), kept for a same-dialect render."""
    parts: list[ir.Part] = []
    opaque: list[list[Any]] = []
    for i, item in enumerate(content):
        item_param = f"{param}[{i}]"
        item = require_dict(item, item_param)
        kind = item.get("type")
        if kind == "text":
            parts.append(_text_item(item, item_param))
        elif kind == "refusal":
            text = require_str(item.get("refusal"), f"{item_param}.refusal")
            parts.append(ir.TextPart(text=text, extra={FORM: {"refusal": True}}))
        elif not images:
            raise ir.bad_request(f"'{item_param}': only text parts are allowed here, got {kind!r}", item_param)
        elif kind == "image_url":
            parts.append(_image_item(item, item_param))
        elif kind == "file":
            document = _file_item(item, item_param)
            if document is None:
                opaque.append([i, item])
            else:
                parts.append(document)
        elif isinstance(kind, str):
            opaque.append([i, item])  # input_audio, video_url, ...: nothing to map to
        else:
            raise ir.bad_request(f"'{item_param}.type' must be a string", f"{item_param}.type")
    return parts, opaque


def _parse_text_content(content: Any, param: str) -> tuple[list[ir.TextPart], bool]:
    """System / developer / tool content: a string or text parts. Returns the
    parts and whether the wire used the list form."""
    if isinstance(content, str):
        return [ir.TextPart(text=content)], False
    items = require_list(content, param)
    parts, _ = _parse_parts(items, param, images=False)
    return [p for p in parts if isinstance(p, ir.TextPart)], True


class _RequestParser:
    __slots__ = ("form", "legacy_calls", "tool_names")

    def __init__(self, form: JSON) -> None:
        self.form = form
        self.tool_names: dict[str, str] = {}  # tool call id -> function name
        self.legacy_calls: list[ir.ToolCallPart] = []

    def messages(self, raw_messages: Any) -> tuple[list[ir.TextPart], list[ir.Message]]:
        items = require_list(raw_messages, "messages")
        if not items:
            raise ir.bad_request("'messages' must contain at least one message", "messages")
        system: list[ir.TextPart] = []
        groups: list[JSON] = []
        messages: list[ir.Message] = []
        leading = True
        for i, raw in enumerate(items):
            param = f"messages[{i}]"
            raw = require_dict(raw, param)
            role = raw.get("role")
            if role in ("system", "developer"):
                parts, as_list = _parse_text_content(raw.get("content"), f"{param}.content")
                name = opt_str(raw, "name", f"{param}.name")
                fields = _unknown(raw, ("role", "content", "name"))
                if leading:
                    system.extend(parts)
                    group: JSON = {"role": role, "n": len(parts)}
                    if name is not None:
                        group["name"] = name
                    if as_list:
                        group["list"] = True
                    if fields:
                        group["fields"] = fields
                    groups.append(group)
                    continue
                form: JSON = {"role": role} if role == "developer" else {}
                if as_list:
                    form["list"] = True
                messages.append(ir.Message("system", list(parts), name=name, extra=_extra(fields, form)))
                continue
            leading = False
            if role == "user":
                messages.append(self._user(raw, param))
            elif role == "assistant":
                messages.append(self._assistant(raw, param))
            elif role in _TOOL_ROLES:
                result = self._tool_result(raw, param, role)
                previous = messages[-1] if messages else None
                if previous is not None and previous.extra is not None and previous.extra.get(FORM, {}).get("tools"):
                    previous.parts.append(result)
                else:
                    messages.append(ir.Message("user", [result], extra={FORM: {"tools": True}}))
            else:
                raise ir.bad_request(
                    f"'{param}.role' must be one of system, developer, user, assistant, tool, function; "
                    f"got {role!r}", f"{param}.role")
        if groups:
            self.form["system"] = groups
        return system, messages

    def _user(self, raw: JSON, param: str) -> ir.Message:
        content = raw.get("content")
        form: JSON = {}
        if isinstance(content, str):
            parts: list[ir.Part] = [ir.TextPart(text=content)]
        else:
            items = require_list(content, f"{param}.content")
            parts, opaque = _parse_parts(items, f"{param}.content", images=True)
            form["list"] = True
            if opaque:
                form["opaque"] = opaque
        name = opt_str(raw, "name", f"{param}.name")
        return ir.Message("user", parts, name=name, extra=_extra(_unknown(raw, ("role", "content", "name")), form))

    def _assistant(self, raw: JSON, param: str) -> ir.Message:
        form: JSON = {}
        parts: list[ir.Part] = []
        known = ["role", "content", "name", "tool_calls", "function_call"]
        for field in _THINKING_FIELDS:
            value = raw.get(field)
            if value is not None:
                text = require_str(value, f"{param}.{field}")
                parts.append(ir.ThinkingPart(text=text, extra={FORM: {"field": field}}))
                known.append(field)
                break
        content = raw.get("content")
        if "content" not in raw:
            form["content"] = "absent"
        elif content is None:
            form["content"] = "null"
        elif content == "":
            form["content"] = "empty"
        elif isinstance(content, str):
            parts.append(ir.TextPart(text=content))
        else:
            items, _ = _parse_parts(require_list(content, f"{param}.content"), f"{param}.content", images=False)
            parts.extend(items)
            form["content"] = "list"
        tool_calls = raw.get("tool_calls")
        if tool_calls is not None:
            calls = require_list(tool_calls, f"{param}.tool_calls")
            if not calls:
                form["tool_calls"] = "empty"
            for j, call in enumerate(calls):
                parts.append(self._tool_call(call, f"{param}.tool_calls[{j}]"))
        function_call = raw.get("function_call")
        if function_call is not None:
            parts.append(self._legacy_call(function_call, f"{param}.function_call"))
        name = opt_str(raw, "name", f"{param}.name")
        return ir.Message("assistant", parts, name=name, extra=_extra(_unknown(raw, known), form))

    def _tool_call(self, raw: Any, param: str) -> ir.ToolCallPart:
        raw = require_dict(raw, param)
        call_id = require_str(raw.get("id"), f"{param}.id")
        kind = raw.get("type", "function")
        rest = _unknown(raw, ("id", "type", "function", "custom"))
        form: JSON = {}
        if "type" not in raw:
            form["no_type"] = True
        if kind == "custom":
            custom = require_dict(raw.get("custom"), f"{param}.custom")
            name = require_str(custom.get("name"), f"{param}.custom.name")
            arguments = require_str(custom.get("input"), f"{param}.custom.input")
            form["custom"] = True
        elif kind == "function":
            function = require_dict(raw.get("function"), f"{param}.function")
            name = require_str(function.get("name"), f"{param}.function.name")
            arguments = _arguments(function.get("arguments"), f"{param}.function.arguments")
        else:
            raise ir.bad_request(f"'{param}.type' must be 'function' or 'custom', got {kind!r}", f"{param}.type")
        self.tool_names[call_id] = name
        return ir.ToolCallPart(id=call_id, name=name, arguments=arguments, extra=_extra(rest, form))

    def _legacy_call(self, raw: Any, param: str) -> ir.ToolCallPart:
        raw = require_dict(raw, param)
        name = require_str(raw.get("name"), f"{param}.name")
        arguments = _arguments(raw.get("arguments"), f"{param}.arguments")
        part = ir.ToolCallPart(id=f"call_legacy_{len(self.legacy_calls)}", name=name, arguments=arguments,
                               extra={FORM: {"legacy": True}})
        self.legacy_calls.append(part)
        self.tool_names[part.id] = name
        return part

    def _tool_result(self, raw: JSON, param: str, role: str) -> ir.ToolResultPart:
        form: JSON = {}
        if role == "function":
            name = require_str(raw.get("name"), f"{param}.name")
            call_id = next((c.id for c in reversed(self.legacy_calls) if c.name == name),
                           f"call_legacy_{name}")
            form["legacy"] = True
            content = raw.get("content")
            parts = [] if content is None else [ir.TextPart(text=require_str(content, f"{param}.content"))]
            if content is None:
                form["null"] = True
            fields = _unknown(raw, ("role", "name", "content"))
            return ir.ToolResultPart(call_id, list(parts), name=name, extra=_extra(fields, form))
        call_id = require_str(raw.get("tool_call_id"), f"{param}.tool_call_id")
        text_parts, as_list = _parse_text_content(raw.get("content"), f"{param}.content")
        if as_list:
            form["list"] = True
        wire_name = raw.get("name")
        function_name = wire_name if isinstance(wire_name, str) else self.tool_names.get(call_id)
        fields = _unknown(raw, ("role", "tool_call_id", "content"))
        return ir.ToolResultPart(call_id, list(text_parts), name=function_name, extra=_extra(fields, form))


def _obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _unknown(raw: JSON, known: Sequence[str]) -> JSON:
    return {k: v for k, v in raw.items() if k not in known}


def _extra(fields: JSON, form: JSON) -> JSON | None:
    if not fields and not form:
        return None
    extra: JSON = {}
    if fields:
        extra[NAME] = fields
    if form:
        extra[FORM] = form
    return extra


def _arguments(value: Any, param: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # some clients send the object itself
        return orjson.dumps(value).decode()
    raise _invalid(param, "a JSON string", value)


def _parse_tools(raw: Any) -> list[ir.Tool]:
    tools: list[ir.Tool] = []
    for i, item in enumerate(require_list(raw, "tools")):
        param = f"tools[{i}]"
        item = require_dict(item, param)
        kind = item.get("type")
        if kind == "function":
            tools.append(_function_tool(require_dict(item.get("function"), f"{param}.function"),
                                        f"{param}.function", _unknown(item, ("type", "function"))))
        elif isinstance(kind, str) and kind:
            body = item.get(kind)
            name = body.get("name") if isinstance(body, dict) else None
            tools.append(ir.Tool(name=name if isinstance(name, str) else kind, kind=f"{NAME}:{kind}", raw=item))
        else:
            raise ir.bad_request(f"'{param}.type' must be a non-empty string", f"{param}.type")
    return tools


def _function_tool(function: JSON, param: str, outer: JSON | None = None) -> ir.Tool:
    name = require_str(function.get("name"), f"{param}.name")
    description = opt_str(function, "description", f"{param}.description")
    parameters = function.get("parameters")
    if parameters is not None:
        parameters = require_dict(parameters, f"{param}.parameters")
    strict = opt_bool(function, "strict", f"{param}.strict")
    fields = _unknown(function, ("name", "description", "parameters", "strict"))
    extra: JSON = {}
    if fields:
        extra[NAME] = fields
    if outer:
        extra[FORM] = {"outer": outer}
    return ir.Tool(name=name, description=description, parameters=parameters, strict=strict,
                   extra=extra or None)


def _parse_tool_choice(raw: Any, form: JSON) -> ir.ToolChoice:
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise ir.bad_request(f"'tool_choice' must be auto, none or required, got {raw!r}", "tool_choice")
        return ir.ToolChoice(mode=raw)  # type: ignore[arg-type]
    raw = require_dict(raw, "tool_choice")
    kind = raw.get("type")
    if kind == "function":
        function = require_dict(raw.get("function"), "tool_choice.function")
        return ir.ToolChoice(mode="tool", name=require_str(function.get("name"), "tool_choice.function.name"))
    form["tool_choice"] = raw  # allowed_tools / custom: approximate for others, exact for us
    if kind == "custom":
        custom = require_dict(raw.get("custom"), "tool_choice.custom")
        return ir.ToolChoice(mode="tool", name=require_str(custom.get("name"), "tool_choice.custom.name"))
    if kind == "allowed_tools":
        allowed = require_dict(raw.get("allowed_tools"), "tool_choice.allowed_tools")
        return ir.ToolChoice(mode="required" if allowed.get("mode") == "required" else "auto")
    raise ir.bad_request(f"unknown 'tool_choice.type' {kind!r}", "tool_choice.type")


def _parse_function_call(raw: Any) -> ir.ToolChoice:
    if raw in ("auto", "none"):
        return ir.ToolChoice(mode=raw)
    raw = require_dict(raw, "function_call")
    return ir.ToolChoice(mode="tool", name=require_str(raw.get("name"), "function_call.name"))


def _parse_response_format(raw: Any, form: JSON) -> ir.ResponseFormat:
    raw = require_dict(raw, "response_format")
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ir.ResponseFormat(type=kind)
    if kind != "json_schema":
        raise ir.bad_request(f"'response_format.type' must be text, json_object or json_schema, got {kind!r}",
                             "response_format.type")
    spec = require_dict(raw.get("json_schema"), "response_format.json_schema")
    schema = spec.get("schema")
    if schema is not None:
        schema = require_dict(schema, "response_format.json_schema.schema")
    rest = _unknown(spec, ("name", "schema", "strict"))
    if rest:
        form["json_schema"] = rest
    return ir.ResponseFormat(type="json_schema", schema=schema,
                             name=require_str(spec.get("name"), "response_format.json_schema.name"),
                             strict=opt_bool(spec, "strict", "response_format.json_schema.strict"))


def _parse_reasoning(raw: Any, form: JSON) -> ir.Reasoning | None:
    if raw is None:
        return None
    effort = require_str(raw, "reasoning_effort")
    level = effort.lower()
    if level not in reasoning.LEVEL_BUDGETS:
        raise ir.bad_request(
            f"'reasoning_effort' must be one of {', '.join(reasoning.LEVEL_BUDGETS)}; got {effort!r}",
            "reasoning_effort")
    form["reasoning_effort"] = effort
    return ir.Reasoning(effort=level)


def _parse_metadata(raw: Any) -> JSON | None:
    if raw is None:
        return None
    return require_dict(raw, "metadata")


def parse_request(body: JSON, *, model: str | None = None, stream: bool | None = None) -> ir.Request:
    body = require_dict(body, "body")
    form: JSON = {}
    model_name = body.get("model")
    if model_name is None:
        model_name = model
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("'model' is required and must be a non-empty string", "model")
    parser = _RequestParser(form)
    system, messages = parser.messages(body.get("messages"))
    request = ir.Request(model=model_name, messages=messages, system=system)

    tools = body.get("tools")
    if tools is not None:
        request.tools = _parse_tools(tools)
    functions = body.get("functions")
    if functions is not None:
        items = require_list(functions, "functions")
        request.tools.extend(_function_tool(require_dict(f, f"functions[{i}]"), f"functions[{i}]")
                             for i, f in enumerate(items))
        form["functions"] = len(items)
    if body.get("tool_choice") is not None:
        request.tool_choice = _parse_tool_choice(body["tool_choice"], form)
    elif body.get("function_call") is not None:
        request.tool_choice = _parse_function_call(body["function_call"])
        form["function_call"] = True
    request.parallel_tool_calls = opt_bool(body, "parallel_tool_calls")

    max_completion = opt_int(body, "max_completion_tokens")
    max_tokens = opt_int(body, "max_tokens")
    if max_completion is not None:
        request.max_tokens = max_completion
        form["max_tokens_field"] = "max_completion_tokens"
        if max_tokens is not None:
            form["max_tokens_also"] = max_tokens
    else:
        request.max_tokens = max_tokens

    request.temperature = opt_number(body, "temperature")
    request.top_p = opt_number(body, "top_p")
    request.top_k = opt_int(body, "top_k")
    request.n = opt_int(body, "n")
    request.seed = opt_int(body, "seed")
    request.presence_penalty = opt_number(body, "presence_penalty")
    request.frequency_penalty = opt_number(body, "frequency_penalty")
    request.stop = parse_stop(body.get("stop"), form)
    wire_stream = opt_bool(body, "stream")
    if wire_stream is False:
        form["stream_false"] = True
    request.stream = bool(wire_stream) if stream is None else stream
    request.include_usage = parse_include_usage(body, form)
    request.reasoning = _parse_reasoning(body.get("reasoning_effort"), form)
    if body.get("response_format") is not None:
        request.response_format = _parse_response_format(body["response_format"], form)
    request.user = opt_str(body, "user")
    request.metadata = _parse_metadata(body.get("metadata"))

    unknown = {k: v for k, v in body.items() if k not in _REQUEST_FIELDS}
    if unknown:
        request.extra[NAME] = unknown
    request.extra[FORM] = form
    return request


# ---------------------------------------------------------------------------
# Request: IR -> wire

_MAX_TOOL_ID = 40  # OpenAI rejects longer tool call ids


def wire_tool_id(tool_id: str) -> str:
    """Deterministic, so a call and its result still match after shortening."""
    if len(tool_id) <= _MAX_TOOL_ID:
        return tool_id
    return "call_" + hashlib.sha256(tool_id.encode()).hexdigest()[:32]


def _own(extra: JSON | None, key: str) -> JSON:
    if not extra:
        return {}
    value = extra.get(key)
    return value if isinstance(value, dict) else {}


def _text_part_json(part: ir.TextPart) -> JSON:
    if _own(part.extra, FORM).get("refusal"):
        return {"type": "refusal", "refusal": part.text}
    item: JSON = {"type": "text", "text": part.text}
    item.update(_own(part.extra, NAME))
    return item


def _needs_list(parts: Sequence[ir.Part]) -> bool:
    for part in parts:
        if not isinstance(part, ir.TextPart):
            return True
        if part.extra and (NAME in part.extra or FORM in part.extra):
            return True
    return False


def text_content(parts: Sequence[ir.TextPart], as_list: bool) -> str | list[JSON]:
    if as_list or _needs_list(parts):
        return [_text_part_json(p) for p in parts]
    if len(parts) == 1:
        return parts[0].text
    return "\n\n".join(p.text for p in parts)


def _image_json(part: ir.ImagePart) -> JSON | None:
    if part.data is not None:
        url = data_url(part.media_type, part.data)
    elif part.url is not None:
        url = part.url
    else:
        return None
    image: JSON = {"url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    item: JSON = {"type": "image_url", "image_url": image}
    item.update(_own(part.extra, NAME))
    return item


def _document_json(part: ir.DocumentPart) -> JSON:
    if part.data is None:  # chat has no file-by-URL part
        return {"type": "text", "text": f"[document: {part.url or part.filename or 'unavailable'}]"}
    bare = _own(part.extra, FORM).get("bare")
    file: JSON = {"file_data": part.data if bare else data_url(part.media_type, part.data)}
    if part.filename is not None:
        file["filename"] = part.filename
    item: JSON = {"type": "file", "file": file}
    item.update(_own(part.extra, NAME))
    return item


def _content_item(part: ir.Part) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return _text_part_json(part)
    if isinstance(part, ir.ImagePart):
        return _image_json(part)
    if isinstance(part, ir.DocumentPart):
        return _document_json(part)
    return None


def _user_content(parts: Sequence[ir.Part], form: JSON) -> str | list[JSON]:
    opaque = form.get("opaque")
    if not form.get("list") and not opaque and not _needs_list(parts):
        texts = [p for p in parts if isinstance(p, ir.TextPart)]
        return text_content(texts, False)
    items = [item for item in map(_content_item, parts) if item is not None]
    for position, raw in opaque or ():
        items.insert(min(position, len(items)), raw)
    return items


def _message_json(role: str, content: Any, name: str | None, extra: JSON | None) -> JSON:
    message: JSON = {"role": role, "content": content}
    if name is not None:
        message["name"] = name
    message.update(_own(extra, NAME))
    return message


class _RequestRenderer:
    __slots__ = ("legacy_ids", "send_reasoning")

    def __init__(self, send_reasoning: bool) -> None:
        self.send_reasoning = send_reasoning
        self.legacy_ids: set[str] = set()

    def system(self, parts: list[ir.TextPart], groups: list[JSON] | None) -> list[JSON]:
        if groups and sum(int(g.get("n", 0)) for g in groups) == len(parts):
            out, start = [], 0
            for group in groups:
                count = int(group.get("n", 0))
                chunk = parts[start:start + count]
                start += count
                message = _message_json(group["role"], text_content(chunk, bool(group.get("list"))),
                                        group.get("name"), None)
                message.update(group.get("fields") or {})
                out.append(message)
            return out
        if not parts:
            return []
        return [{"role": "system", "content": text_content(parts, False)}]

    def message(self, message: ir.Message) -> list[JSON]:
        form = _own(message.extra, FORM)
        if message.role == "system":
            texts = [p for p in message.parts if isinstance(p, ir.TextPart)]
            return [_message_json(form.get("role", "system"), text_content(texts, bool(form.get("list"))),
                                  message.name, message.extra)]
        if message.role == "assistant":
            return [self.assistant(message, form)]
        return self.user(message, form)

    def user(self, message: ir.Message, form: JSON) -> list[JSON]:
        out: list[JSON] = []
        rest: list[ir.Part] = []
        moved: list[ir.Part] = []
        for part in message.parts:
            if isinstance(part, ir.ToolResultPart):
                out.append(self.tool_result(part, moved))
            elif isinstance(part, ir.TextPart | ir.ImagePart | ir.DocumentPart):
                rest.append(part)
        if out and not rest and not moved:
            return out
        if moved:
            rest = moved + rest
            form = {**form, "list": True}
        if rest or not out or form.get("opaque"):
            out.append(_message_json("user", _user_content(rest, form), message.name, message.extra))
        return out

    def tool_result(self, part: ir.ToolResultPart, moved: list[ir.Part]) -> JSON:
        form = _own(part.extra, FORM)
        texts: list[ir.TextPart] = []
        for item in part.content:
            if isinstance(item, ir.TextPart):
                texts.append(item)
            else:
                moved.append(item)  # tool messages carry text only
        if form.get("legacy") or part.tool_call_id in self.legacy_ids:
            content: Any = None if form.get("null") else "\n\n".join(t.text for t in texts)
            message: JSON = {"role": "function", "name": part.name or "", "content": content}
        else:
            message = {"role": "tool", "tool_call_id": wire_tool_id(part.tool_call_id),
                       "content": text_content(texts, bool(form.get("list")))}
        message.update(_own(part.extra, NAME))
        return message

    def assistant(self, message: ir.Message, form: JSON) -> JSON:
        texts: list[ir.TextPart] = []
        thinking: list[ir.ThinkingPart] = []
        calls: list[JSON] = []
        legacy: JSON | None = None
        for part in message.parts:
            if isinstance(part, ir.TextPart):
                texts.append(part)
            elif isinstance(part, ir.ToolCallPart):
                if _own(part.extra, FORM).get("legacy"):
                    self.legacy_ids.add(part.id)
                    legacy = {"name": part.name, "arguments": part.arguments}
                else:
                    calls.append(tool_call_json(part, wire_tool_id(part.id)))
            elif isinstance(part, ir.ThinkingPart) and (self.send_reasoning or FORM in (part.extra or {})):
                thinking.append(part)
        out: JSON = {"role": "assistant"}
        content_form = form.get("content")
        if texts:
            out["content"] = text_content(texts, content_form == "list")
        elif content_form == "empty":
            out["content"] = ""
        elif content_form == "list":
            out["content"] = []
        elif content_form != "absent":
            out["content"] = None if (calls or legacy or content_form == "null") else ""
        if thinking:
            field = _own(thinking[0].extra, FORM).get("field", "reasoning_content")
            out[field] = "\n\n".join(t.text for t in thinking)
        if calls or form.get("tool_calls") == "empty":
            out["tool_calls"] = calls
        if legacy is not None:
            out["function_call"] = legacy
        if message.name is not None:
            out["name"] = message.name
        out.update(_own(message.extra, NAME))
        return out


def tool_call_json(part: ir.ToolCallPart, call_id: str) -> JSON:
    form = _own(part.extra, FORM)
    call: JSON = {"id": call_id}
    if form.get("custom"):
        call["type"] = "custom"
        call["custom"] = {"name": part.name, "input": part.arguments}
    else:
        if not form.get("no_type"):
            call["type"] = "function"
        call["function"] = {"name": part.name, "arguments": part.arguments}
    call.update(_own(part.extra, NAME))
    return call


def _tool_json(tool: ir.Tool) -> JSON | None:
    if tool.kind == "function":
        function: JSON = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.parameters is not None:
            function["parameters"] = tool.parameters
        if tool.strict is not None:
            function["strict"] = tool.strict
        function.update(_own(tool.extra, NAME))
        item: JSON = {"type": "function", "function": function}
        item.update(_own(tool.extra, FORM).get("outer") or {})
        return item
    if tool.kind.startswith(NAME + ":") and tool.raw is not None:
        return tool.raw
    return None  # another dialect's provider tool


def _tool_choice_json(choice: ir.ToolChoice, form: JSON) -> Any:
    raw = form.get("tool_choice")
    if raw is not None:
        return raw
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.mode


def _reasoning_effort(request_reasoning: ir.Reasoning, form: JSON) -> str | None:
    raw = form.get("reasoning_effort")
    if isinstance(raw, str) and raw.lower() == request_reasoning.effort:
        return raw
    level = reasoning.effective_level(request_reasoning)
    if level is None:
        return None
    return reasoning.OPENAI_EFFORTS.get(level, "medium")


def _response_format_json(fmt: ir.ResponseFormat, form: JSON) -> JSON:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    spec: JSON = {"name": fmt.name or "response"}
    if fmt.schema is not None:
        spec["schema"] = fmt.schema
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    spec.update(form.get("json_schema") or {})
    return {"type": "json_schema", "json_schema": spec}


def render_request(request: ir.Request, *, send_reasoning: bool = False,
                   max_tokens_field: str = "max_tokens") -> JSON:
    form = request.extra.get(FORM)
    own = isinstance(form, dict)
    form = form if isinstance(form, dict) else {}
    renderer = _RequestRenderer(send_reasoning)
    messages = renderer.system(request.system, form.get("system"))
    for message in request.messages:
        messages.extend(renderer.message(message))
    body: JSON = {"model": request.model, "messages": messages}

    legacy_functions = form.get("functions")
    tools = [t for t in map(_tool_json, request.tools) if t is not None]
    if legacy_functions is not None:
        body["functions"] = [t["function"] for t in tools[len(tools) - legacy_functions:]]
        tools = tools[:len(tools) - legacy_functions]
    if tools:
        body["tools"] = tools
    may_steer_tools = bool(tools) or bool(legacy_functions) or own  # the API refuses these without tools
    if request.tool_choice is not None and may_steer_tools:
        if form.get("function_call"):
            choice = request.tool_choice
            body["function_call"] = {"name": choice.name} if choice.mode == "tool" else choice.mode
        else:
            body["tool_choice"] = _tool_choice_json(request.tool_choice, form)
    if request.parallel_tool_calls is not None and may_steer_tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls

    if request.max_tokens is not None:
        body[form.get("max_tokens_field", max_tokens_field)] = request.max_tokens
    if "max_tokens_also" in form:
        body["max_tokens"] = form["max_tokens_also"]
    for key in ("temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty", "user"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.metadata is not None:
        # OpenAI metadata values are strings; other dialects' metadata may not be.
        body["metadata"] = request.metadata if own else {
            k: v for k, v in request.metadata.items() if isinstance(v, str)}
    if request.top_k is not None and own:  # not an OpenAI parameter; only echo it to its own kind
        body["top_k"] = request.top_k
    if request.stop:
        body["stop"] = render_stop(request.stop, form)
    if request.stream:
        body["stream"] = True
    elif form.get("stream_false"):
        body["stream"] = False
    stream_options = render_stream_options(request, form)
    if stream_options is not None:
        body["stream_options"] = stream_options
    if request.reasoning is not None:
        effort = _reasoning_effort(request.reasoning, form)
        if effort is not None:
            body["reasoning_effort"] = effort
    if request.response_format is not None:
        body["response_format"] = _response_format_json(request.response_format, form)
    for key, value in (request.extra.get(NAME) or {}).items():
        body.setdefault(key, value)
    return body


# ---------------------------------------------------------------------------
# Response: wire -> IR

_RESPONSE_FIELDS = frozenset({"id", "object", "created", "model", "choices", "usage"})
_CHOICE_FIELDS = frozenset({"index", "message", "finish_reason"})
_MESSAGE_FIELDS = frozenset({"role", "content", "refusal", "tool_calls", "function_call",
                             *_THINKING_FIELDS})


def _bad_upstream(message: str) -> ir.Error:
    return ir.Error(502, "server_error", f"upstream sent an invalid chat completion: {message}")


def _message_parts(message: JSON, form: JSON) -> list[ir.Part]:
    parts: list[ir.Part] = []
    for field in _THINKING_FIELDS:
        value = message.get(field)
        if isinstance(value, str):
            parts.append(ir.ThinkingPart(text=value, extra={FORM: {"field": field}}))
            break
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(ir.TextPart(text=content))
    elif content == "":
        form["content"] = "empty"
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        parts.append(ir.TextPart(text=refusal, extra={FORM: {"refusal": True}}))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        if not calls:
            form["tool_calls"] = "empty"
        for call in calls:
            if isinstance(call, dict):
                parts.append(_response_tool_call(call))
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        parts.append(ir.ToolCallPart(id=new_id("call_"), name=str(function_call.get("name") or ""),
                                     arguments=str(function_call.get("arguments") or ""),
                                     extra={FORM: {"legacy": True}}))
    return parts


def _response_tool_call(call: JSON) -> ir.ToolCallPart:
    form: JSON = {}
    if call.get("type") == "custom":
        body = _obj(call.get("custom"))
        name, arguments = body.get("name"), body.get("input")
        form["custom"] = True
    else:
        body = _obj(call.get("function"))
        name, arguments = body.get("name"), body.get("arguments")
        if "type" not in call:
            form["no_type"] = True
    call_id = call.get("id")
    rest = _unknown(call, ("id", "type", "function", "custom"))
    return ir.ToolCallPart(id=call_id if isinstance(call_id, str) and call_id else new_id("call_"),
                           name=name if isinstance(name, str) else "",
                           arguments=arguments if isinstance(arguments, str) else "",
                           extra=_extra(rest, form))


def parse_response(body: JSON) -> ir.Response:
    if not isinstance(body, dict):
        raise _bad_upstream("the body is not an object")
    if isinstance(body.get("error"), dict) and "choices" not in body:
        raise error_from_payload(body, 502)
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise _bad_upstream("'choices' is missing")
    form: JSON = {}
    response = ir.Response(id=str(body.get("id") or new_id("chatcmpl-")), model=str(body.get("model") or ""))
    created = body.get("created")
    if isinstance(created, int):
        response.created = created
    first = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None)
    if first is not None:
        message = _obj(first.get("message"))
        response.parts = _message_parts(message, form)
        finish = first.get("finish_reason")
        response.stop_reason = stop_reason_from_finish(finish)
        if response.stop_reason == "end_turn" and any(
                isinstance(p, ir.TextPart) and p.text and _is_refusal(p) for p in response.parts):
            response.stop_reason = "refusal"
        choice_rest = {k: v for k, v in first.items() if k not in _CHOICE_FIELDS}
        message_rest = {k: v for k, v in message.items() if k not in _MESSAGE_FIELDS}
        if choice_rest:
            form["choice"] = choice_rest
        if message_rest:
            form["message"] = message_rest
        others = [c for c in choices if c is not first]
        if others:
            form["choices"] = others
    usage_rest: JSON = {}
    response.usage = parse_usage(body.get("usage"), usage_rest)
    if usage_rest:
        form["usage"] = usage_rest
    fields = {k: v for k, v in body.items() if k not in _RESPONSE_FIELDS}
    if fields:
        response.extra[NAME] = fields
    if form:
        response.extra[FORM] = form
    return response


def _is_refusal(part: ir.Part) -> bool:
    return isinstance(part, ir.TextPart) and bool(_own(part.extra, FORM).get("refusal"))


# ---------------------------------------------------------------------------
# Response: IR -> wire


def render_response(response: ir.Response) -> JSON:
    form = _own(response.extra, FORM)
    texts: list[str] = []
    refusals: list[str] = []
    thinking: list[str] = []
    thinking_field = "reasoning_content"
    calls: list[JSON] = []
    legacy: JSON | None = None
    for part in response.parts:
        if isinstance(part, ir.TextPart):
            (refusals if _is_refusal(part) else texts).append(part.text)
        elif isinstance(part, ir.ThinkingPart):
            marker = _own(part.extra, FORM).get("field")
            if part.text or marker:
                thinking.append(part.text)
                thinking_field = marker or thinking_field
        elif isinstance(part, ir.ToolCallPart):
            if _own(part.extra, FORM).get("legacy"):
                legacy = {"name": part.name, "arguments": part.arguments}
            else:
                calls.append(tool_call_json(part, part.id or new_id("call_")))
    content: str | None = "".join(texts) if texts else None
    if content is None and form.get("content") == "empty":
        content = ""
    message: JSON = {"role": "assistant", "content": content,
                     "refusal": "".join(refusals) if refusals else None}
    if thinking:
        message[thinking_field] = "".join(thinking)
    if calls or form.get("tool_calls") == "empty":
        message["tool_calls"] = calls
    if legacy is not None:
        message["function_call"] = legacy
    message.update(form.get("message") or {})
    if response.stop_reason == "refusal" and refusals:
        finish = "stop"
    elif legacy is not None and response.stop_reason == "tool_use":
        finish = "function_call"
    else:
        finish = finish_from_stop(response.stop_reason)
    choice: JSON = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    choice.update(form.get("choice") or {})
    body: JSON = {
        "id": response.id or new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": response.created if response.created is not None else int(time.time()),
        "model": response.model,
        "choices": [choice, *(form.get("choices") or ())],
    }
    if response.usage is not None:
        body["usage"] = render_usage(response.usage, form.get("usage"))
    body.update(_own(response.extra, NAME))
    return body


# ---------------------------------------------------------------------------
# Stream: wire -> IR

_STREAM_CUT = "upstream stream ended before completion"


class _ToolState:
    __slots__ = ("arguments", "extra", "id", "index", "name")

    def __init__(self, call_id: str | None, name: str | None, extra: JSON | None) -> None:
        self.id = call_id
        self.name = name
        self.extra = extra
        self.index: int | None = None  # IR part index once started
        self.arguments: list[str] = []  # fragments seen before the name was known


class ChatStreamDecoder:
    """``chat.completion.chunk`` frames -> IR events (choice 0 only)."""

    id_prefix = "chatcmpl-"
    __slots__ = ("_finish", "_finish_seen", "_next", "_open", "_open_kind", "_refused", "_started",
                 "_tool_order", "_tools", "_usage", "done")

    def __init__(self) -> None:
        self._started = False
        self._refused = False
        self._next = 0
        self._open: int | None = None
        self._open_kind = ""
        self._tools: dict[int, _ToolState] = {}
        self._tool_order: list[int] = []
        self._finish: ir.StopReason | None = None
        self._finish_seen = False
        self._usage: ir.Usage | None = None
        self.done = False

    def feed(self, event: str | None, data: str) -> list[ir.Event]:
        if self.done:
            return []
        if data.startswith("[DONE]"):
            return self._complete()
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []  # keep-alive noise some servers send
        if not isinstance(payload, dict):
            return []
        error = payload.get("error")
        if error or event == "error":
            self.done = True
            return [ir.ErrorEvent(error_from_payload(payload))]
        events: list[ir.Event] = []
        if not self._started:
            self._started = True
            events.append(ir.Start(id=str(payload.get("id") or new_id(self.id_prefix)),
                                   model=str(payload.get("model") or "")))
        choices = payload.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, events)
        usage = parse_usage(payload.get("usage"))
        if usage is not None:
            self._usage = usage if self._usage is None else self._usage.merged(usage)
            if self._finish_seen:
                self.done = True
                events.append(ir.Finish(self._finish, self._usage))
            else:
                events.append(ir.UsageEvent(usage))
        return events

    def close(self) -> list[ir.Event]:
        if self.done:
            return []
        if self._finish_seen:
            return self._complete()
        self.done = True
        return [ir.ErrorEvent(ir.Error(502, "server_error", _STREAM_CUT))]

    # ------------------------------------------------------------------ internals

    def _complete(self) -> list[ir.Event]:
        events: list[ir.Event] = []
        if not self._started:
            events.append(ir.Start(id=new_id(self.id_prefix), model=""))
            self._started = True
        self._flush_tools(events)
        self._stop_open(events)
        stop = self._finish
        if not self._finish_seen:
            stop = "tool_use" if self._tools else "end_turn"
        self.done = True
        events.append(ir.Finish(stop, self._usage))
        return events

    def _choice(self, choice: JSON, events: list[ir.Event]) -> None:
        """One choice-0 entry of a chunk (overridden for legacy completions)."""
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, events)
        self._finish_choice(choice.get("finish_reason"), events)

    def _finish_choice(self, finish: Any, events: list[ir.Event]) -> None:
        if isinstance(finish, str) and finish:
            self._flush_tools(events)
            self._stop_open(events)
            self._finish = stop_reason_from_finish(finish)
            if self._finish == "end_turn" and self._refused:
                self._finish = "refusal"  # as parse_response reads a refusal message
            self._finish_seen = True

    def _delta(self, delta: JSON, events: list[ir.Event]) -> None:
        for field in _THINKING_FIELDS:
            value = delta.get(field)
            if isinstance(value, str):
                if value:
                    self._text(events, "thinking", value, field)
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text(events, "text", content, None)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._text(events, "refusal", refusal, None)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    self._tool_fragment(call, events)
        function_call = delta.get("function_call")
        if isinstance(function_call, dict):
            self._tool_fragment({"index": 0, "function": function_call, "legacy": True}, events)

    def _text(self, events: list[ir.Event], kind: str, text: str, field: str | None) -> None:
        if self._open is None or self._open_kind != kind:
            self._stop_open(events)
            part: ir.TextPart | ir.ThinkingPart
            if kind == "thinking":
                part = ir.ThinkingPart(extra={FORM: {"field": field}} if field != "reasoning_content" else None)
            elif kind == "refusal":
                part = ir.TextPart(text="", extra={FORM: {"refusal": True}})
                self._refused = True
            else:
                part = ir.TextPart(text="")
            self._open, self._open_kind = self._next, kind
            self._next += 1
            events.append(ir.PartStart(self._open, part))
        events.append(ir.PartDelta(self._open, text=text))

    def _tool_fragment(self, call: JSON, events: list[ir.Event]) -> None:
        function = _obj(call.get("function"))
        call_id = _nonempty_str(call.get("id"))
        name = _nonempty_str(function.get("name"))
        arguments = function.get("arguments")
        wire_index = call.get("index")
        if not isinstance(wire_index, int) or isinstance(wire_index, bool):
            # Servers that omit the index send whole calls: a new id is a new call.
            last = self._tools.get(self._tool_order[-1]) if self._tool_order else None
            if last is not None and (call_id is None or call_id == last.id):
                wire_index = self._tool_order[-1]
            else:
                wire_index = len(self._tool_order)
        state = self._tools.get(wire_index)
        if state is None:
            rest = _unknown(call, ("index", "id", "type", "function", "legacy"))
            form: JSON = {"legacy": True} if call.get("legacy") else {}
            state = _ToolState(call_id, name, _extra(rest, form))
            self._tools[wire_index] = state
            self._tool_order.append(wire_index)
        else:
            state.id = state.id or call_id
            state.name = state.name or name
        if state.index is None:
            if isinstance(arguments, str) and arguments:
                state.arguments.append(arguments)
            if state.name is not None:
                self._start_tool(state, events)
        elif isinstance(arguments, str) and arguments:
            events.append(ir.PartDelta(state.index, text=arguments))

    def _start_tool(self, state: _ToolState, events: list[ir.Event]) -> None:
        self._stop_open(events)
        state.index = self._next
        self._next += 1
        events.append(ir.PartStart(state.index, ir.ToolCallPart(
            id=state.id or new_id("call_"), name=state.name or "", extra=state.extra)))
        if state.arguments:
            events.append(ir.PartDelta(state.index, text="".join(state.arguments)))
            state.arguments.clear()
        self._open, self._open_kind = state.index, "tool"

    def _flush_tools(self, events: list[ir.Event]) -> None:
        for wire_index in self._tool_order:
            state = self._tools[wire_index]
            if state.index is None:
                self._start_tool(state, events)

    def _stop_open(self, events: list[ir.Event]) -> None:
        if self._open is not None:
            events.append(ir.PartStop(self._open))
            self._open = None
            self._open_kind = ""


# ---------------------------------------------------------------------------
# Stream: IR -> wire

_DONE = b"data: [DONE]\n\n"


class ChatStreamEncoder:
    """IR events -> ``chat.completion.chunk`` SSE frames, one frame per event."""

    __slots__ = ("_closed", "_created", "_errored", "_id", "_include_usage", "_kinds", "_model",
                 "_prefix", "_refused", "_suffix", "_tools", "_usage", "_usage_prefix")

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        self._model = model
        self._created = int(time.time())
        self._include_usage = bool(request is not None and request.include_usage)
        self._id = ""
        self._prefix = b""
        self._suffix = b""
        self._usage_prefix = b""
        self._kinds: dict[int, tuple[str, int]] = {}  # IR index -> (kind, tool index)
        self._tools = 0
        self._usage: ir.Usage | None = None
        self._errored = False
        self._closed = False
        self._refused = False

    def encode(self, event: ir.Event) -> bytes:
        if self._errored:
            return b""
        if isinstance(event, ir.PartDelta):
            return self._delta(event)
        if isinstance(event, ir.PartStart):
            return self._ensure_started() + self._part_start(event)
        if isinstance(event, ir.PartStop):
            return b""
        if isinstance(event, ir.Start):
            out = self._start(event.id)
            self._add_usage(event.usage)
            return out
        if isinstance(event, ir.UsageEvent):
            self._add_usage(event.usage)
            return b""
        if isinstance(event, ir.Finish):
            self._add_usage(event.usage)
            return self._ensure_started() + self._finish(event.stop_reason)
        if isinstance(event, ir.ErrorEvent):
            self._errored = True
            return frame(orjson.dumps({"error": error_object(event.error)}))
        return b""

    def close(self) -> bytes:
        if self._errored or self._closed:
            return b""
        self._closed = True
        return _DONE

    # ------------------------------------------------------------------ internals

    def _start(self, response_id: str) -> bytes:
        self._id = response_id or new_id("chatcmpl-")
        head = (b'{"id":' + orjson.dumps(self._id) + b',"object":"chat.completion.chunk","created":'
                + str(self._created).encode() + b',"model":' + orjson.dumps(self._model))
        self._prefix = head + b',"choices":[{"index":0,"delta":'
        self._suffix = b',"logprobs":null,"finish_reason":null}]' + (
            b',"usage":null}' if self._include_usage else b"}")
        self._usage_prefix = head + b',"choices":[],"usage":'
        return self._chunk({"role": "assistant", "content": ""})

    def _ensure_started(self) -> bytes:
        return b"" if self._prefix else self._start("")

    def _chunk(self, delta: JSON) -> bytes:
        return frame(self._prefix + orjson.dumps(delta) + self._suffix)

    def _part_start(self, event: ir.PartStart) -> bytes:
        part = event.part
        if isinstance(part, ir.ToolCallPart):
            tool_index = self._tools
            self._tools += 1
            self._kinds[event.index] = ("tool", tool_index)
            call: JSON = {"index": tool_index, "id": part.id or new_id("call_"), "type": "function",
                          "function": {"name": part.name, "arguments": part.arguments}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(part, ir.ThinkingPart):
            field = _own(part.extra, FORM).get("field") or "reasoning_content"
            self._kinds[event.index] = (field, 0)
            return self._chunk({field: part.text}) if part.text else b""
        field = "content"
        if _is_refusal(part):
            field, self._refused = "refusal", True
        self._kinds[event.index] = (field, 0)
        return self._chunk({field: part.text}) if part.text else b""

    def _delta(self, event: ir.PartDelta) -> bytes:
        if not event.text:
            return b""  # signatures have no home in chat completions
        kind = self._kinds.get(event.index)
        if kind is None:
            return b""
        field, tool_index = kind
        if field == "tool":
            return self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": event.text}}]})
        return self._chunk({field: event.text})

    def _finish(self, stop: ir.StopReason | None) -> bytes:
        # A refusal message already says so; OpenAI ends it with "stop" (as render_response does).
        finish = b"stop" if stop == "refusal" and self._refused else finish_from_stop(stop).encode()
        out = frame(self._prefix + b'{},"logprobs":null,"finish_reason":"' + finish + b'"}]'
                    + (b',"usage":null}' if self._include_usage else b"}"))
        if self._include_usage and self._usage is not None:
            out += frame(self._usage_prefix + orjson.dumps(render_usage(self._usage)) + b"}")
        return out

    def _add_usage(self, usage: ir.Usage | None) -> None:
        if usage is not None:
            self._usage = usage if self._usage is None else self._usage.merged(usage)


# ---------------------------------------------------------------------------
# The dialect


class OpenAIChatDialect:
    stream_terminators: tuple[bytes, ...] = (b"[DONE]",)
    needs_inline_images = False
    name = NAME

    def __init__(self, *, send_reasoning: bool = False, max_tokens_field: str = "max_tokens") -> None:
        self.send_reasoning = send_reasoning
        self.max_tokens_field = max_tokens_field

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        return parse_request(body, model=model, stream=stream)

    def render_request(self, request: ir.Request) -> dict[str, Any]:
        return render_request(request, send_reasoning=self.send_reasoning,
                              max_tokens_field=self.max_tokens_field)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return parse_response(body)

    def render_response(self, response: ir.Response) -> dict[str, Any]:
        return render_response(response)

    def stream_decoder(self) -> ChatStreamDecoder:
        return ChatStreamDecoder()

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> ChatStreamEncoder:
        return ChatStreamEncoder(model, request)

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        return parse_error(status, body)

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]:
        return render_error(error)


DIALECT = OpenAIChatDialect()
