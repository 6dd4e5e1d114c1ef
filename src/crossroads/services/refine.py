"""What a side service's reply needs before it reaches the client, as a
transform of IR events: reasoning written inline as ``<think>…</think>``
becomes reasoning, an error written as answer text becomes an error, an
emulated tool call becomes a tool call, and usage the service cannot count
(it reports zeros) is reported as unknown.

Output parts are numbered afresh, since one upstream text part may become
a thinking part, text and tool calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossroads import ids, ir
from crossroads.services.tools import CallDetector

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True, slots=True)
class Quirks:
    think_tags: bool = False  # reasoning arrives inline in the text
    error_prefixes: tuple[str, ...] = ()  # a text chunk starting with one of these, then the end: an error
    usage_known: bool = True  # False: the service reports zeros it did not count
    label: str = "the service"


class ThinkSplitter:
    """Text with inline ``<think>`` blocks -> (kind, text) pieces; a tag split
    across chunks is held until it is whole."""

    def __init__(self) -> None:
        self.thinking = False
        self.pending = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        data, self.pending = self.pending + text, ""
        out: list[tuple[str, str]] = []
        while data:
            tag = THINK_CLOSE if self.thinking else THINK_OPEN
            at = data.find(tag)
            if at >= 0:
                if at:
                    out.append(("thinking" if self.thinking else "text", data[:at]))
                data = data[at + len(tag):]
                self.thinking = not self.thinking
                continue
            keep = next((n for n in range(min(len(tag) - 1, len(data)), 0, -1) if tag.startswith(data[-n:])), 0)
            if len(data) > keep:
                out.append(("thinking" if self.thinking else "text", data[:len(data) - keep]))
            self.pending = data[len(data) - keep:]
            break
        return out

    def flush(self) -> list[tuple[str, str]]:
        pending, self.pending = self.pending, ""
        return [("thinking" if self.thinking else "text", pending)] if pending else []


class Refiner:
    def __init__(self, quirks: Quirks, tool_names: set[str] | None = None) -> None:
        self.quirks = quirks
        self.splitter = ThinkSplitter() if quirks.think_tags else None
        self.detector = CallDetector(tool_names) if tool_names else None
        self.kinds: dict[int, str] = {}  # upstream part index -> text | thinking | tool
        self.mapped: dict[int, int] = {}  # upstream tool-call part -> output index
        self.next = 0
        self.open: tuple[int, str] | None = None  # output index and kind of the open text/thinking part
        self.suspect: str | None = None  # a text chunk that may be an error written as text
        self.wrote = False  # any output part at all

    def feed(self, event: ir.Event) -> list[ir.Event]:
        if isinstance(event, ir.PartStart):
            kind = "tool" if isinstance(event.part, ir.ToolCallPart) else (
                "thinking" if isinstance(event.part, ir.ThinkingPart) else "text")
            self.kinds[event.index] = kind
            if kind != "tool":
                return []
            out = self._close()
            self.mapped[event.index] = self._new_index()
            self.wrote = True
            return [*out, ir.PartStart(self.mapped[event.index], event.part)]
        if isinstance(event, ir.PartDelta):
            kind = self.kinds.get(event.index, "text")
            if kind == "tool":
                return [ir.PartDelta(self.mapped[event.index], event.text)]
            if kind == "thinking":
                return self._write("thinking", event.text, event.signature)
            return self._text(event.text)
        if isinstance(event, ir.PartStop):
            return [ir.PartStop(self.mapped[event.index])] if self.kinds.get(event.index) == "tool" else []
        if isinstance(event, ir.Start | ir.UsageEvent):
            if not self.quirks.usage_known:
                return [] if isinstance(event, ir.UsageEvent) else [ir.Start(event.id, event.model)]
            return [event]
        if isinstance(event, ir.Finish):
            return self._finish(event)
        return [event]

    # ------------------------------------------------------------------ text

    def _text(self, text: str) -> list[ir.Event]:
        out: list[ir.Event] = []
        if self.quirks.error_prefixes:
            if self.suspect is not None:
                out.extend(self._plain(self.suspect))
                self.suspect = None
            if text.lstrip().startswith(self.quirks.error_prefixes):
                self.suspect = text
                return out
        return [*out, *self._plain(text)]

    def _plain(self, text: str) -> list[ir.Event]:
        pieces = self.splitter.feed(text) if self.splitter is not None else [("text", text)]
        out: list[ir.Event] = []
        for kind, piece in pieces:
            if kind == "text" and self.detector is not None:
                piece = self.detector.feed(piece)
            if piece:
                out.extend(self._write(kind, piece))
        return out

    def _write(self, kind: str, text: str, signature: str | None = None) -> list[ir.Event]:
        out: list[ir.Event] = []
        if self.open is None or self.open[1] != kind:
            out.extend(self._close())
            self.open = (self._new_index(), kind)
            self.wrote = True
            out.append(ir.PartStart(self.open[0], ir.ThinkingPart() if kind == "thinking" else ir.TextPart("")))
        out.append(ir.PartDelta(self.open[0], text, signature))
        return out

    def _close(self) -> list[ir.Event]:
        if self.open is None:
            return []
        index, self.open = self.open[0], None
        return [ir.PartStop(index)]

    def _new_index(self) -> int:
        self.next += 1
        return self.next - 1

    # ------------------------------------------------------------------ the end

    def _finish(self, event: ir.Finish) -> list[ir.Event]:
        if self.suspect is not None:
            text = self.suspect.strip()
            return [ir.ErrorEvent(ir.Error(502, "server_error",
                                           f"{self.quirks.label} answered with an error: {text[:500]}"))]
        out: list[ir.Event] = []
        if self.splitter is not None:
            for kind, piece in self.splitter.flush():
                if kind == "text" and self.detector is not None:
                    piece = self.detector.feed(piece)
                if piece:
                    out.extend(self._write(kind, piece))
        stop = event.stop_reason
        if self.detector is not None:
            rest, calls = self.detector.finish()
            if rest:
                out.extend(self._write("text", rest))
            for name, arguments in calls:
                out.extend(self._close())
                index = self._new_index()
                self.wrote = True
                out += [ir.PartStart(index, ir.ToolCallPart(ids.new_id("call_"), name)),
                        ir.PartDelta(index, arguments), ir.PartStop(index)]
            if calls:
                stop = "tool_use"
        out.extend(self._close())
        if not self.wrote and stop != "max_tokens":
            return [ir.ErrorEvent(ir.Error(502, "server_error", f"{self.quirks.label} answered nothing"))]
        usage = event.usage if self.quirks.usage_known else None
        out.append(ir.Finish(stop, usage, event.stop_sequence))
        return out
