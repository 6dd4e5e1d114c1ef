"""Cloud Code Assist (``v1internal``): Gemini requests in an envelope.

Gemini CLI and Antigravity subscriptions talk to
``cloudcode-pa.googleapis.com/v1internal:{generateContent,streamGenerateContent}``
with ``{"model", "project", "request": <Gemini request>}`` and get back
``{"response": <Gemini response>, "traceId"}`` (one such object per SSE
event when streaming). This dialect wraps and unwraps around the Gemini
dialect; the project is added per account by the provider.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.gemini import DIALECT as GEMINI
from crossroads.dialects.gemini.decode import GeminiStreamDecoder
from crossroads.dialects.gemini.encode import GeminiStreamEncoder
from crossroads.dialects.kit.adapter import DialectBase

NAME = "cloudcode"

JSON = dict[str, Any]


def unwrap(body: Any) -> Any:
    """The Gemini object inside a Cloud Code envelope (the object itself when unwrapped)."""
    if isinstance(body, dict):
        inner = body.get("response")
        if isinstance(inner, dict):
            return inner
    return body


class CloudCodeStreamDecoder:
    """Each event is parsed once and its envelope taken off."""

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner = GeminiStreamDecoder()

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
        if not data.strip():
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._inner.feed(event, data)  # reports the broken event
        return self._inner.feed_chunk(unwrap(chunk))

    def close(self) -> list[ir.Event]:
        return self._inner.close()


class CloudCodeStreamEncoder:
    """For clients of the internal API: each Gemini SSE frame re-wrapped."""

    __slots__ = ("_inner",)

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        self._inner = GeminiStreamEncoder(model=model, request=request)

    def encode(self, event: ir.Event) -> bytes:
        return _rewrap(self._inner.encode(event))

    def close(self) -> bytes:
        return _rewrap(self._inner.close())


def _rewrap(frames: bytes) -> bytes:
    if not frames:
        return frames
    out = []
    for frame in frames.split(b"\n\n"):
        frame = frame.strip(b"\r\n")
        if not frame.startswith(b"data:"):
            continue
        payload = frame[5:].strip()
        out.append(b"data: " + (b'{"response":' + payload + b"}" if payload.startswith(b"{") else payload)
                   + b"\r\n\r\n")
    return b"".join(out)


class CloudCodeDialect(DialectBase):
    name = NAME
    stream_terminators = (b"finishReason", b"finish_reason")
    needs_inline_images = True

    def read_request(self, body: JSON, model: str | None, stream: bool | None) -> ir.Request:
        inner = body.get("request")
        if not isinstance(inner, dict):
            raise ir.bad_request("request: the Cloud Code envelope needs a 'request' object", "request")
        model_name = model or body.get("model")
        return GEMINI.read_request(inner, model_name if isinstance(model_name, str) else None, stream)

    def write_request(self, request: ir.Request) -> JSON:
        return {"model": request.model, "request": GEMINI.write_request(request)}

    def read_response(self, body: JSON) -> ir.Response:
        return GEMINI.read_response(unwrap(body))

    def write_response(self, response: ir.Response) -> JSON:
        return {"response": GEMINI.write_response(response)}

    def new_decoder(self) -> CloudCodeStreamDecoder:
        return CloudCodeStreamDecoder()

    def new_encoder(self, model: str, request: ir.Request | None) -> CloudCodeStreamEncoder:
        return CloudCodeStreamEncoder(model=model, request=request)

    def read_error(self, status: int, body: bytes) -> ir.Error:
        return GEMINI.read_error(status, body)

    def write_error(self, error: ir.Error) -> tuple[int, JSON]:
        return GEMINI.write_error(error)

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        return GEMINI.usage_of(unwrap(payload))


DIALECT = CloudCodeDialect()
