"""The Dialect interface: one implementation per wire format.

A dialect knows four things: requests, full responses, stream events and
errors, each in both directions (wire <-> IR). Stream codecs are small stateful
objects, one per stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from crossroads import ir


class StreamDecoder(Protocol):
    """Upstream SSE events (already split into event name + data) -> IR events."""

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]: ...

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
    """What the rest of the router uses; every dialect implements it through
    :class:`crossroads.dialects.kit.adapter.DialectBase`, which documents the hooks."""

    name: str
    stream_terminators: tuple[bytes, ...]
    needs_inline_images: bool
    model_in_url: bool
    stream_content_type: bytes
    path_markers: tuple[str, ...]

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        """Raise ir.Error (400) with a clear message on malformed input.
        ``model``/``stream`` come from the URL for dialects that put them there."""
        ...

    def render_request(self, request: ir.Request) -> dict[str, Any]: ...

    def parse_response(self, body: dict[str, Any]) -> ir.Response: ...

    def render_response(self, response: ir.Response) -> dict[str, Any]: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def stream_encoder(self, *, model: str, request: ir.Request | None = None) -> StreamEncoder: ...

    def parse_error(self, status: int, body: bytes) -> ir.Error: ...

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]: ...

    def usage_of(self, payload: dict[str, Any]) -> ir.Usage | None: ...

    def passthrough_edits(self, body: dict[str, Any], model: str | None, stream: bool) -> tuple[bool, bool]: ...

    def hides_usage_chunk(self, payload: dict[str, Any]) -> bool: ...

    def passthrough_framer(self) -> Framer | None: ...

    def identifies(self, headers: Mapping[str, str]) -> bool: ...


class Framer(Protocol):
    """Upstream SSE bytes in, the client's framing out (e.g. Gemini's JSON array)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...
