"""Bridges between IR streams and IR responses.

``Assembler`` folds a stream of events into a full :class:`ir.Response`
(used when an upstream only streams but the client asked for one JSON body,
and by encoders that must report the whole output at the end, such as the
Responses API's ``response.completed``). ``events_for`` turns a full response
into the equivalent event sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from crossroads import ir


class Assembler:
    """Text arrives as many small deltas: each part keeps its pieces in a list
    and joins them once, when the part is read (linear in the stream's size)."""

    __slots__ = ("_pieces", "_signatures", "error", "id", "model", "parts", "stop_reason", "stop_sequence",
                 "usage")

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.parts: dict[int, ir.TextPart | ir.ThinkingPart | ir.ToolCallPart] = {}
        self._pieces: dict[int, list[str]] = {}
        self._signatures: dict[int, list[str]] = {}
        self.stop_reason: ir.StopReason | None = None
        self.stop_sequence: str | None = None
        self.usage: ir.Usage | None = None
        self.error: ir.Error | None = None

    def feed(self, event: ir.Event) -> None:
        if isinstance(event, ir.PartDelta):
            pieces = self._pieces.get(event.index)
            if pieces is None:
                return
            if event.text:
                pieces.append(event.text)
            if event.signature and isinstance(self.parts[event.index], ir.ThinkingPart):
                self._signatures.setdefault(event.index, []).append(event.signature)
        elif isinstance(event, ir.PartStart):
            part = _copy_part(event.part)
            self.parts[event.index] = part
            self._pieces[event.index] = [part.arguments if isinstance(part, ir.ToolCallPart) else part.text]
            self._signatures.pop(event.index, None)
        elif isinstance(event, ir.Start):
            self.id, self.model = event.id, event.model
            if event.usage is not None:
                self._add_usage(event.usage)
        elif isinstance(event, ir.UsageEvent):
            self._add_usage(event.usage)
        elif isinstance(event, ir.Finish):
            self.stop_reason = event.stop_reason
            self.stop_sequence = event.stop_sequence
            if event.usage is not None:
                self._add_usage(event.usage)
        elif isinstance(event, ir.ErrorEvent):
            self.error = event.error

    def feed_all(self, events: Iterable[ir.Event]) -> None:
        for event in events:
            self.feed(event)

    def _add_usage(self, usage: ir.Usage) -> None:
        self.usage = usage if self.usage is None else self.usage.merged(usage)

    def part(self, index: int) -> ir.TextPart | ir.ThinkingPart | ir.ToolCallPart | None:
        """Part ``index`` with the text received so far."""
        part = self.parts.get(index)
        if part is None:
            return None
        pieces = self._pieces[index]
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        text = pieces[0]
        if isinstance(part, ir.ToolCallPart):
            part.arguments = text
        else:
            part.text = text
        signatures = self._signatures.get(index)
        if signatures and isinstance(part, ir.ThinkingPart):
            part.signature = (part.signature or "") + "".join(signatures)
            signatures.clear()
        return part

    def response(self) -> ir.Response:
        parts = [self.part(i) for i in sorted(self.parts)]
        return ir.Response(
            id=self.id,
            model=self.model,
            parts=[p for p in parts if p is not None],
            stop_reason=self.stop_reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage,
        )


def _copy_part(part: ir.TextPart | ir.ThinkingPart | ir.ToolCallPart) -> ir.TextPart | ir.ThinkingPart | ir.ToolCallPart:
    if isinstance(part, ir.TextPart):
        return ir.TextPart(text=part.text, extra=part.extra)
    if isinstance(part, ir.ThinkingPart):
        return ir.ThinkingPart(text=part.text, signature=part.signature, redacted=part.redacted,
                               encrypted=part.encrypted, extra=part.extra)
    return ir.ToolCallPart(id=part.id, name=part.name, arguments=part.arguments, extra=part.extra)


def events_for(response: ir.Response) -> Iterator[ir.Event]:
    """The event sequence a stream of ``response`` would have produced."""
    yield ir.Start(id=response.id, model=response.model)
    index = 0
    for part in response.parts:
        if isinstance(part, ir.TextPart):
            yield ir.PartStart(index, ir.TextPart(text="", extra=part.extra))
            if part.text:
                yield ir.PartDelta(index, text=part.text)
        elif isinstance(part, ir.ThinkingPart):
            yield ir.PartStart(index, ir.ThinkingPart(redacted=part.redacted, encrypted=part.encrypted,
                                                      extra=part.extra))
            if part.text:
                yield ir.PartDelta(index, text=part.text)
            if part.signature:
                yield ir.PartDelta(index, signature=part.signature)
        elif isinstance(part, ir.ToolCallPart):
            yield ir.PartStart(index, ir.ToolCallPart(id=part.id, name=part.name, extra=part.extra))
            if part.arguments:
                yield ir.PartDelta(index, text=part.arguments)
        else:
            continue
        yield ir.PartStop(index)
        index += 1
    yield ir.Finish(stop_reason=response.stop_reason, usage=response.usage,
                    stop_sequence=response.stop_sequence)
