"""The IR's own helpers."""

from __future__ import annotations

import dataclasses

from crossroads import ir


def test_a_request_copy_is_what_dataclasses_replace_makes_and_stands_apart_at_the_top() -> None:
    original = ir.Request(model="m", messages=[ir.Message("user", [ir.TextPart("hi")])], max_tokens=7,
                          temperature=0.5, stop=["x"], reasoning=ir.Reasoning(effort="high"),
                          include_usage=False, extra={"openai-chat": {"k": 1}})
    copy = original.copy()
    assert copy == dataclasses.replace(original)
    assert [getattr(copy, f.name) for f in dataclasses.fields(ir.Request)] == \
        [getattr(original, f.name) for f in dataclasses.fields(ir.Request)]
    copy.model, copy.stream, copy.reasoning = "other", True, None
    assert (original.model, original.stream, original.reasoning) == ("m", False, ir.Reasoning(effort="high"))
