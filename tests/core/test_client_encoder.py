"""A translated stream answers each upstream read with one write; text
deltas of one part that came in the same read go out as one delta, with
the same text, and nothing else is merged or reordered."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from crossroads import dialects, ir
from crossroads.pipeline.relay import ClientEncoder

READ: list[ir.Event] = [
    ir.Start(id="msg_1", model="m"),
    ir.PartStart(0, ir.TextPart(text="")),
    *[ir.PartDelta(0, text=f"t{n} ") for n in range(5)],
    ir.PartStop(0),
    ir.PartStart(1, ir.ToolCallPart(id="call_1", name="lookup")),
    ir.PartDelta(1, text='{"q":'),
    ir.PartDelta(1, text='"x"}'),
    ir.PartStop(1),
    ir.Finish("tool_use", ir.Usage(3, 7)),
]


def _encoder(dialect: str) -> ClientEncoder:
    inbound: Any = SimpleNamespace(dialect=dialects.get(dialect))
    served: Any = SimpleNamespace(model="m")
    return ClientEncoder(relay=None, inbound=inbound, request=None, served=served)  # type: ignore[arg-type]


def _chat_chunks(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: {")]


def test_one_read_of_text_deltas_is_one_chat_delta_with_all_the_text() -> None:
    merged = _encoder("openai-chat")
    chunks = _chat_chunks(merged.encode(READ) + merged.close())
    one_by_one = _encoder("openai-chat")
    separate = _chat_chunks(b"".join(one_by_one.encode([event]) for event in READ) + one_by_one.close())

    def text(chunks: list[dict[str, Any]]) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

    def arguments(chunks: list[dict[str, Any]]) -> str:
        return "".join(call["function"].get("arguments") or "" for c in chunks if c["choices"]
                       for call in c["choices"][0]["delta"].get("tool_calls") or [])

    assert text(chunks) == text(separate) == "t0 t1 t2 t3 t4 "
    assert arguments(chunks) == arguments(separate) == '{"q":"x"}'
    assert len(chunks) == len(separate) - 5  # five text deltas became one, two argument pieces one
    assert merged.spent == one_by_one.spent == ir.Usage(3, 7)


@pytest.mark.parametrize("dialect", ["anthropic", "openai-responses", "gemini"])
def test_every_client_dialect_gets_the_same_text_from_merged_deltas(dialect: str) -> None:
    merged, one_by_one = _encoder(dialect), _encoder(dialect)
    together = merged.encode(READ) + merged.close()
    apart = b"".join(one_by_one.encode([event]) for event in READ) + one_by_one.close()
    assert b"t0 t1 t2 t3 t4 " in together  # one delta (and, for Responses, its done event)
    assert len(together) < len(apart)
    if dialect != "openai-responses":  # whose done event holds the whole text either way
        assert b"t0 t1 t2 t3 t4 " not in apart
