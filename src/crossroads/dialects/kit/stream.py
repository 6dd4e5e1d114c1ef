"""Stream bookkeeping every dialect shares.

:class:`EncoderBase` is the frame of every stream encoder: it dispatches IR
events to the dialect's ``on_*`` hooks, keeps the done guard (nothing is
written after a Finish or an error, and the trailer once) and merges the
usage that Start, UsageEvent and Finish report, once, into ``usage``.

:class:`PartTracker` is what every stream decoder needs: output part indices
in order and never reused, which parts are open, the done guard, and the
error event of a stream cut before it finished.
"""

from __future__ import annotations

from crossroads import ir

UPSTREAM_CUT = "upstream stream ended before completion"


class EncoderBase:
    __slots__ = ("closed", "done", "failed", "usage")

    def __init__(self) -> None:
        self.done = False  # a Finish or an error was written
        self.failed = False  # ... and it was an error
        self.closed = False
        self.usage: ir.Usage | None = None

    def encode(self, event: ir.Event) -> bytes:
        if self.done:
            return b""
        if isinstance(event, ir.PartDelta):  # most events: checked first
            return self.on_delta(event)
        if isinstance(event, ir.PartStart):
            return self.on_part_start(event)
        if isinstance(event, ir.PartStop):
            return self.on_part_stop(event.index)
        if isinstance(event, ir.Start):
            self.add_usage(event.usage)
            return self.on_start(event)
        if isinstance(event, ir.UsageEvent):
            self.add_usage(event.usage)
            return self.on_usage()
        if isinstance(event, ir.Finish):
            self.add_usage(event.usage)
            self.done = True
            return self.on_finish(event)
        self.done = self.failed = True
        return self.on_error(event.error)

    def close(self) -> bytes:
        if self.closed:
            return b""
        self.closed = True
        return self.on_close()

    def add_usage(self, usage: ir.Usage | None) -> None:
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage.merged(usage)

    # ------------------------------------------------------------------ the dialect's hooks

    def on_start(self, event: ir.Start) -> bytes:
        raise NotImplementedError

    def on_part_start(self, event: ir.PartStart) -> bytes:
        raise NotImplementedError

    def on_delta(self, event: ir.PartDelta) -> bytes:
        raise NotImplementedError

    def on_part_stop(self, index: int) -> bytes:
        return b""

    def on_usage(self) -> bytes:
        return b""

    def on_finish(self, event: ir.Finish) -> bytes:
        raise NotImplementedError

    def on_error(self, error: ir.Error) -> bytes:
        raise NotImplementedError

    def on_close(self) -> bytes:
        """The trailer after the last event."""
        return b""


class PartTracker:
    __slots__ = ("done", "next", "open")

    def __init__(self) -> None:
        self.next = 0  # the index the next part gets
        self.open: dict[int, None] = {}  # indices started and not stopped, in order
        self.done = False  # a Finish or an error was emitted

    def begin(self, part: ir.TextPart | ir.ThinkingPart | ir.ToolCallPart, out: list[ir.Event]) -> int:
        index = self.next
        self.next += 1
        self.open[index] = None
        out.append(ir.PartStart(index, part))
        return index

    def stop(self, index: int | None, out: list[ir.Event]) -> None:
        if index is not None and index in self.open:
            del self.open[index]
            out.append(ir.PartStop(index))

    def stop_all(self, out: list[ir.Event]) -> None:
        for index in self.open:
            out.append(ir.PartStop(index))
        self.open.clear()

    def finish(self, out: list[ir.Event], stop: ir.StopReason | None, usage: ir.Usage | None = None,
               stop_sequence: str | None = None) -> None:
        self.stop_all(out)
        out.append(ir.Finish(stop, usage, stop_sequence))
        self.done = True

    def fail(self, error: ir.Error) -> list[ir.Event]:
        self.done = True
        return [ir.ErrorEvent(error)]

    def cut(self) -> list[ir.Event]:
        """At the end of input: nothing when the stream finished, else an error event."""
        if self.done:
            return []
        return self.fail(ir.Error(502, "server_error", UPSTREAM_CUT))
