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
from crossroads.dialects.gemini import GeminiStreamDecoder, GeminiStreamEncoder

NAME = "cloudcode"


def unwrap(body: Any) -> Any:
    """The Gemini object inside a Cloud Code envelope (the object itself when unwrapped)."""
    if isinstance(body, dict):
        inner = body.get("response")
        if isinstance(inner, dict):
            return inner
    return body


class CloudCodeStreamDecoder:
    def __init__(self) -> None:
        self._inner = GeminiStreamDecoder()

    def feed(self, event: str | None, data: str) -> list[ir.Event]:
        if '"response"' not in data[:32]:
            return self._inner.feed(event, data)  # errors and bare chunks
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._inner.feed(event, data)
        return self._inner.feed(event, orjson.dumps(unwrap(chunk)).decode())

    def close(self) -> list[ir.Event]:
        return self._inner.close()


class CloudCodeStreamEncoder:
    """For clients of the internal API: each Gemini SSE frame re-wrapped."""

    def __init__(self, *, model: str, request: ir.Request | None = None) -> None:
        self._inner = GeminiStreamEncoder(model=model, request=request, sse=True)

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


class CloudCodeDialect:
    stream_terminators: tuple[bytes, ...] = (b"finishReason", b"finish_reason")
    needs_inline_images = True
    name = NAME

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        inner = body.get("request")
        if not isinstance(inner, dict):
            raise ir.bad_request("request: the Cloud Code envelope needs a 'request' object", "request")
        model_name = model or body.get("model")
        return GEMINI.parse_request(inner, model=model_name if isinstance(model_name, str) else None,
                                    stream=stream)

    def render_request(self, request: ir.Request) -> dict[str, Any]:
        return {"model": request.model, "request": GEMINI.render_request(request)}

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return GEMINI.parse_response(unwrap(body))

    def render_response(self, response: ir.Response) -> dict[str, Any]:
        return {"response": GEMINI.render_response(response)}

    def stream_decoder(self) -> CloudCodeStreamDecoder:
        return CloudCodeStreamDecoder()

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> CloudCodeStreamEncoder:
        return CloudCodeStreamEncoder(model=model, request=request)

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        return GEMINI.parse_error(status, body)

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]:
        return GEMINI.render_error(error)


DIALECT = CloudCodeDialect()
