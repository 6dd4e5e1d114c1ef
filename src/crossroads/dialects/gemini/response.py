"""Gemini full responses and usage <-> IR."""

from __future__ import annotations

import secrets
from typing import Any

from crossroads import ids, ir
from crossroads.dialects.gemini.errors import error_from_object
from crossroads.dialects.gemini.parts import (
    PartReader,
    call_part,
    leftover,
    media_part,
    merge_under,
    text_part,
    thought_part,
)
from crossroads.dialects.gemini.tables import (
    CANDIDATE_KEYS,
    FINISH_TO_STOP,
    NAME,
    RESPONSE_KEYS,
    STOP_TO_FINISH,
    USAGE_KEYS,
    get,
)
from crossroads.dialects.kit.extras import own


def stop_reason(finish: Any, has_calls: bool) -> ir.StopReason | None:
    if not isinstance(finish, str) or finish == "FINISH_REASON_UNSPECIFIED":
        return None
    stop = FINISH_TO_STOP.get(finish.upper(), "end_turn")
    return "tool_use" if stop == "end_turn" and has_calls else stop


def parse_usage(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = get(raw, "promptTokenCount")
    candidates = get(raw, "candidatesTokenCount")
    thoughts = get(raw, "thoughtsTokenCount")
    cached = get(raw, "cachedContentTokenCount")
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return ir.Usage(input_tokens=prompt, output_tokens=output, cache_read_tokens=cached, reasoning_tokens=thoughts)


def render_usage(usage: ir.Usage, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if usage.input_tokens is not None:
        rendered["promptTokenCount"] = usage.input_tokens
    if usage.output_tokens is not None:
        rendered["candidatesTokenCount"] = max(usage.output_tokens - (usage.reasoning_tokens or 0), 0)
    if usage.reasoning_tokens is not None:
        rendered["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cache_read_tokens is not None:
        rendered["cachedContentTokenCount"] = usage.cache_read_tokens
    if extra:
        merge_under(rendered, extra)
    counted = [rendered[k] for k in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
                                     "toolUsePromptTokenCount") if isinstance(rendered.get(k), int)]
    if counted:
        rendered["totalTokenCount"] = sum(counted)
    return rendered


def upstream_error(message: str) -> ir.Error:
    return ir.Error(502, "server_error", message)


def parse_response(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise upstream_error("upstream Gemini response is not a JSON object")
    if isinstance(body.get("error"), dict) and "candidates" not in body:
        raise error_from_object(body["error"], 502)
    gem: dict[str, Any] = leftover(body, RESPONSE_KEYS)
    usage_raw = get(body, "usageMetadata")
    usage = parse_usage(usage_raw)
    if isinstance(usage_raw, dict):
        usage_extra = leftover(usage_raw, USAGE_KEYS)
        if usage_extra:
            gem["usageMetadata"] = usage_extra
    response_id = get(body, "responseId")
    model = get(body, "modelVersion")
    response = ir.Response(id=response_id if isinstance(response_id, str) and response_id else ids.new_id(""),
                           model=model if isinstance(model, str) else "", usage=usage)
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates:
        _parse_candidate(candidates[0], response, gem)
        if len(candidates) > 1:
            gem["_candidates"] = candidates[1:]
    else:
        gem["_no_candidates"] = True
        feedback = get(body, "promptFeedback")
        if isinstance(feedback, dict) and get(feedback, "blockReason"):
            response.stop_reason = "content_filter"
    if gem:
        response.extra[NAME] = gem
    return response


def _parse_candidate(raw: Any, response: ir.Response, gem: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise upstream_error("upstream Gemini candidate is not an object")
    candidate_extra = leftover(raw, CANDIDATE_KEYS)
    content = raw.get("content")
    if isinstance(content, dict):
        reader = PartReader(salt=secrets.token_hex(3) + "_", output=True)
        parts = content.get("parts") or []
        try:
            response.parts = [reader.part(p, f"candidates[0].content.parts[{j}]") for j, p in enumerate(parts)]
        except ir.Error as exc:
            raise upstream_error(f"malformed upstream Gemini part: {exc.message}") from None
    else:
        candidate_extra["_no_content"] = True
    finish = get(raw, "finishReason")
    has_calls = any(isinstance(p, ir.ToolCallPart) for p in response.parts)
    response.stop_reason = stop_reason(finish, has_calls)
    if isinstance(finish, str) and STOP_TO_FINISH.get(response.stop_reason or "") != finish:
        candidate_extra["finishReason"] = finish
    if candidate_extra:
        gem["_candidate"] = candidate_extra


def render_response(response: ir.Response) -> dict[str, Any]:
    gem = dict(own(response.extra, NAME))
    body: dict[str, Any] = {}
    candidate_extra = gem.pop("_candidate", None) or {}
    more = gem.pop("_candidates", None)
    no_candidates = gem.pop("_no_candidates", False)
    parts = _output_parts(response.parts)
    if parts or not no_candidates:
        candidate: dict[str, Any] = {}
        if parts or not candidate_extra.get("_no_content"):
            candidate["content"] = {"role": "model", "parts": parts} if parts else {"role": "model"}
        finish = STOP_TO_FINISH.get(response.stop_reason or "")
        if finish is not None:
            candidate["finishReason"] = finish
        _merge_candidate_extra(candidate, candidate_extra, response.stop_reason)
        body["candidates"] = [candidate, *(more if isinstance(more, list) else ())]
    usage_extra = gem.pop("usageMetadata", None)
    if response.usage is not None:
        body["usageMetadata"] = render_usage(response.usage, usage_extra)
    body["modelVersion"] = response.model
    body["responseId"] = response.id
    merge_under(body, gem)
    return body


def _merge_candidate_extra(candidate: dict[str, Any], extra: dict[str, Any], stop: ir.StopReason | None) -> None:
    for key, value in extra.items():
        if key == "finishReason":
            # The original spelling (RECITATION, OTHER...) when it still means the same stop reason.
            if stop_reason(value, stop == "tool_use") == stop:
                candidate["finishReason"] = value
        elif not key.startswith("_") and key not in candidate:
            candidate[key] = value


def _output_parts(parts: list[ir.Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            rendered = text_part(part)
        elif isinstance(part, ir.ThinkingPart):
            rendered = thought_part(part)
        elif isinstance(part, ir.ToolCallPart):
            rendered = call_part(part)
        else:
            rendered = media_part(part)
        if rendered is not None:
            out.append(rendered)
    return out
