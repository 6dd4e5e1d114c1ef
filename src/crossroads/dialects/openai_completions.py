"""OpenAI legacy text completions (``POST /v1/completions``) <-> IR.

Used as a front-door dialect: the prompt becomes one user message and any
chat-capable upstream answers it. Usage, finish reasons, errors and the SSE
error frame are the chat dialect's (same API family).

Unsupported on purpose, answered with a 400: several prompts, token-id
prompts, ``suffix`` (insertion) and ``echo``. ``logprobs``, ``best_of`` and
``logit_bias`` are kept in ``extra["openai-completions"]`` (no IR home).
Rendering a multi-turn IR request flattens it into one prompt: system text,
then each message's text, separated by blank lines.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.kit.adapter import DialectBase
from crossroads.dialects.kit.fields import (
    optional_bool,
    optional_int,
    optional_str,
    require_dict,
    require_list,
    require_str,
)
from crossroads.dialects.kit.stream import EncoderBase
from crossroads.dialects.openai_chat.decode import ChatStreamDecoder
from crossroads.dialects.openai_chat.encode import DONE_FRAME
from crossroads.dialects.openai_chat.errors import error_object, parse_error, render_error
from crossroads.dialects.openai_chat.request import (
    parse_include_usage,
    parse_sampling,
    render_stop_and_stream,
)
from crossroads.dialects.openai_chat.response import (
    finish_from_stop,
    parse_usage,
    render_usage,
    stop_reason_from_finish,
)
from crossroads.ids import new_id
from crossroads.sse import frame

NAME = "openai-completions"
FORM = "openai-completions:form"

JSON = dict[str, Any]

_REQUEST_FIELDS = frozenset({
    "model", "prompt", "suffix", "echo", "max_tokens", "temperature", "top_p", "n", "seed", "stop", "stream",
    "stream_options", "user", "presence_penalty", "frequency_penalty",
})
_FINISH_REASONS = frozenset({"stop", "length", "content_filter"})


def _prompt_text(prompt: Any, form: JSON) -> str:
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    items = require_list(prompt, "prompt")
    if not all(isinstance(item, str) for item in items):
        raise ir.bad_request("token-id prompts are not supported; send the prompt as text", "prompt")
    if len(items) > 1:
        raise ir.bad_request("several prompts in one request are not supported; send one prompt per request",
                             "prompt")
    form["prompt_list"] = len(items)
    return str(items[0]) if items else ""


def parse_request(body: JSON, model: str | None = None, stream: bool | None = None) -> ir.Request:
    body = require_dict(body, "body")
    model_name = body.get("model") if body.get("model") is not None else model
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("'model' is required and must be a non-empty string", "model")
    if body.get("suffix") is not None:
        require_str(body["suffix"], "suffix")
        raise ir.bad_request("'suffix' (insertion) is not supported", "suffix")
    if optional_bool(body.get("echo"), "echo"):
        raise ir.bad_request("'echo' is not supported", "echo")
    form: JSON = {}
    text = _prompt_text(body.get("prompt"), form)
    request = ir.Request(model=model_name, messages=[ir.Message("user", [ir.TextPart(text)])])
    request.max_tokens = optional_int(body.get("max_tokens"), "max_tokens")
    parse_sampling(body, request, form)
    request.user = optional_str(body.get("user"), "user")
    wire_stream = optional_bool(body.get("stream"), "stream")
    request.stream = bool(wire_stream) if stream is None else stream
    if wire_stream is False:
        form["stream_false"] = True
    request.include_usage = parse_include_usage(body, form)
    if "echo" in body:
        form["echo"] = body["echo"]
    unknown = {k: v for k, v in body.items() if k not in _REQUEST_FIELDS}
    if unknown:
        request.extra[NAME] = unknown
    request.extra[FORM] = form
    return request


def _flatten(request: ir.Request) -> str:
    texts = [p.text for p in request.system]
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ir.TextPart):
                texts.append(part.text)
            elif isinstance(part, ir.ToolResultPart):
                texts.extend(c.text for c in part.content if isinstance(c, ir.TextPart))
    return "\n\n".join(texts)


def render_request(request: ir.Request) -> JSON:
    form = request.extra.get(FORM)
    form = form if isinstance(form, dict) else {}
    prompt = _flatten(request)
    listed = form.get("prompt_list")
    body: JSON = {"model": request.model, "prompt": prompt if listed is None else [prompt][:listed]}
    for key in ("max_tokens", "temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty",
                "user"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    render_stop_and_stream(request, form, body)
    if "echo" in form:
        body["echo"] = form["echo"]
    for key, value in (request.extra.get(NAME) or {}).items():
        body.setdefault(key, value)
    return body


def finish_reason(stop: ir.StopReason | None) -> str:
    finish = finish_from_stop(stop)
    return finish if finish in _FINISH_REASONS else "stop"


def parse_response(body: JSON) -> ir.Response:
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ir.Error(502, "server_error", "upstream sent an invalid text completion")
    response = ir.Response(id=str(body.get("id") or new_id("cmpl-")), model=str(body.get("model") or ""))
    if isinstance(body.get("created"), int):
        response.created = body["created"]
    first = next((c for c in body["choices"] if isinstance(c, dict) and c.get("index", 0) == 0), None)
    if first is not None:
        text = first.get("text")
        response.parts = [ir.TextPart(text if isinstance(text, str) else "")]
        response.stop_reason = stop_reason_from_finish(first.get("finish_reason"))
        if first.get("logprobs") is not None:
            response.extra[FORM] = {"logprobs": first["logprobs"]}
    response.usage = parse_usage(body.get("usage"))
    fingerprint = body.get("system_fingerprint")
    if fingerprint is not None:
        response.extra[NAME] = {"system_fingerprint": fingerprint}
    return response


def render_response(response: ir.Response) -> JSON:
    text = "".join(p.text for p in response.parts if isinstance(p, ir.TextPart))
    form = response.extra.get(FORM) or {}
    body: JSON = {
        "id": response.id or new_id("cmpl-"),
        "object": "text_completion",
        "created": response.created if response.created is not None else int(time.time()),
        "model": response.model,
        "choices": [{"text": text, "index": 0, "logprobs": form.get("logprobs"),
                     "finish_reason": finish_reason(response.stop_reason)}],
    }
    if response.usage is not None:
        body["usage"] = render_usage(response.usage)
    body.update(response.extra.get(NAME) or {})
    return body


class CompletionStreamDecoder(ChatStreamDecoder):
    """Text-completion chunks carry ``choices[].text`` instead of a delta."""

    __slots__ = ()
    id_prefix = "cmpl-"

    def _choice(self, choice: JSON, events: list[ir.Event]) -> None:
        text = choice.get("text")
        if isinstance(text, str) and text:
            self._text(events, "text", text, None)
        self._finish_choice(choice.get("finish_reason"), events)


class CompletionStreamEncoder(EncoderBase):
    """IR events -> ``text_completion`` SSE chunks. Only text reaches the client:
    a text completion has no place for thinking or tool calls."""

    __slots__ = ("_created", "_head", "_include_usage", "_model", "_text_parts")

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        super().__init__()
        self._model = model
        self._created = int(time.time())
        self._include_usage = bool(request is not None and request.include_usage)
        self._head = b""
        self._text_parts: set[int] = set()

    def on_start(self, event: ir.Start) -> bytes:
        self._begin(event.id)
        return b""

    def on_part_start(self, event: ir.PartStart) -> bytes:
        part = event.part
        if isinstance(part, ir.TextPart):
            self._text_parts.add(event.index)
            return self._choice(part.text, b"null") if part.text else b""
        return b""

    def on_delta(self, event: ir.PartDelta) -> bytes:
        if event.index in self._text_parts and event.text:
            return self._choice(event.text, b"null")
        return b""

    def on_finish(self, event: ir.Finish) -> bytes:
        out = self._choice("", b'"' + finish_reason(event.stop_reason).encode() + b'"')
        if self._include_usage and self.usage is not None:
            out += frame(self._head + b',"choices":[],"usage":' + orjson.dumps(render_usage(self.usage)) + b"}")
        return out

    def on_error(self, error: ir.Error) -> bytes:
        return frame(orjson.dumps({"error": error_object(error)}))

    def on_close(self) -> bytes:
        return b"" if self.failed else DONE_FRAME

    def _begin(self, response_id: str) -> None:
        self._head = (b'{"id":' + orjson.dumps(response_id or new_id("cmpl-"))
                      + b',"object":"text_completion","created":' + str(self._created).encode()
                      + b',"model":' + orjson.dumps(self._model))

    def _choice(self, text: str, finish: bytes) -> bytes:
        if not self._head:
            self._begin("")
        return frame(self._head + b',"choices":[{"text":' + orjson.dumps(text)
                     + b',"index":0,"logprobs":null,"finish_reason":' + finish + b"}]}")


class OpenAICompletionsDialect(DialectBase):
    name = NAME
    stream_terminators = (b"[DONE]",)
    read_request = staticmethod(parse_request)
    write_request = staticmethod(render_request)
    read_response = staticmethod(parse_response)
    write_response = staticmethod(render_response)
    read_error = staticmethod(parse_error)
    write_error = staticmethod(render_error)
    new_decoder = staticmethod(CompletionStreamDecoder)
    new_encoder = staticmethod(CompletionStreamEncoder)

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        return parse_usage(payload.get("usage"))


DIALECT = OpenAICompletionsDialect()
