"""Usage read from pass-through streams: only the events that carry it are
parsed, whatever the chunking, and usage-only chunks the router asked for
are hidden from clients that did not."""

from __future__ import annotations

import pytest

from crossroads import dialects
from crossroads.usage import StreamUsage

CONTENT = [b'data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n' for _ in range(5)]
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\n'
DONE = b"data: [DONE]\n\n"
ANTHROPIC = [b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":7,'
             b'"output_tokens":1}}}\n\n',
             b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n',
             b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\n\n',
             b'event: message_stop\ndata: {"type":"message_stop"}\n\n']


def _run(dialect: str, whole: bytes, size: int, drop: bool) -> tuple[bytes, StreamUsage]:
    meter = StreamUsage(dialects.get(dialect), drop)
    out = b"".join(meter.feed(whole[i:i + size]) for i in range(0, len(whole), size)) + meter.flush()
    return out, meter


@pytest.mark.parametrize("size", [1, 7, 50, 10_000])
@pytest.mark.parametrize("drop", [False, True])
def test_openai_usage_is_read_and_its_chunk_hidden_when_asked(size: int, drop: bool) -> None:
    whole = b"".join([*CONTENT, USAGE, DONE])
    out, meter = _run("openai-chat", whole, size, drop)
    assert out == (b"".join([*CONTENT, DONE]) if drop else whole)
    assert meter.usage is not None and (meter.usage.input_tokens, meter.usage.output_tokens) == (3, 5)


@pytest.mark.parametrize("size", [1, 13, 10_000])
def test_anthropic_usage_from_two_events_is_merged(size: int) -> None:
    whole = b"".join(ANTHROPIC)
    out, meter = _run("anthropic", whole, size, False)
    assert out == whole
    assert meter.usage is not None and (meter.usage.input_tokens, meter.usage.output_tokens) == (7, 9)
