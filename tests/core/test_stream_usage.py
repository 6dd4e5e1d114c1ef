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


SPACED = [b'data: {"choices":[{"delta":{"content":"a"}}], "usage": null}\r\n\r\n' for _ in range(3)]
SPACED_USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}\r\n\r\n'


@pytest.mark.parametrize("size", [1, 5, 64, 10_000])
@pytest.mark.parametrize("drop", [False, True])
def test_crlf_framing_and_spaced_json_are_read_and_hidden_alike(size: int, drop: bool) -> None:
    whole = b"".join([*SPACED, SPACED_USAGE, b"data: [DONE]\r\n\r\n"])
    out, meter = _run("openai-chat", whole, size, drop)
    assert out == (b"".join([*SPACED, b"data: [DONE]\r\n\r\n"]) if drop else whole)
    assert meter.usage is not None and (meter.usage.input_tokens, meter.usage.output_tokens) == (4, 6)


@pytest.mark.parametrize("size", [3, 10_000])
def test_gemini_usage_metadata_is_read_from_the_last_chunk(size: int) -> None:
    chunks = [b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\n\n',
              b'data: {"candidates":[{"finishReason":"STOP"}],'
              b'"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3}}\n\n']
    out, meter = _run("gemini", b"".join(chunks), size, False)
    assert out == b"".join(chunks)
    assert meter.usage is not None and (meter.usage.input_tokens, meter.usage.output_tokens) == (2, 3)


def test_usage_null_on_every_chunk_is_not_taken_for_usage() -> None:
    out, meter = _run("openai-chat", b"".join([*CONTENT, DONE]), 10_000, True)
    assert out == b"".join([*CONTENT, DONE]) and meter.usage is None
