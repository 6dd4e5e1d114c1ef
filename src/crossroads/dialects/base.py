"""The Dialect interface: one implementation per wire format.

A dialect knows four things: requests, full responses, stream events and
errors, each in both directions (wire <-> IR). Stream codecs are small stateful
objects, one per stream.
"""

from __future__ import annotations

from typing import Any, Protocol

from crossroads import ir


class StreamDecoder(Protocol):
    """Upstream SSE events (already split into event name + data) -> IR events."""

    def feed(self, event: str | None, data: str) -> list[ir.Event]: ...

    def close(self) -> list[ir.Event]:
        """Called at end of input; returns trailing events (e.g. a Finish or an
        ErrorEvent when the upstream stream was cut before it finished)."""
        ...


class StreamEncoder(Protocol):
    """IR events -> bytes for the client, SSE-framed in the dialect's style."""

    def encode(self, event: ir.Event) -> bytes: ...

    def close(self) -> bytes:
        """Trailer after the last event (e.g. ``data: [DONE]``)."""
        ...


class Dialect(Protocol):
    name: str
    # what the end of a complete stream contains (a pass-through stream ending
    # without it was cut, and the client gets an error event)
    stream_terminators: tuple[bytes, ...]
    # True when remote image URLs must be fetched and sent inline
    needs_inline_images: bool

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        """Raise ir.Error (400) with a clear message on malformed input.
        ``model``/``stream`` come from the URL for dialects that put them there."""
        ...

    def render_request(self, request: ir.Request) -> dict[str, Any]: ...

    def parse_response(self, body: dict[str, Any]) -> ir.Response: ...

    def render_response(self, response: ir.Response) -> dict[str, Any]: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> StreamEncoder:
        """``sse=False`` only matters for Gemini (JSON-array streaming without
        ``alt=sse``); other dialects ignore it."""
        ...

    def parse_error(self, status: int, body: bytes) -> ir.Error: ...

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]: ...
