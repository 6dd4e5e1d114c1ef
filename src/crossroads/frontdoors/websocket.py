"""WebSocket front doors: the Responses API over WebSocket, which Codex tries first.

Protocol (as Codex speaks it): the upgrade is ``GET /v1/responses`` (or
``/backend-api/codex/responses``) with the usual auth header and
``openai-beta: responses_websockets=...``. Each request is one text frame
``{"type": "response.create", ...a Responses body...}``; the server answers with
the same events the SSE stream carries, one JSON text frame each, ending at
``response.completed`` (or ``response.failed``/``response.incomplete``). The
socket stays open for the next request. A failure before the stream starts is
a frame ``{"type": "error", "status": N, "error": {...}}``.

The real service keeps the last response of a socket, so a client may send only
the new items plus ``previous_response_id``. Upstreams here are stateless, so
this door remembers the last request's input and the response's output items
and expands such a request into the full conversation.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from crossroads import dialects, ir, requestid
from crossroads.frontdoors import shapes
from crossroads.http import Receive, Request, Scope, Send, StreamReply
from crossroads.pipeline import Inbound, client_data
from crossroads.record import RequestRecord

if TYPE_CHECKING:
    from crossroads.server import App

log = logging.getLogger("crossroads.websocket")

PATHS = frozenset({"/v1/responses", "/responses", "/backend-api/codex/responses"})
DIALECT = "openai-responses"
TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
NOTED_EVENTS = TERMINAL_EVENTS | {"response.created", "response.in_progress"}
WS_ONLY_FIELDS = ("type", "generate")  # fields of the frame that are not Responses body fields


class ClientGone(Exception):
    """The client closed the socket while a response was streaming."""


@dataclass(slots=True)
class Conversation:
    """What the socket remembers of its last response (see module docstring).
    The output items stay the raw event bytes until a request refers to them."""

    response_id: str | None = None
    last_input: list[Any] = field(default_factory=list)
    last_output: SseToFrames | None = None

    @property
    def items(self) -> list[Any]:
        """The last input followed by its output."""
        output = self.last_output.output() if self.last_output is not None else []
        return [*self.last_input, *output]

    def remember(self, response_id: str, input_items: list[Any], output: SseToFrames | None) -> None:
        self.response_id, self.last_input, self.last_output = response_id, input_items, output

    def expand(self, body: dict[str, Any]) -> dict[str, Any]:
        previous = body.get("previous_response_id")
        if not previous or previous != self.response_id:
            return body  # unknown ids go upstream unchanged (a stateful upstream may know them)
        expanded = {k: v for k, v in body.items() if k != "previous_response_id"}
        new_items = body.get("input") or []
        if isinstance(new_items, str):
            new_items = [{"type": "message", "role": "user", "content": new_items}]
        expanded["input"] = [*self.items, *new_items]
        return expanded


_RESPONSE_ID = re.compile(rb'"response":\{"id":"([^"\\]+)"')


class SseToFrames:
    """Splits the pipeline's SSE bytes into event payloads (one frame each).
    Nothing is parsed on the way: the response id is read from the first
    event's bytes, and the output items are kept as bytes until
    :meth:`output` is asked for them."""

    def __init__(self) -> None:
        self._buffer = b""
        self.response_id: str | None = None
        self.finished = False
        self._items_done: list[bytes] = []
        self._terminal = b""

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        frames: list[str] = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                return frames
            block, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            payload = self._payload(block)
            if payload is not None:
                frames.append(payload)

    def output(self) -> list[Any]:
        """The response's output items (parsed now, once)."""
        items: Any = [_loads(raw).get("item") for raw in self._items_done]
        if not items and self._terminal:
            response = _loads(self._terminal).get("response")
            items = response.get("output") if isinstance(response, dict) else None
        return [item for item in items or () if isinstance(item, dict)]

    def _payload(self, block: bytes) -> str | None:
        name: str | None = None
        data: list[bytes] = []
        for line in block.replace(b"\r\n", b"\n").split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip())
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if not data or data == [b"[DONE]"]:
            return None
        raw = b"\n".join(data)
        if name is None:
            name = _event_type(raw)
        if name == "response.output_item.done":
            self._items_done.append(raw)
        elif name in TERMINAL_EVENTS:
            self.finished, self._terminal = True, raw
        if self.response_id is None and name in NOTED_EVENTS:
            self.response_id = _response_id(raw)
        return raw.decode()


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _event_type(raw: bytes) -> str | None:
    """An event without an ``event:`` line: its type, read from the bytes."""
    match = re.match(rb'\{"type":"([^"]+)"', raw)
    if match is not None:
        return match.group(1).decode()
    kind = _loads(raw).get("type")
    return kind if isinstance(kind, str) else None


def _response_id(raw: bytes) -> str | None:
    match = _RESPONSE_ID.search(raw)
    if match is not None:
        return match.group(1).decode()
    response = _loads(raw).get("response")
    response_id = response.get("id") if isinstance(response, dict) else None
    return response_id if isinstance(response_id, str) else None


async def serve(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    path = scope.get("path", "").rstrip("/") or "/"
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    client = scope.get("client")
    request = Request("GET", path, scope.get("query_string", b""), headers,
                      client_host=client[0] if client else None)
    if path not in PATHS:
        await send({"type": "websocket.close", "code": 1008, "reason": f"no WebSocket endpoint at {path}"})
        return
    try:
        app.check_client_key(request)
    except ir.Error as refused:
        # closing before accepting makes the server answer the upgrade with 403
        await send({"type": "websocket.close", "code": 1008, "reason": refused.message[:120]})
        return
    client_key = request.client_key
    await send({"type": "websocket.accept"})
    conversation = Conversation()
    with contextlib.suppress(ClientGone):
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                await _send_error(send, ir.bad_request("binary frames are not supported; send JSON text frames"))
                continue
            limit = app.config.max_body_bytes
            if len(text) > limit:
                await _send_error(send, ir.Error(413, "request_too_large",
                                                 f"frame too large (the limit is {limit} bytes)"))
                continue
            await _handle_frame(app, send, headers, client_key, conversation, text)


async def _handle_frame(app: App, send: Send, headers: dict[str, str], client_key: str | None,
                        conversation: Conversation, text: str) -> None:
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        await _send_error(send, ir.bad_request(f"frame is not valid JSON: {exc}"))
        return
    if not isinstance(frame, dict):
        await _send_error(send, ir.bad_request("frame must be a JSON object"))
        return
    kind = frame.get("type")
    if kind == "response.processed":
        return  # an acknowledgement; nothing to answer
    if kind != "response.create":
        await _send_error(send, ir.bad_request(f"unsupported frame type {kind!r}; expected 'response.create'",
                                               param="type"))
        return
    if frame.get("generate") is False:
        await _prewarm(send, frame, conversation)
        return
    body = conversation.expand({k: v for k, v in frame.items() if k not in WS_ONLY_FIELDS})
    body["stream"] = True
    record = app.runtime.observer.begin("WEBSOCKET", "/v1/responses", None)
    try:
        await _respond(app, send, headers, client_key, conversation, body, record)
    finally:
        app.runtime.observer.finish(record, client_key)


async def _respond(app: App, send: Send, headers: dict[str, str], client_key: str | None,
                   conversation: Conversation, body: dict[str, Any], record: RequestRecord) -> None:
    record.status = 200
    try:
        shapes.OPENAI_RESPONSES.check(body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ir.bad_request("'model' is required and must be a non-empty string", param="model")
        with client_data:
            raw = orjson.dumps(body)
        inbound = Inbound(dialects.get(DIALECT), body, raw, model, True, headers, client_key=client_key,
                          record=record)
        reply = await app.pipeline.handle(inbound)
    except ir.Error as error:
        record.status, record.error = error.status, error
        await _send_error(send, error, record.request_id)
        return
    except Exception:
        log.exception("unhandled error on a Responses WebSocket request")
        record.error = ir.Error(500, "server_error", "internal error in crossroads; see server log")
        record.status = 500
        await _send_error(send, record.error, record.request_id)
        return
    if not isinstance(reply, StreamReply):  # a whole reply: one completed event
        await _send_text(send, orjson.dumps({"type": "response.completed", "response": orjson.loads(reply.body)})
                         .decode())
        return
    splitter = SseToFrames()
    chunks = reply.chunks
    try:
        async for chunk in chunks:
            for payload in splitter.feed(chunk):
                await _send_text(send, payload)
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    if splitter.finished and splitter.response_id:
        conversation.remember(splitter.response_id, _as_list(body.get("input")), splitter)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return []


async def _prewarm(send: Send, frame: dict[str, Any], conversation: Conversation) -> None:
    """``generate: false`` warms the connection up: answer with an empty response."""
    response_id = f"resp_ws{time.time_ns():x}"
    response: dict[str, Any] = {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "completed",
                "model": frame.get("model"), "output": [], "error": None, "incomplete_details": None,
                "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}
    for number, kind in enumerate(("response.created", "response.completed")):
        status = "in_progress" if kind == "response.created" else "completed"
        await _send_text(send, orjson.dumps({"type": kind, "sequence_number": number,
                                             "response": {**response, "status": status}}).decode())
    conversation.remember(response_id, _as_list(frame.get("input")), None)


async def _send_error(send: Send, error: ir.Error, request_id: str | None = None) -> None:
    status, payload = dialects.get(DIALECT).render_error(error)
    if request_id is not None:
        payload = requestid.stamp(payload, request_id)
    event: dict[str, Any] = {"type": "error", "status": status, **payload}
    if error.retry_after is not None:
        event["headers"] = {"retry-after": str(max(1, round(error.retry_after)))}
    await _send_text(send, orjson.dumps(event).decode())


async def _send_text(send: Send, text: str) -> None:
    try:
        await send({"type": "websocket.send", "text": text})
    except Exception as exc:  # the server raises its own error type once the client is gone
        raise ClientGone() from exc
