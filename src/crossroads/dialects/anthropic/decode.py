"""Anthropic Messages stream events -> IR events."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.anthropic.errors import error_from_payload
from crossroads.dialects.anthropic.response import stop_from_wire, usage_from_wire
from crossroads.dialects.anthropic.tables import JSON, UPSTREAM_CUT


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

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
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
