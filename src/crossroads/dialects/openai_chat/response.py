"""OpenAI chat full responses and usage <-> IR."""

from __future__ import annotations

import time
from typing import Any

from crossroads import ir
from crossroads.dialects.kit.extras import leftovers, own, wrap
from crossroads.dialects.openai_chat.errors import error_from_payload
from crossroads.dialects.openai_chat.parts import THINKING_FIELDS, obj, tool_call_json
from crossroads.dialects.openai_chat.tables import FORM, JSON, NAME
from crossroads.ids import new_id

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


_RESPONSE_FIELDS = frozenset({"id", "object", "created", "model", "choices", "usage"})


_CHOICE_FIELDS = frozenset({"index", "message", "finish_reason"})


_MESSAGE_FIELDS = frozenset({"role", "content", "refusal", "tool_calls", "function_call",
                             *THINKING_FIELDS})


def _bad_upstream(message: str) -> ir.Error:
    return ir.Error(502, "server_error", f"upstream sent an invalid chat completion: {message}")


def _message_parts(message: JSON, form: JSON) -> list[ir.Part]:
    parts: list[ir.Part] = []
    for field in THINKING_FIELDS:
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
        body = obj(call.get("custom"))
        name, arguments = body.get("name"), body.get("input")
        form["custom"] = True
    else:
        body = obj(call.get("function"))
        name, arguments = body.get("name"), body.get("arguments")
        if "type" not in call:
            form["no_type"] = True
    call_id = call.get("id")
    rest = leftovers(call, ("id", "type", "function", "custom"))
    return ir.ToolCallPart(id=call_id if isinstance(call_id, str) and call_id else new_id("call_"),
                           name=name if isinstance(name, str) else "",
                           arguments=arguments if isinstance(arguments, str) else "",
                           extra=wrap(NAME, rest, FORM, form))


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
        message = obj(first.get("message"))
        response.parts = _message_parts(message, form)
        finish = first.get("finish_reason")
        response.stop_reason = stop_reason_from_finish(finish)
        if response.stop_reason == "end_turn" and any(
                isinstance(p, ir.TextPart) and p.text and is_refusal(p) for p in response.parts):
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


def is_refusal(part: ir.Part) -> bool:
    return isinstance(part, ir.TextPart) and bool(own(part.extra, FORM).get("refusal"))


def render_response(response: ir.Response) -> JSON:
    form = own(response.extra, FORM)
    texts: list[str] = []
    refusals: list[str] = []
    thinking: list[str] = []
    thinking_field = "reasoning_content"
    calls: list[JSON] = []
    legacy: JSON | None = None
    for part in response.parts:
        if isinstance(part, ir.TextPart):
            (refusals if is_refusal(part) else texts).append(part.text)
        elif isinstance(part, ir.ThinkingPart):
            marker = own(part.extra, FORM).get("field")
            if part.text or marker:
                thinking.append(part.text)
                thinking_field = marker or thinking_field
        elif isinstance(part, ir.ToolCallPart):
            if own(part.extra, FORM).get("legacy"):
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
    body.update(own(response.extra, NAME))
    return body
