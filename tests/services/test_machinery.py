"""The generic side-service parts on their own: the queue, inline reasoning,
errors written as text, emulated tool calls (streamed replies held only as
long as needed)."""

from __future__ import annotations

import asyncio

import pytest

from crossroads import ir
from crossroads.assemble import Assembler
from crossroads.services.gate import QUEUE_FULL, QUEUE_TIMEOUT, Gate
from crossroads.services.refine import Quirks, Refiner, ThinkSplitter
from crossroads.services.tools import CallDetector, emulated, parse_calls


def test_the_gate_serves_in_arrival_order_one_at_a_time() -> None:
    async def run() -> list[str]:
        gate = Gate("svc", 1, queue_size=10, wait_timeout=5)
        log: list[str] = []

        async def job(name: str) -> None:
            async with gate.slot():
                log.append(f"start {name}")
                await asyncio.sleep(0.01)
                log.append(f"end {name}")

        tasks = []
        for name in "abcd":
            tasks.append(asyncio.create_task(job(name)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert gate.active == 0 and gate.waiting == 0
        return log

    assert asyncio.run(run()) == [f"{step} {n}" for n in "abcd" for step in ("start", "end")]


def test_the_gate_refuses_when_full_and_gives_up_after_its_timeout() -> None:
    async def run() -> None:
        gate = Gate("svc", 1, queue_size=1, wait_timeout=0.05)
        hold = asyncio.Event()

        async def holder() -> None:
            async with gate.slot():
                await hold.wait()

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(holder())
        await asyncio.sleep(0)
        with pytest.raises(ir.Error) as full:
            async with gate.slot():
                pass
        assert full.value.status == 429 and full.value.code == QUEUE_FULL
        with pytest.raises(ir.Error) as late:
            await waiter
        assert late.value.status == 503 and late.value.code == QUEUE_TIMEOUT
        hold.set()
        await first
        assert gate.active == 0 and gate.waiting == 0
        async with gate.slot():  # a cancelled wait leaves nothing behind
            assert gate.active == 1

    asyncio.run(run())


@pytest.mark.parametrize("pieces", [["<think>plan</think>answer"], ["<thi", "nk>pl", "an</th", "ink>ans", "wer"],
                                    ["<think>", "plan", "</think>", "answer"]])
def test_inline_thinking_is_split_whatever_the_chunking(pieces: list[str]) -> None:
    splitter = ThinkSplitter()
    out = [piece for chunk in pieces for piece in splitter.feed(chunk)] + splitter.flush()
    merged: dict[str, str] = {}
    for kind, text in out:
        merged[kind] = merged.get(kind, "") + text
    assert merged == {"thinking": "plan", "text": "answer"}


def replay(refiner: Refiner, texts: list[str], usage: ir.Usage | None = None) -> list[ir.Event]:
    events: list[ir.Event] = [ir.Start("r1", "m", usage), ir.PartStart(0, ir.TextPart(""))]
    events += [ir.PartDelta(0, t) for t in texts]
    events += [ir.PartStop(0), ir.Finish("end_turn", usage)]
    return [out for event in events for out in refiner.feed(event)]


def test_the_refiner_turns_think_tags_into_reasoning_and_zero_usage_into_unknown() -> None:
    refiner = Refiner(Quirks(think_tags=True, usage_known=False))
    events = replay(refiner, ["<think>", "because", "</think>", "Hi"], ir.Usage(0, 0))
    assembler = Assembler()
    assembler.feed_all(events)
    reply = assembler.response()
    assert [type(p).__name__ for p in reply.parts] == ["ThinkingPart", "TextPart"]
    assert reply.parts[0].text == "because" and reply.parts[1].text == "Hi"  # type: ignore[union-attr]
    assert reply.usage is None


def test_an_error_written_as_the_answer_becomes_an_error_but_a_mention_does_not() -> None:
    failed = replay(Refiner(Quirks(error_prefixes=("Error:",), label="svc")), ["Error: token expired"])
    assert isinstance(failed[-1], ir.ErrorEvent) and "svc answered with an error: Error: token expired" in \
        failed[-1].error.message
    assert not any(isinstance(e, ir.PartStart) for e in failed)  # nothing reached the client: it can fail over
    fine = replay(Refiner(Quirks(error_prefixes=("Error:",))), ["Error: is a word. ", "See?"])
    assert not any(isinstance(e, ir.ErrorEvent) for e in fine)


def test_an_emulated_call_is_read_from_the_reply_and_text_before_it_passes_at_once() -> None:
    detector = CallDetector({"get_weather"})
    assert detector.feed("Let me check. <tool") == "Let me check. "
    assert detector.feed('_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}') == ""
    assert detector.feed("</tool_call>") == ""
    assert detector.finish() == ("", [("get_weather", '{"city":"Oslo"}')])
    plain = CallDetector({"get_weather"})
    assert plain.feed("Sunny <b>today</b>") == "Sunny <b>today</b>"
    assert plain.finish() == ("", [])


@pytest.mark.parametrize(("reply", "calls"), [
    ('{"name": "get_weather", "arguments": {"city": "Rome"}}', [("get_weather", '{"city":"Rome"}')]),
    ('```json\n{"name": "get_weather", "arguments": {}}\n```', [("get_weather", "{}")]),
    ('<tool_call>{"name": "unknown_tool", "arguments": {}}</tool_call>', []),
    ('<tool_call>{"name": "get_weather", "arguments": "oops"}</tool_call>', []),
    ('{"answer": 42}', []),
])
def test_parsing_accepts_only_calls_of_offered_tools(reply: str, calls: list[tuple[str, str]]) -> None:
    assert parse_calls(reply, {"get_weather"}) == calls


def test_an_emulated_request_describes_the_tools_and_writes_the_history_as_text() -> None:
    request = ir.Request(model="m", tools=[ir.Tool("get_weather", "Weather", {"type": "object"})],
                         tool_choice=ir.ToolChoice("required"), messages=[
        ir.Message("user", [ir.TextPart("CALL_TOOL")]),
        ir.Message("assistant", [ir.ToolCallPart("c1", "get_weather", '{"city": "Oslo"}')]),
        ir.Message("user", [ir.ToolResultPart("c1", [ir.TextPart("snow")], name="get_weather")])])
    out = emulated(request)
    assert out.tools == [] and out.tool_choice is None
    prompt = out.system[-1].text
    assert "get_weather: Weather" in prompt and "You must call at least one tool" in prompt
    assert out.messages[1].parts == [ir.TextPart('<tool_call>{"name": "get_weather", "arguments": {"city": '
                                                 '"Oslo"}}</tool_call>')]
    assert out.messages[2].parts == [ir.TextPart('<tool_result name="get_weather" id="c1">snow</tool_result>')]
