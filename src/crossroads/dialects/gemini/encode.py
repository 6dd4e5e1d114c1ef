"""IR events -> Gemini stream events."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ids, ir, sse
from crossroads.dialects.gemini.errors import error_body
from crossroads.dialects.gemini.parts import call_part, public, usable_signature
from crossroads.dialects.gemini.response import render_usage
from crossroads.dialects.gemini.tables import NAME, STOP_TO_FINISH
from crossroads.dialects.kit.extras import own
from crossroads.dialects.kit.stream import EncoderBase

_CHUNK_HEAD = b'{"candidates":[{"content":{"role":"model","parts":['


class _OpenPart:
    __slots__ = ("args", "call", "kind", "wire")

    def __init__(self, kind: str, wire: dict[str, Any] | None = None,
                 call: ir.ToolCallPart | None = None) -> None:
        self.kind = kind
        self.wire = wire  # wire keys still to attach to this part's first chunk
        self.call = call
        self.args: list[str] = []


class GeminiStreamEncoder(EncoderBase):
    """IR events -> GenerateContentResponse chunks, one per text/thinking delta.

    Tool calls are sent whole (Gemini never streams arguments), so their
    argument fragments are buffered until the call's PartStop."""

    __slots__ = ("_emitted", "_id", "_model", "_parts", "_tail")

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        super().__init__()
        self._model = model
        self._id = ""
        self._tail = b""
        self._parts: dict[int, _OpenPart] = {}
        self._emitted = False
        self._set_id(ids.new_id(""))

    def _set_id(self, response_id: str) -> None:
        self._id = response_id
        self._tail = (b']},"index":0}],"modelVersion":' + orjson.dumps(self._model)
                      + b',"responseId":' + orjson.dumps(response_id) + b"}")

    def on_start(self, event: ir.Start) -> bytes:
        if event.id:
            self._set_id(event.id)
        return b""

    def on_part_start(self, event: ir.PartStart) -> bytes:
        return self._start(event)

    def on_delta(self, event: ir.PartDelta) -> bytes:
        return self._delta(event)

    def on_part_stop(self, index: int) -> bytes:
        return self._stop(index)

    def on_error(self, error: ir.Error) -> bytes:
        return self._emit(orjson.dumps(error_body(error)[1]))

    def _emit(self, payload: bytes) -> bytes:
        return sse.frame(payload)

    def _part_chunk(self, part: dict[str, Any]) -> bytes:
        return self._emit(_CHUNK_HEAD + orjson.dumps(part) + self._tail)

    def _start(self, event: ir.PartStart) -> bytes:
        part = event.part
        if isinstance(part, ir.ToolCallPart):
            self._parts[event.index] = _OpenPart("call", call=part)
            return b""
        if isinstance(part, ir.ThinkingPart):
            self._parts[event.index] = _OpenPart("thinking", wire=public(own(part.extra, NAME)) or None)
            return b""
        gem = own(part.extra, NAME)
        raw = gem.get("_part")
        if isinstance(raw, dict):
            self._parts[event.index] = _OpenPart("raw")
            return self._part_chunk(raw)
        self._parts[event.index] = _OpenPart("text", wire=public(gem) or None)
        return b""

    def _delta(self, event: ir.PartDelta) -> bytes:
        state = self._parts.get(event.index)
        if state is None or state.kind == "raw":
            return b""
        if state.kind == "call":
            state.args.append(event.text)
            return b""
        signature = usable_signature(event.signature) if state.kind == "thinking" else None
        if not event.text and not signature:
            return b""
        part: dict[str, Any] = {"text": event.text}
        if state.kind == "thinking":
            part["thought"] = True
            if signature:
                part["thoughtSignature"] = signature
        if state.wire:
            part.update(state.wire)
            state.wire = None
        return self._part_chunk(part)

    def _stop(self, index: int) -> bytes:
        state = self._parts.pop(index, None)
        if state is None:
            return b""
        if state.kind == "call" and state.call is not None:
            call = ir.ToolCallPart(id=state.call.id, name=state.call.name, arguments="".join(state.args),
                                   extra=state.call.extra)
            return self._part_chunk(call_part(call))
        if state.wire:  # e.g. a thoughtSignature on a part whose text was empty
            part: dict[str, Any] = {"text": ""}
            if state.kind == "thinking":
                part["thought"] = True
            part.update(state.wire)
            return self._part_chunk(part)
        return b""

    def on_finish(self, event: ir.Finish) -> bytes:
        usage = self.usage
        chunk: dict[str, Any] = {
            "candidates": [{"finishReason": STOP_TO_FINISH.get(event.stop_reason or "", "STOP"), "index": 0}],
        }
        if usage is not None:
            chunk["usageMetadata"] = render_usage(usage)
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        return self._emit(orjson.dumps(chunk))


class GeminiArrayStreamEncoder(GeminiStreamEncoder):
    """``streamGenerateContent`` without ``alt=sse``: the chunks form one JSON array."""

    __slots__ = ()

    def on_close(self) -> bytes:
        return b"]" if self._emitted else b"[]"

    def _emit(self, payload: bytes) -> bytes:
        prefix = b",\r\n" if self._emitted else b"["
        self._emitted = True
        return prefix + payload


class JsonArrayFramer:
    """A Gemini upstream's SSE stream re-framed as the JSON array a client
    without ``alt=sse`` reads: each event's data becomes one array element."""

    __slots__ = ("_buffer", "_emitted")

    def __init__(self) -> None:
        self._buffer = b""
        self._emitted = False

    def feed(self, chunk: bytes) -> bytes:
        data = self._buffer + chunk if self._buffer else chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._buffer = data
            return b""
        self._buffer = data[end + 1:]
        out = []
        for line in data[:end].split(b"\n"):
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload:
                    out.append((b",\r\n" if self._emitted else b"[") + payload)
                    self._emitted = True
        return b"".join(out)

    def close(self) -> bytes:
        rest = self.feed(b"\n") if self._buffer else b""
        return rest + (b"]" if self._emitted else b"[]")
