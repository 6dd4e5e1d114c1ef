"""Anthropic Messages stream events -> IR events."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.anthropic.errors import error_from_payload
from crossroads.dialects.anthropic.response import stop_from_wire, usage_from_wire
from crossroads.dialects.anthropic.tables import JSON
from crossroads.dialects.kit.stream import PartTracker


def _raw_usage_update(raw: JSON, usage: Any) -> None:
    if isinstance(usage, dict):
        for key, value in usage.items():
            if value is not None:
                raw[key] = value


class AnthropicStreamDecoder:
    """Anthropic SSE events -> IR events. Blocks the IR cannot hold (server tool
    use and results) are skipped, so IR indices stay dense."""

    __slots__ = ("_indices", "_parts", "_stop", "_stop_sequence", "_usage")

    def __init__(self) -> None:
        self._parts = PartTracker()
        self._indices: dict[int, int] = {}  # wire index -> IR index
        self._usage: JSON = {}  # raw Anthropic counters, later reports win
        self._stop: Any = None
        self._stop_sequence: str | None = None

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
        if self._parts.done:
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._parts.fail(ir.Error(502, "server_error", "malformed event in upstream stream"))
        if type(payload) is not dict:
            return []
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":  # most events of a stream
                index = self._indices.get(payload.get("index", -1))
                return [] if index is None else [ir.PartDelta(index, delta.get("text") or "")]
            out: list[ir.Event] = []
            self._delta(payload, out)
            return out
        out = []
        if kind == "content_block_start":
            self._block_start(payload, out)
        elif kind == "content_block_stop":
            self._parts.stop(self._indices.get(payload.get("index", -1)), out)
        elif kind == "message_start":
            message = payload.get("message") or {}
            _raw_usage_update(self._usage, message.get("usage"))
            out.append(ir.Start(id=str(message.get("id") or ""), model=str(message.get("model") or ""),
                                usage=usage_from_wire(self._usage) if self._usage else None))
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self._stop = delta["stop_reason"]
            if delta.get("stop_sequence") is not None:
                self._stop_sequence = delta["stop_sequence"]
            _raw_usage_update(self._usage, payload.get("usage"))
        elif kind == "message_stop":
            self._parts.finish(out, stop_from_wire(self._stop),
                               usage_from_wire(self._usage) if self._usage else None, self._stop_sequence)
        elif kind == "error":
            return self._parts.fail(error_from_payload(payload, None))
        return out  # ping and future event types: nothing

    def close(self) -> list[ir.Event]:
        return self._parts.cut()

    def _block_start(self, payload: JSON, out: list[ir.Event]) -> None:
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            index = self._parts.begin(ir.TextPart(text=""), out)
            if block.get("text"):
                out.append(ir.PartDelta(index, text=block["text"]))
        elif kind == "thinking":
            index = self._parts.begin(ir.ThinkingPart(), out)
            if block.get("thinking") or block.get("signature"):
                out.append(ir.PartDelta(index, text=block.get("thinking") or "",
                                        signature=block.get("signature") or None))
        elif kind == "redacted_thinking":
            index = self._parts.begin(ir.ThinkingPart(redacted=block.get("data") or ""), out)
        elif kind == "tool_use":
            index = self._parts.begin(ir.ToolCallPart(id=str(block.get("id") or ""), name=str(block.get("name") or "")),
                                      out)
            if block.get("input"):
                out.append(ir.PartDelta(index, text=orjson.dumps(block["input"]).decode()))
        else:
            return
        self._indices[payload.get("index", index)] = index

    def _delta(self, payload: JSON, out: list[ir.Event]) -> None:
        index = self._indices.get(payload.get("index", -1))
        if index is None:
            return
        delta = payload.get("delta") or {}
        kind = delta.get("type")  # text_delta, the commonest, is decoded in feed
        if kind == "input_json_delta":
            out.append(ir.PartDelta(index, text=delta.get("partial_json") or ""))
        elif kind == "thinking_delta":
            out.append(ir.PartDelta(index, text=delta.get("thinking") or ""))
        elif kind == "signature_delta":
            out.append(ir.PartDelta(index, signature=delta.get("signature") or ""))
        # citations_delta and future kinds: nothing
