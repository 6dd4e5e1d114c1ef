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


# Reads holding several events, some of unusual shape: a read is parsed in one scan only
# when every event in it has the usual shape, so each of these must come out whole.
SEVERAL = [
    (b"event: a\nid: 1\ndata: x\n\nevent: b\ndata: y\n\n", [("a", b"x"), ("b", b"y")]),
    (b'data: {"t":"data: z"}\n\nevent: c\ndata: 1\n\n', [(None, b'{"t":"data: z"}'), ("c", b"1")]),
    (b'data: {"t":"event: q"}\n\ndata: 2\n\n', [(None, b'{"t":"event: q"}'), (None, b"2")]),
    (b"xdata: 1\n\ndata: 2\n\n", [(None, b"2")]),
    (b"event:\ndata: 1\n\ndata: 2\n\n", [("", b"1"), (None, b"2")]),
    (b"event: a\nevent: b\ndata: 1\n\ndata: 2\n\n", [("b", b"1"), (None, b"2")]),
    (b"event:  spaced \ndata:x\n\ndata: 2\n\n", [("spaced", b"x"), (None, b"2")]),
    (b"data: 1\n\ndata: 2\ndata: 3\n\n", [(None, b"1"), (None, b"2\n3")]),
    (b"event: a\ndata: 1\n\nevent: a\ndata: 2\n\n: keep-alive\n\nevent: b\ndata:\n\n",
     [("a", b"1"), ("a", b"2"), ("b", b"")]),
    (b"data: 1\n\nid: 9\ndata: 2\n\nevent: e\ndata: 3\nretry: 5\n\n", [(None, b"1"), (None, b"2"), ("e", b"3")]),
]


@pytest.mark.parametrize(("stream", "expected"), SEVERAL)
def test_a_read_of_several_events_of_any_shape(stream: bytes, expected: list[tuple[str | None, bytes]]) -> None:
    assert parse([stream]) == expected
    assert parse([stream.replace(b"\n", b"\r\n")]) == expected
    for cut in range(1, len(stream)):
        assert parse([stream[:cut], stream[cut:]]) == expected, cut
