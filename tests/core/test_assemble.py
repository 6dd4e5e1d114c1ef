"""The assembler folds streams in linear time (a long answer arrives as tens of
thousands of deltas; appending to one string each time was quadratic)."""

from __future__ import annotations

import time

from crossroads import ir
from crossroads.assemble import Assembler, events_for


def _fold(deltas: int) -> float:
    events: list[ir.Event] = [ir.Start("r", "m"), ir.PartStart(0, ir.TextPart("")),
                              ir.PartStart(1, ir.ToolCallPart("c", "f"))]
    events += [ir.PartDelta(i % 2, text="token ") for i in range(deltas)]
    events += [ir.PartStop(0), ir.PartStop(1), ir.Finish("end_turn")]
    best = float("inf")
    for _ in range(3):
        assembler = Assembler()
        started = time.perf_counter()
        assembler.feed_all(events)
        response = assembler.response()
        best = min(best, time.perf_counter() - started)
    assert len(response.parts[0].text) + len(response.parts[1].arguments) == deltas * 6  # type: ignore[union-attr]
    return best


def test_folding_is_linear() -> None:
    small, large = _fold(10_000), _fold(100_000)
    # linear: about 10x; quadratic string building: about 100x. A generous bound either way.
    assert large / small < 40, (small, large)


def test_parts_read_mid_stream_and_at_the_end_agree() -> None:
    assembler = Assembler()
    assembler.feed_all([ir.Start("r", "m"), ir.PartStart(0, ir.ThinkingPart("a")), ir.PartDelta(0, text="b"),
                        ir.PartDelta(0, signature="s1")])
    middle = assembler.part(0)
    assert isinstance(middle, ir.ThinkingPart) and (middle.text, middle.signature) == ("ab", "s1")
    assembler.feed_all([ir.PartDelta(0, text="c", signature="s2"), ir.PartStop(0), ir.Finish("end_turn")])
    response = assembler.response()
    assert [(p.text, p.signature) for p in response.parts] == [("abc", "s1s2")]  # type: ignore[union-attr]
    again = Assembler()
    again.feed_all(events_for(response))
    assert again.response().parts == response.parts
