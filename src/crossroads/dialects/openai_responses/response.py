"""OpenAI Responses full responses and usage <-> IR."""

from __future__ import annotations

import time
from typing import Any

from crossroads import ids, ir
from crossroads.dialects.openai_responses.parts import assistant_items, output_parts
from crossroads.dialects.openai_responses.tables import JSON, META, NAME


def parse_usage(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    inp = raw.get("input_tokens_details")
    out = raw.get("output_tokens_details")
    inp = inp if isinstance(inp, dict) else {}
    out = out if isinstance(out, dict) else {}
    return ir.Usage(
        input_tokens=_count(raw.get("input_tokens")),
        output_tokens=_count(raw.get("output_tokens")),
        cache_read_tokens=_count(inp.get("cached_tokens")),
        cache_write_tokens=_count(inp.get("cache_write_tokens")),
        reasoning_tokens=_count(out.get("reasoning_tokens")),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def render_usage(usage: ir.Usage) -> JSON:
    # The SDK's ResponseUsage requires every field below: the one place None renders as 0.
    input_tokens = usage.input_tokens or 0
    output_tokens = usage.output_tokens or 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens or 0,
                                 "cache_write_tokens": usage.cache_write_tokens or 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": input_tokens + output_tokens,
    }


_INCOMPLETE_STOPS: dict[str, ir.StopReason] = {
    "max_output_tokens": "max_tokens",
    "content_filter": "content_filter",
}


def stop_reason(status: Any, incomplete: Any, has_call: bool, has_refusal: bool) -> ir.StopReason | None:
    if status == "completed":
        return "tool_use" if has_call else "refusal" if has_refusal else "end_turn"
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return _INCOMPLETE_STOPS.get(reason) if isinstance(reason, str) else None
    if status == "failed":
        return "error"
    return None


def status_for(stop: ir.StopReason | None) -> tuple[str, JSON | None]:
    if stop == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    if stop == "error":
        return "failed", None
    return "completed", None


_MODELLED_RESPONSE = frozenset({"id", "object", "created_at", "model", "output", "usage", "status",
                                "incomplete_details"})


def _response_defaults() -> JSON:
    """Fields the SDK's Response model requires that the IR does not carry."""
    return {"error": None, "incomplete_details": None, "instructions": None, "metadata": None,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}


def parse_response(body: dict[str, Any]) -> ir.Response:
    if not isinstance(body, dict):
        raise ir.Error(502, "server_error", "upstream response is not a JSON object")
    output = body.get("output")
    try:
        parts, raw, has_call, has_refusal = output_parts(output if isinstance(output, list) else [],
                                                          "output")
    except ir.Error as error:
        raise ir.Error(502, "server_error", f"malformed upstream response: {error.message}") from None
    status, incomplete = body.get("status"), body.get("incomplete_details")
    stop = stop_reason(status, incomplete, has_call, has_refusal)
    created, response_id, model = body.get("created_at"), body.get("id"), body.get("model")
    response = ir.Response(
        id=response_id if isinstance(response_id, str) else "",
        model=model if isinstance(model, str) else "",
        parts=parts,
        stop_reason=stop,
        usage=parse_usage(body.get("usage")),
        created=int(created) if isinstance(created, int | float) and not isinstance(created, bool) else None,
    )
    extra = {k: v for k, v in body.items() if k not in _MODELLED_RESPONSE}
    if extra:
        response.extra[NAME] = extra
    meta: JSON = {}
    if raw:
        meta["raw"] = raw
    if status_for(stop) != (status, incomplete):
        meta["status"] = {"for": stop, "status": status, "incomplete_details": incomplete}
    if "usage" in body and response.usage is None:
        meta["usage"] = body["usage"]
    if meta:
        response.extra[META] = meta
    return response


def render_response(response: ir.Response) -> dict[str, Any]:
    meta = response.extra.get(META) or {}
    body = _response_defaults()
    extra = response.extra.get(NAME)
    if extra:
        body.update(extra)
    status, incomplete = status_for(response.stop_reason)
    kept = meta.get("status")
    if kept and kept.get("for") == response.stop_reason:
        status, incomplete = kept["status"], kept["incomplete_details"]
    body["id"] = response.id or ids.new_id("resp_")
    body["object"] = "response"
    body["created_at"] = response.created if response.created is not None else int(time.time())
    body["status"] = status
    body["incomplete_details"] = incomplete
    body["model"] = response.model
    body["output"] = assistant_items(response.parts, meta.get("raw"), for_request=False)
    if response.usage is not None:
        body["usage"] = render_usage(response.usage)
    else:
        body["usage"] = meta.get("usage")
    if status == "failed" and body.get("error") is None:
        body["error"] = {"code": "server_error", "message": "the upstream model reported an error"}
    return body
