"""The pieces of stream resume: what the client has been sent, the
continuation request, and how a continuation's events join the client's
stream (the end-to-end proof is tests/routing/test_stream_resume.py)."""

from __future__ import annotations

from crossroads import ir
from crossroads.resume import CONTINUE, Seam, Transcript, continuation


def sent(*events: ir.Event) -> Transcript:
    transcript = Transcript()
    transcript.see(list(events))
    return transcript


def test_the_transcript_keeps_the_text_and_refuses_tool_calls_and_signed_reasoning() -> None:
    transcript = sent(ir.Start("m1", "m"), ir.PartStart(0, ir.ThinkingPart()), ir.PartDelta(0, "hmm"),
                      ir.PartStop(0), ir.PartStart(1, ir.TextPart("")), ir.PartDelta(1, "Hello, "),
                      ir.PartDelta(1, "wor"))
    assert transcript.text == "Hello, wor" and transcript.open_text == 1 and transcript.next_index == 2
    assert transcript.resumable
    transcript.see([ir.PartStop(1), ir.PartStart(2, ir.ToolCallPart("call_1", "get_weather"))])
    assert not transcript.resumable and "tool call" in (transcript.refusal or "")
    signed = sent(ir.PartStart(0, ir.ThinkingPart()), ir.PartDelta(0, "x"), ir.PartDelta(0, "", signature="sig"))
    assert not signed.resumable and "signature" in (signed.refusal or "")
    assert not sent(ir.PartStart(0, ir.ThinkingPart(encrypted="opaque"))).resumable


def test_the_continuation_request_prefills_or_asks_to_continue() -> None:
    request = ir.Request("m", [ir.Message("user", [ir.TextPart("tell me")])], reasoning=ir.Reasoning(effort="high"))
    prefilled, overlap = continuation(request, "Hello, world \n", prefill=True)
    assert [m.role for m in prefilled.messages] == ["user", "assistant"]
    assert prefilled.messages[-1].parts == [ir.TextPart("Hello, world")] and overlap == " \n"
    assert prefilled.reasoning is None and request.messages[-1].role == "user"  # the original is untouched
    asked, overlap = continuation(request, "Hello, world ", prefill=False)
    assert [m.role for m in asked.messages] == ["user", "assistant", "user"] and overlap == ""
    assert asked.messages[1].parts == [ir.TextPart("Hello, world ")]
    assert asked.messages[2].parts == [ir.TextPart(CONTINUE)]
    assert continuation(request, "", prefill=True) == (request, "")


def test_the_seam_joins_the_open_text_and_numbers_later_parts_after_the_clients() -> None:
    transcript = sent(ir.Start("m1", "m"), ir.PartStart(0, ir.ThinkingPart()), ir.PartStop(0),
                      ir.PartStart(1, ir.TextPart("")), ir.PartDelta(1, "Hello, "))
    seam = Seam(transcript, overlap=" ")
    out = seam.map([ir.Start("m2", "m", ir.Usage(input_tokens=9)), ir.PartStart(0, ir.ThinkingPart()),
                    ir.PartDelta(0, "again"), ir.PartStop(0), ir.PartStart(1, ir.TextPart("")),
                    ir.PartDelta(1, " "), ir.PartDelta(1, "world"), ir.PartStop(1),
                    ir.PartStart(2, ir.ToolCallPart("call_1", "f")), ir.PartDelta(2, "{}"), ir.PartStop(2),
                    ir.Finish("tool_use")])
    assert out == [ir.UsageEvent(ir.Usage(input_tokens=9)), ir.PartDelta(1, "world"), ir.PartStop(1),
                   ir.PartStart(2, ir.ToolCallPart("call_1", "f")), ir.PartDelta(2, "{}"), ir.PartStop(2),
                   ir.Finish("tool_use")]


def test_the_seam_opens_a_new_part_when_the_clients_text_was_closed() -> None:
    transcript = sent(ir.PartStart(0, ir.TextPart("")), ir.PartDelta(0, "All of it."), ir.PartStop(0))
    out = Seam(transcript, overlap="").map([ir.PartStart(0, ir.TextPart("")), ir.PartDelta(0, "More."),
                                            ir.PartStop(0)])
    assert out == [ir.PartStart(1, ir.TextPart("")), ir.PartDelta(1, "More."), ir.PartStop(1)]


def test_a_fresh_answer_keeps_its_reasoning_when_the_client_has_seen_no_part() -> None:
    out = Seam(sent(ir.Start("m1", "m")), overlap="").map([ir.PartStart(0, ir.ThinkingPart()),
                                                          ir.PartDelta(0, "think"), ir.PartStop(0)])
    assert out == [ir.PartStart(0, ir.ThinkingPart()), ir.PartDelta(0, "think"), ir.PartStop(0)]
