"""The one adapter every dialect goes through.

A dialect writes its codec as the ``read_*``/``write_*`` hooks of
:class:`DialectBase`; the public methods (the :class:`Dialect` protocol) wrap
them the same way for every dialect:

* a malformed client request (a stray ``KeyError``/``TypeError``/``ValueError``
  while reading or translating it) is a 400 in the caller's dialect;
* a malformed upstream reply or stream event is a 502, never a 500 or a
  traceback (a stream decoder that fails ends its stream with an error event).

It also holds the hooks that let the pipeline, usage accounting and the server
treat dialects alike instead of testing their names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import ir
from crossroads.dialects.base import Framer, StreamDecoder, StreamEncoder
from crossroads.dialects.kit.fields import invalid

JSON = dict[str, Any]

# what a codec raises on input it did not expect (ir.Error is raised on purpose)
FAULTS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError, UnicodeError)


def client_fault(exc: BaseException) -> ir.Error:
    if isinstance(exc, KeyError) and exc.args:
        return ir.bad_request(f"malformed request: missing or invalid field {exc.args[0]!r}", str(exc.args[0]))
    return ir.bad_request(f"malformed request: {type(exc).__name__}: {exc}")


def upstream_fault(detail: str) -> ir.Error:
    return ir.Error(502, "server_error", f"malformed upstream response: {detail}")


class DialectBase:
    """Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]
    # what the end of a complete stream contains (a pass-through stream without it was cut)
    stream_terminators: ClassVar[tuple[bytes, ...]] = ()
    needs_inline_images: ClassVar[bool] = False
    # the model is named in the URL, not the body (Gemini)
    model_in_url: ClassVar[bool] = False
    # how this dialect's streams reach the client
    stream_content_type: bytes = b"text/event-stream"
    # request headers only this dialect's clients send (picks the error shape of shared endpoints)
    identifying_headers: ClassVar[tuple[str, ...]] = ()
    # what only this dialect's endpoint paths contain (picks the error shape of unknown paths)
    path_markers: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ the codec (per dialect)

    def read_request(self, body: JSON, model: str | None, stream: bool | None) -> ir.Request:
        raise NotImplementedError

    def write_request(self, request: ir.Request) -> JSON:
        raise NotImplementedError

    def read_response(self, body: JSON) -> ir.Response:
        raise NotImplementedError

    def write_response(self, response: ir.Response) -> JSON:
        raise NotImplementedError

    def new_decoder(self) -> StreamDecoder:
        raise NotImplementedError

    def new_encoder(self, model: str, request: ir.Request | None) -> StreamEncoder:
        raise NotImplementedError

    def read_error(self, status: int, body: bytes) -> ir.Error:
        raise NotImplementedError

    def write_error(self, error: ir.Error) -> tuple[int, JSON]:
        raise NotImplementedError

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        """Usage in one reply body or stream event of this dialect, if any."""
        return None

    # ------------------------------------------------------------------ the Dialect protocol

    def parse_request(self, body: JSON, *, model: str | None = None, stream: bool | None = None) -> ir.Request:
        if not isinstance(body, dict):
            raise invalid("body", "an object", body)
        try:
            return self.read_request(body, model, stream)
        except ir.Error:
            raise
        except FAULTS as exc:
            raise client_fault(exc) from None

    def render_request(self, request: ir.Request) -> JSON:
        try:
            return self.write_request(request)
        except ir.Error:
            raise
        except FAULTS as exc:  # the request came from the client, in another dialect
            raise ir.bad_request(f"the request cannot be translated: {type(exc).__name__}: {exc}") from None

    def parse_response(self, body: JSON) -> ir.Response:
        if not isinstance(body, dict):
            raise upstream_fault("not a JSON object")
        try:
            return self.read_response(body)
        except ir.Error as exc:
            if exc.status >= 500 or exc.status == 429:
                raise
            raise upstream_fault(exc.message) from None
        except FAULTS as exc:
            raise upstream_fault(f"{type(exc).__name__}: {exc}") from None

    def render_response(self, response: ir.Response) -> JSON:
        try:
            return self.write_response(response)
        except FAULTS as exc:  # the response came from the upstream
            raise upstream_fault(f"{type(exc).__name__}: {exc}") from None

    def stream_decoder(self) -> StreamDecoder:
        return GuardedDecoder(self.new_decoder())

    def stream_encoder(self, *, model: str, request: ir.Request | None = None) -> StreamEncoder:
        return self.new_encoder(model, request)

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        try:
            return self.read_error(status, body)
        except FAULTS:
            text = body[:500].decode("utf-8", "replace").strip()
            return ir.Error(status, ir.kind_for_status(status), text or f"upstream returned HTTP {status}")

    def render_error(self, error: ir.Error) -> tuple[int, JSON]:
        return self.write_error(error)

    # ------------------------------------------------------------------ pass-through hooks

    def passthrough_edits(self, body: JSON, model: str | None, stream: bool) -> tuple[bool, bool]:
        """Edit ``body`` (a shallow copy of the client's) for an upstream of
        this same dialect: ``model`` is the upstream's name for the model
        (None: unchanged). Returns (changed, hide usage-only chunks)."""
        if model is None or self.model_in_url:
            return False, False
        body["model"] = model
        return True, False

    def hides_usage_chunk(self, payload: JSON) -> bool:
        """True for a stream event that only carries usage the router asked for."""
        return False

    def passthrough_framer(self) -> Framer | None:
        """Re-frames an upstream's SSE for this dialect's clients (None: as is)."""
        return None

    def identifies(self, headers: Mapping[str, str]) -> bool:
        return any(h in headers for h in self.identifying_headers)


class GuardedDecoder:
    """A stream decoder that cannot raise: a fault ends the stream with a 502 error event."""

    __slots__ = ("_failed", "_inner")

    def __init__(self, inner: StreamDecoder) -> None:
        self._inner = inner
        self._failed = False

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
        if self._failed:
            return []
        try:
            return self._inner.feed(event, data)
        except FAULTS as exc:
            return self._fail(exc)

    def close(self) -> list[ir.Event]:
        if self._failed:
            return []
        try:
            return self._inner.close()
        except FAULTS as exc:
            return self._fail(exc)

    def _fail(self, exc: BaseException) -> list[ir.Event]:
        self._failed = True
        return [ir.ErrorEvent(ir.Error(502, "server_error",
                                       f"malformed event in upstream stream: {type(exc).__name__}"))]
