"""IR events -> Anthropic Messages stream events."""

from __future__ import annotations

import orjson

from crossroads import ids, ir, sse
from crossroads.dialects.anthropic.errors import error_body
from crossroads.dialects.anthropic.parts import ToolIds
from crossroads.dialects.anthropic.response import stop_to_wire, usage_to_wire
from crossroads.dialects.anthropic.tables import JSON
from crossroads.dialects.kit.stream import EncoderBase


def _frame(payload: JSON, event: str) -> bytes:
    return sse.frame(orjson.dumps(payload), event)


_PING = _frame({"type": "ping"}, "ping")


_MESSAGE_STOP = _frame({"type": "message_stop"}, "message_stop")


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def _delta_frame(index: int, delta_type: bytes, field: bytes, value: str) -> bytes:
    # Hand-assembled: this is the one frame per token on the hot path.
    return (_DELTA_HEAD + str(index).encode() + b',"delta":{"type":"' + delta_type + b'","' + field
            + b'":' + orjson.dumps(value) + b"}}\n\n")


class AnthropicStreamEncoder(EncoderBase):
    """IR events -> Anthropic SSE: message_start, ping, content_block_* per
    part, message_delta (stop reason + final usage), message_stop."""

    __slots__ = ("_indices", "_kinds", "_model", "_next", "_open", "_signatures", "_started", "_tool_calls",
                 "_tool_ids")

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        super().__init__()
        self._model = model
        self._started = False
        self._indices: dict[int, int] = {}  # IR index -> wire index
        self._kinds: dict[int, str] = {}  # IR index -> text | thinking | redacted | tool_use
        self._open: dict[int, int] = {}  # IR index -> wire index, blocks not yet stopped
        self._next = 0
        self._tool_calls = False
        self._tool_ids = ToolIds()
        self._signatures: dict[int, str] = {}

    def on_start(self, event: ir.Start) -> bytes:
        return self._start_if_needed(event)

    def on_part_start(self, event: ir.PartStart) -> bytes:
        return self._start_if_needed(None) + self._block_start(event)

    def on_delta(self, event: ir.PartDelta) -> bytes:
        return self._delta(event)

    def on_part_stop(self, index: int) -> bytes:
        return self._block_stop(index)

    def on_finish(self, event: ir.Finish) -> bytes:
        out = self._start_if_needed(None)
        for index in list(self._open):
            out += self._block_stop(index)
        delta = {"stop_reason": stop_to_wire(event.stop_reason, self._tool_calls),
                 "stop_sequence": event.stop_sequence}
        message_delta = {"type": "message_delta", "delta": delta,
                         "usage": usage_to_wire(self.usage, complete=False)}
        return out + _frame(message_delta, "message_delta") + _MESSAGE_STOP

    def on_error(self, error: ir.Error) -> bytes:
        return _frame(error_body(error), "error")

    def _start_if_needed(self, start: ir.Start | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: JSON = {
            "id": (start.id if start is not None else "") or ids.new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self._model or (start.model if start is not None else ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(self.usage, complete=True),
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
