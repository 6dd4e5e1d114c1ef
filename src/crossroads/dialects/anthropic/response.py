"""Anthropic Messages full responses and usage <-> IR."""

from __future__ import annotations

from typing import Any

from crossroads import ids, ir
from crossroads.dialects.anthropic.parts import ToolIds, interleave, parse_block, parse_text_block, tool_input
from crossroads.dialects.anthropic.tables import (
    JSON,
    NAME,
    RESPONSE_KEYS,
    STOP_FROM_WIRE,
    STOP_TO_WIRE,
    USAGE_KEYS,
)
from crossroads.dialects.kit.extras import leftovers, merged
from crossroads.dialects.kit.fields import require_dict, require_list


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
        return parse_text_block(block, param)
    if kind == "thinking" or kind == "redacted_thinking" or kind == "tool_use":
        return parse_block(block, param, {})
    return None


def parse_response(body: Any) -> ir.Response:
    body = require_dict(body, "response")
    parts: list[ir.Part] = []
    raw: list[list[Any]] = []
    for index, block in enumerate(require_list(body.get("content") or [], "content")):
        if type(block) is dict and len(block) == 2 and block.get("type") == "text" and type(block["text"]) is str:
            parts.append(ir.TextPart(block["text"]))  # the commonest block: nothing to check or keep
            continue
        param = f"content.{index}"
        part = _parse_response_block(require_dict(block, param), param)
        if part is None:
            raw.append([len(parts), block])
        else:
            parts.append(part)
    fields = {} if RESPONSE_KEYS.issuperset(body) else leftovers(body, RESPONSE_KEYS)
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
        if not USAGE_KEYS.issuperset(usage_body):
            fields["usage"] = leftovers(usage_body, USAGE_KEYS)
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


def _render_response_part(part: ir.Part, tool_ids: ToolIds) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return merged({"type": "text", "text": part.text}, part.extra, NAME)
    if isinstance(part, ir.ThinkingPart):
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.redacted}
        if not part.text and not part.signature:
            return None  # e.g. only OpenAI encrypted reasoning: nothing to show here
        return merged({"type": "thinking", "thinking": part.text, "signature": part.signature or ""},
                            part.extra, NAME)
    if isinstance(part, ir.ToolCallPart):
        return merged({"type": "tool_use", "id": tool_ids(part.id), "name": part.name,
                             "input": tool_input(part.arguments)}, part.extra, NAME)
    return None


def render_response(response: ir.Response) -> JSON:
    fields = dict(response.extra.get(NAME) or {})
    tool_ids = ToolIds()
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
