"""IR events -> OpenAI Responses stream events."""

from __future__ import annotations

import time
from typing import Any

import orjson

from crossroads import ids, ir, sse
from crossroads.assemble import Assembler
from crossroads.dialects.kit.extras import own
from crossroads.dialects.kit.stream import EncoderBase
from crossroads.dialects.openai_responses.errors import failed_error
from crossroads.dialects.openai_responses.parts import synth_id
from crossroads.dialects.openai_responses.request import render_tool, render_tool_choice
from crossroads.dialects.openai_responses.response import render_usage, status_for
from crossroads.dialects.openai_responses.tables import JSON, NAME, OUTPUT_TEXT


class _Item:
    """An output item the encoder has opened for one IR part."""

    __slots__ = ("call_id", "delta_head", "delta_tail", "item_id", "kind", "output_index", "refusal",
                 "summary_open")

    def __init__(self, kind: str, output_index: int, item_id: str) -> None:
        self.kind = kind
        self.output_index = output_index
        self.item_id = item_id
        self.call_id = ""
        self.refusal = False
        self.summary_open = False
        self.delta_head = b""  # the frame of a delta up to its text, made on the first delta
        self.delta_tail = b""

    def delta_frame(self, text: str, sequence_number: int) -> bytes:
        """A delta event for this item, without building its dict (deltas are most of a stream)."""
        if not self.delta_head:
            self._make_delta_frame()
        return (self.delta_head + orjson.dumps(text) + self.delta_tail + str(sequence_number).encode()
                + b"}\n\n")

    def _make_delta_frame(self) -> None:
        if self.kind == "message":
            kind, extra = (("response.refusal.delta", b',"content_index":0') if self.refusal
                           else ("response.output_text.delta", b',"content_index":0'))
            tail = b',"logprobs":[],"sequence_number":' if not self.refusal else b',"sequence_number":'
        elif self.kind == "function_call":
            kind, extra, tail = "response.function_call_arguments.delta", b"", b',"sequence_number":'
        else:
            kind, extra, tail = "response.reasoning_summary_text.delta", b',"summary_index":0', b',"sequence_number":'
        self.delta_head = (b"event: " + kind.encode() + b'\ndata: {"type":"' + kind.encode() + b'","item_id":'
                           + orjson.dumps(self.item_id) + b',"output_index":' + str(self.output_index).encode()
                           + extra + b',"delta":')
        self.delta_tail = tail


class ResponsesStreamEncoder(EncoderBase):
    """IR events -> Responses SSE, in the order the SDK and Codex expect."""

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        super().__init__()
        self._model = model
        self._request = request
        self._id = ""
        self._created = int(time.time())
        self._seq = 0
        self._started = False
        self._assembler = Assembler()  # the output items the final event repeats
        self._items: dict[int, _Item] = {}  # IR index -> open item
        self._skipped: set[int] = set()
        self._output: list[JSON | None] = []  # finished items by output_index
        self._used_ids: set[str] = set()
        self._echo: JSON | None = None

    # ---- framing

    def _frame(self, payload: JSON) -> bytes:
        payload["sequence_number"] = self._seq
        self._seq += 1
        return sse.frame(orjson.dumps(payload), event=payload["type"])

    def _envelope(self, status: str, **fields: Any) -> JSON:
        if self._echo is None:
            self._echo = _request_echo(self._request)
        body: JSON = {"id": self._id, "object": "response", "created_at": self._created, "status": status,
                      "error": None, "incomplete_details": None, "model": self._model, "output": [],
                      "usage": None}
        body.update(self._echo)
        body.update(fields)
        return body

    def _unique(self, wanted: Any, prefix: str) -> str:
        item_id = wanted if isinstance(wanted, str) and wanted and wanted not in self._used_ids else synth_id(prefix)
        self._used_ids.add(item_id)
        return item_id

    # ---- events

    def on_start(self, event: ir.Start) -> bytes:
        self._assembler.feed(event)
        return self._on_start(event.id)

    def on_part_start(self, event: ir.PartStart) -> bytes:
        prefix = self._on_start("")
        self._assembler.feed(event)
        return prefix + self._on_part_start(event)

    def on_delta(self, event: ir.PartDelta) -> bytes:
        self._assembler.feed(event)
        return self._on_delta(event)

    def on_part_stop(self, index: int) -> bytes:
        return self._on_start("") + self._on_part_stop(index)

    def on_usage(self) -> bytes:
        return self._on_start("")  # the usage goes in the final event

    def on_finish(self, event: ir.Finish) -> bytes:
        return self._on_start("") + self._on_finish(event.stop_reason)

    def on_error(self, error: ir.Error) -> bytes:
        return self._on_start("") + self._on_error(error)

    def on_close(self) -> bytes:
        if self.done or not self._started:
            return b""
        self.done = self.failed = True
        return self._on_error(ir.Error(502, "server_error", "upstream stream ended before completion"))

    def _on_start(self, response_id: str) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._id = response_id or ids.new_id("resp_")
        return (self._frame({"type": "response.created", "response": self._envelope("in_progress")})
                + self._frame({"type": "response.in_progress", "response": self._envelope("in_progress")}))

    def _on_part_start(self, event: ir.PartStart) -> bytes:
        part = event.part
        info = own(part.extra, NAME)
        output_index = len(self._output)
        if isinstance(part, ir.TextPart):
            head = info.get("item") if info else None
            item = _Item("message", output_index, self._unique(head.get("id") if head else None, "msg_"))
            shape = info.get("part") if info else None
            item.refusal = isinstance(shape, dict) and shape.get("type") == "refusal"
            wire = {k: v for k, v in head.items() if k not in ("id", "status", "content")} if head else {}
            wire.update(id=item.item_id, type="message", status="in_progress", content=[], role="assistant")
            empty = {"type": "refusal", "refusal": ""} if item.refusal else {**OUTPUT_TEXT, "text": ""}
            frames = (self._frame({"type": "response.output_item.added", "output_index": output_index,
                                   "item": wire})
                      + self._frame({"type": "response.content_part.added", "item_id": item.item_id,
                                     "output_index": output_index, "content_index": 0, "part": empty}))
        elif isinstance(part, ir.ThinkingPart):
            if part.encrypted is None and part.redacted is not None:
                self._skipped.add(event.index)  # Anthropic redacted thinking: nothing to show
                return b""
            item = _Item("reasoning", output_index, self._unique(info.get("id") if info else None, "rs_"))
            frames = self._frame({"type": "response.output_item.added", "output_index": output_index,
                                  "item": {"id": item.item_id, "type": "reasoning", "summary": []}})
        else:
            item = _Item("function_call", output_index, self._unique(info.get("id") if info else None, "fc_"))
            item.call_id = part.id or synth_id("call_")
            wire = {k: v for k, v in info.items() if k not in ("id", "status")} if info else {}
            wire.update(id=item.item_id, type="function_call", status="in_progress", arguments="",
                        call_id=item.call_id, name=part.name)
            frames = self._frame({"type": "response.output_item.added", "output_index": output_index,
                                  "item": wire})
        self._items[event.index] = item
        self._output.append(None)
        return frames

    def _on_delta(self, event: ir.PartDelta) -> bytes:
        item = self._items.get(event.index)
        if item is None or not event.text:
            return b""  # unknown/skipped part, or a thinking signature (no home in this API)
        frames = b""
        if item.kind == "reasoning" and not item.summary_open:
            item.summary_open = True
            frames = self._frame({"type": "response.reasoning_summary_part.added", "item_id": item.item_id,
                                  "output_index": item.output_index, "summary_index": 0,
                                  "part": {"type": "summary_text", "text": ""}})
        self._seq += 1
        return frames + item.delta_frame(event.text, self._seq - 1)

    def _on_part_stop(self, index: int) -> bytes:
        item = self._items.pop(index, None)
        part = self._assembler.part(index)
        if item is None or part is None:
            return b""
        base = {"item_id": item.item_id, "output_index": item.output_index}
        frames = b""
        if isinstance(part, ir.TextPart):
            info = own(part.extra, NAME)
            head = info.get("item") if info else None
            if item.refusal:
                done_part: JSON = {"type": "refusal", "refusal": part.text}
                frames += self._frame({"type": "response.refusal.done", **base, "content_index": 0,
                                       "refusal": part.text})
            else:
                done_part = {**OUTPUT_TEXT, "text": part.text}
                frames += self._frame({"type": "response.output_text.done", **base, "content_index": 0,
                                       "text": part.text, "logprobs": []})
            frames += self._frame({"type": "response.content_part.done", **base, "content_index": 0,
                                   "part": done_part})
            wire = {k: v for k, v in head.items() if k not in ("id", "status", "content")} if head else {}
            wire.update(id=item.item_id, type="message", status="completed", content=[done_part],
                        role="assistant")
        elif isinstance(part, ir.ThinkingPart):
            summary: list[JSON] = []
            if item.summary_open:
                summary = [{"type": "summary_text", "text": part.text}]
                frames += self._frame({"type": "response.reasoning_summary_text.done", **base, "summary_index": 0,
                                       "text": part.text})
                frames += self._frame({"type": "response.reasoning_summary_part.done", **base,
                                       "summary_index": 0, "part": summary[0]})
            wire = {"id": item.item_id, "type": "reasoning", "summary": summary}
            if part.encrypted is not None:
                wire["encrypted_content"] = part.encrypted
        else:
            frames += self._frame({"type": "response.function_call_arguments.done", **base,
                                   "arguments": part.arguments})
            info = own(part.extra, NAME)
            wire = {k: v for k, v in info.items() if k not in ("id", "status")} if info else {}
            wire.update(id=item.item_id, type="function_call", status="completed", arguments=part.arguments,
                        call_id=item.call_id, name=part.name)
        self._output[item.output_index] = wire
        return frames + self._frame({"type": "response.output_item.done", "output_index": item.output_index,
                                     "item": wire})

    def _close_open_items(self) -> bytes:
        return b"".join(self._on_part_stop(index) for index in sorted(self._items))

    def _finished_output(self) -> list[JSON]:
        return [item for item in self._output if item is not None]

    def _on_finish(self, stop: ir.StopReason | None) -> bytes:
        frames = self._close_open_items()
        status, incomplete = status_for(stop)
        usage = self.usage
        fields: JSON = {"output": self._finished_output(),
                        "usage": render_usage(usage) if usage is not None else None,
                        "incomplete_details": incomplete}
        if status == "failed":
            fields["error"] = {"code": "server_error", "message": "the upstream model reported an error"}
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status,
                                                                                              "response.failed")
        return frames + self._frame({"type": kind, "response": self._envelope(status, **fields)})

    def _on_error(self, error: ir.Error) -> bytes:
        self._items.clear()
        failed = failed_error(error)
        return (self._frame({"type": "error", "code": failed["code"], "message": error.message,
                             "param": error.param})
                + self._frame({"type": "response.failed",
                               "response": self._envelope("failed", error=failed, output=self._finished_output())}))


def _tools_once(request: ir.Request) -> orjson.Fragment:
    """The request's tools, serialised once for the three events that repeat
    them; left out when they cannot be written (a client's schema nested
    beyond what JSON encoders take must not break the stream)."""
    tools = [t for t in map(render_tool, request.tools) if t is not None]
    try:
        return orjson.Fragment(orjson.dumps(tools))
    except orjson.JSONEncodeError:
        return orjson.Fragment(b"[]")


def _request_echo(request: ir.Request | None) -> JSON:
    """The request settings a Response object repeats (the SDK requires some of them)."""
    if request is None:
        return {"parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
    echo: JSON = {
        "parallel_tool_calls": request.parallel_tool_calls if request.parallel_tool_calls is not None else True,
        "tool_choice": render_tool_choice(request.tool_choice) if request.tool_choice is not None else "auto",
        "tools": _tools_once(request),
    }
    if request.temperature is not None:
        echo["temperature"] = request.temperature
    if request.top_p is not None:
        echo["top_p"] = request.top_p
    if request.max_tokens is not None:
        echo["max_output_tokens"] = request.max_tokens
    return echo
