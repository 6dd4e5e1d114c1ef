"""Gemini stream events -> IR events."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from crossroads import ids, ir
from crossroads.dialects.gemini.errors import error_from_object
from crossroads.dialects.gemini.parts import PartReader
from crossroads.dialects.gemini.response import parse_usage, stop_reason, upstream_error
from crossroads.dialects.gemini.tables import NAME, get
from crossroads.dialects.kit.extras import own
from crossroads.dialects.kit.stream import PartTracker


class GeminiStreamDecoder:
    """Each SSE ``data:`` is a whole GenerateContentResponse; the chunk with a
    ``finishReason`` ends the stream (there is no terminator event)."""

    __slots__ = ("_kind", "_open", "_parts", "_reader", "_saw_call", "_started", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._parts = PartTracker()
        self._open: int | None = None  # the part later chunks' text continues
        self._kind = ""
        self._usage: dict[str, Any] = {}
        self._saw_call = False
        self._reader = PartReader(salt=secrets.token_hex(3) + "_", output=True)

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
        if self._parts.done or not data.strip():
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(upstream_error("upstream sent invalid JSON in the Gemini stream"))
        return self.feed_chunk(chunk)

    def feed_chunk(self, chunk: Any) -> list[ir.Event]:
        """One parsed GenerateContentResponse."""
        if self._parts.done:
            return []
        if not isinstance(chunk, dict):
            return self._fail(upstream_error("upstream Gemini stream chunk is not an object"))
        if isinstance(chunk.get("error"), dict):
            return self._fail(error_from_object(chunk["error"], 500))
        events: list[ir.Event] = []
        if not self._started:
            self._started = True
            response_id = get(chunk, "responseId")
            model = get(chunk, "modelVersion")
            events.append(ir.Start(id=response_id if isinstance(response_id, str) and response_id else ids.new_id(""),
                                   model=model if isinstance(model, str) else ""))
        usage = chunk.get("usageMetadata") or chunk.get("usage_metadata")
        if isinstance(usage, dict):
            # Counts are cumulative; later fields win. Parsed once, at the end.
            self._usage.update(usage)
        candidates = chunk.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            candidate = candidates[0]
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            try:
                for part in parts if isinstance(parts, list) else ():
                    self._part(part, events)
            except ir.Error as exc:
                return events + self._fail(upstream_error(f"malformed upstream Gemini part: {exc.message}"))
            finish = get(candidate, "finishReason")
            if isinstance(finish, str) and finish:
                self._finish(stop_reason(finish, self._saw_call), events)
        elif not candidates:
            feedback = get(chunk, "promptFeedback")
            if isinstance(feedback, dict) and get(feedback, "blockReason"):
                self._finish("content_filter", events)
        return events

    def close(self) -> list[ir.Event]:
        return self._parts.cut()

    def _fail(self, error: ir.Error) -> list[ir.Event]:
        return self._parts.fail(error)

    def _finish(self, stop: ir.StopReason | None, events: list[ir.Event]) -> None:
        self._parts.finish(events, stop, parse_usage(self._usage) if self._usage else None)

    def _close_open(self, events: list[ir.Event]) -> None:
        self._parts.stop(self._open, events)
        self._open = None
        self._kind = ""

    def _start(self, part: ir.TextPart | ir.ThinkingPart | ir.ToolCallPart, events: list[ir.Event]) -> int:
        return self._parts.begin(part, events)

    def _part(self, raw: Any, events: list[ir.Event]) -> None:
        if isinstance(raw, dict) and len(raw) == 1 and isinstance(raw.get("text"), str):
            self._plain_text(raw["text"], events)  # the common chunk: skip the general reader
            return
        part = self._reader.part(raw, "part")
        if isinstance(part, ir.ToolCallPart):
            self._close_open(events)
            self._saw_call = True
            index = self._start(ir.ToolCallPart(id=part.id, name=part.name, extra=part.extra), events)
            events.append(ir.PartDelta(index, text=part.arguments))
            self._parts.stop(index, events)
        elif isinstance(part, ir.ThinkingPart):
            if self._kind != "thinking" or part.extra:
                self._close_open(events)
                self._open = self._start(ir.ThinkingPart(extra=part.extra), events)
                self._kind = "thinking"
            assert self._open is not None
            if part.text:
                events.append(ir.PartDelta(self._open, text=part.text))
            if part.signature:
                events.append(ir.PartDelta(self._open, signature=part.signature))
        elif isinstance(part, ir.TextPart):
            gem = own(part.extra, NAME)
            if "_part" in gem:
                self._close_open(events)
                index = self._start(ir.TextPart(text="", extra=part.extra), events)
                if part.text:
                    events.append(ir.PartDelta(index, text=part.text))
                self._parts.stop(index, events)
                return
            if not gem:
                self._plain_text(part.text, events)
                return
            # A part carrying extra wire keys (a thoughtSignature) starts its own IR part,
            # since PartStart is the only place to attach them.
            self._close_open(events)
            self._open = self._start(ir.TextPart(text="", extra=part.extra), events)
            self._kind = "text"
            if part.text:
                events.append(ir.PartDelta(self._open, text=part.text))

    def _plain_text(self, text: str, events: list[ir.Event]) -> None:
        if self._open is None or self._kind != "text":
            self._close_open(events)
            self._open = self._start(ir.TextPart(text=""), events)
            self._kind = "text"
        if text:
            events.append(ir.PartDelta(self._open, text=text))
