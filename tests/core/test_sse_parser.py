"""The SSE reader: the same events whatever the network's chunking, with LF or CRLF lines."""

from __future__ import annotations

import pytest

from crossroads.transport import SSEParser

STREAM = (b"event: message_start\ndata: {\"a\":1}\n\n"
          b": a comment\n\n"
          b"data: first line\ndata:second line\nid: 7\nretry: 100\n\n"
          b"event: ping\n\n"  # no data: nothing
          b"data: {\"b\":2}\n\n\n"
          b"event: message_stop\ndata: {\"c\":3}")  # the last event ends with the stream
EXPECTED = [("message_start", b'{"a":1}'), (None, b"first line\nsecond line"), (None, b'{"b":2}'),
            ("message_stop", b'{"c":3}')]


def parse(pieces: list[bytes]) -> list[tuple[str | None, bytes]]:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    return events + parser.close()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_every_split_gives_the_same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert parse([stream]) == EXPECTED
    for cut in range(1, len(stream)):
        assert parse([stream[:cut], stream[cut:]]) == EXPECTED, cut
    assert parse([stream[i:i + 1] for i in range(len(stream))]) == EXPECTED


def test_events_come_as_soon_as_they_are_whole() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n") == []
    assert parser.feed(b"\ndata: 2") == [(None, b"1")]
    assert parser.feed(b"\n\n") == [(None, b"2")]
    assert parser.close() == []
