"""OpenAI Responses stream events -> IR events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from crossroads import ids, ir
from crossroads.assemble import events_for
from crossroads.dialects.kit import durations
from crossroads.dialects.kit.stream import PartTracker
from crossroads.dialects.openai_responses.errors import error_from_code
from crossroads.dialects.openai_responses.parts import output_parts, thinking_part
from crossroads.dialects.openai_responses.response import parse_usage, stop_reason
from crossroads.dialects.openai_responses.tables import JSON, NAME, OUTPUT_TEXT, StreamPart


class _Reasoning:
    __slots__ = ("content", "summary")

    def __init__(self) -> None:
        self.summary: dict[int, str] = {}
        self.content: dict[int, str] = {}

    def text(self) -> str:
        if self.summary:
            return "\n\n".join(self.summary[i] for i in sorted(self.summary))
        return "".join(self.content[i] for i in sorted(self.content))


class ResponsesStreamDecoder:
    """Responses SSE events -> IR events (see the module docstring on reasoning)."""

    def __init__(self) -> None:
        self._started = False
        self._parts = PartTracker()
        self._streamed: set[int] = set()  # IR indices that received a delta
        self._texts: dict[tuple[int, int], int] = {}  # (output_index, content_index) -> IR index
        self._calls: dict[int, int] = {}  # output_index -> IR index
        self._messages: dict[int, JSON] = {}  # output_index -> message item head
        self._reasoning: dict[int, _Reasoning] = {}
        self._has_call = False
        self._has_refusal = False

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
        if self._parts.done or not data or data in ("[DONE]", b"[DONE]"):
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or event
        out: list[ir.Event] = []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(payload.get("response"), out)
            return out
        if kind in ("response.completed", "response.incomplete"):
            self._finish(payload.get("response"), "completed" if kind == "response.completed" else "incomplete",
                         out)
            return out
        if kind == "response.failed":
            return self._fail(payload.get("response"))
        if kind == "error":
            return self._error(payload)
        handler = _DECODE_HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            self._start(None, out)
            handler(self, payload, out)
        return out

    def close(self) -> list[ir.Event]:
        return self._parts.cut()

    # ---- lifecycle

    def _start(self, response: Any, out: list[ir.Event]) -> None:
        if self._started:
            return
        self._started = True
        response = response if isinstance(response, dict) else {}
        response_id = response.get("id")
        model = response.get("model")
        out.append(ir.Start(id=response_id if isinstance(response_id, str) else ids.new_id("resp_"),
                            model=model if isinstance(model, str) else ""))

    def _finish(self, response: Any, status: str, out: list[ir.Event]) -> None:
        self._start(response, out)
        response = response if isinstance(response, dict) else {}
        for output_index in sorted(self._reasoning):
            self._emit_reasoning(output_index, {}, out)
        self._parts.stop_all(out)
        output = response.get("output")
        if self._parts.next == 0 and isinstance(output, list) and output:
            self._replay_output(output, out)  # a server that sent only the final response
        stop = stop_reason(response.get("status", status), response.get("incomplete_details"),
                            self._has_call, self._has_refusal)
        self._parts.finish(out, stop, parse_usage(response.get("usage")))

    def _replay_output(self, output: list[Any], out: list[ir.Event]) -> None:
        try:
            parts, _, has_call, has_refusal = output_parts(output, "output")
        except ir.Error:
            return
        self._has_call, self._has_refusal = has_call, has_refusal
        # only called before any part was emitted, so events_for's indices (from 0) fit
        out.extend(e for e in events_for(ir.Response(id="", model="", parts=parts))
                   if isinstance(e, ir.PartStart | ir.PartDelta | ir.PartStop))
        self._parts.next = len(parts)

    def _fail(self, response: Any) -> list[ir.Event]:
        error = response.get("error") if isinstance(response, dict) else None
        if not isinstance(error, dict):
            return self._parts.fail(ir.Error(502, "server_error", "upstream response failed"))
        return self._error(error)

    def _error(self, payload: JSON) -> list[ir.Event]:
        nested = payload.get("error")
        source = nested if isinstance(nested, dict) else payload
        message = source.get("message")
        return self._parts.fail(error_from_code(source.get("code") or source.get("type"),
                                                message if isinstance(message, str) else "",
                                                source.get("param"), durations.from_error(source)))

    # ---- parts

    def _begin(self, part: StreamPart, out: list[ir.Event]) -> int:
        return self._parts.begin(part, out)

    def _delta(self, index: int | None, text: str, out: list[ir.Event]) -> None:
        if index is not None and index in self._parts.open and text:
            self._streamed.add(index)
            out.append(ir.PartDelta(index, text=text))

    def _stop(self, index: int | None, out: list[ir.Event]) -> None:
        self._parts.stop(index, out)

    def _on_item_added(self, payload: JSON, out: list[ir.Event]) -> None:
        item, output_index = payload.get("item"), payload.get("output_index")
        if not isinstance(item, dict) or not isinstance(output_index, int):
            return
        kind = item.get("type")
        if kind == "message":
            self._messages[output_index] = {k: v for k, v in item.items() if k not in ("content", "status")}
        elif kind == "reasoning":
            self._reasoning[output_index] = _Reasoning()
        elif kind == "function_call":
            self._begin_call(output_index, item, out)

    def _begin_call(self, output_index: int, item: JSON, out: list[ir.Event]) -> int:
        rest = {k: v for k, v in item.items() if k not in ("type", "call_id", "name", "arguments", "status")}
        call_id, name = item.get("call_id"), item.get("name")
        part = ir.ToolCallPart(id=call_id if isinstance(call_id, str) else "",
                               name=name if isinstance(name, str) else "",
                               extra={NAME: rest} if rest else None)
        index = self._begin(part, out)
        self._calls[output_index] = index
        self._has_call = True
        arguments = item.get("arguments")
        if isinstance(arguments, str):
            self._delta(index, arguments, out)
        return index

    def _text_index(self, payload: JSON, out: list[ir.Event], refusal: bool = False) -> int | None:
        output_index, content_index = payload.get("output_index"), payload.get("content_index", 0)
        if not isinstance(output_index, int) or not isinstance(content_index, int):
            return None
        key = (output_index, content_index)
        index = self._texts.get(key)
        if index is None:  # a server that skipped content_part.added
            index = self._begin_text(key, {"type": "refusal"} if refusal else None, out)
        return index

    def _begin_text(self, key: tuple[int, int], shape: JSON | None, out: list[ir.Event]) -> int:
        info: JSON = {}
        head = self._messages.get(key[0])
        if head is not None and key[1] == 0:
            info["item"] = head
        if shape is not None and shape != OUTPUT_TEXT:
            info["part"] = shape
            self._has_refusal = self._has_refusal or shape.get("type") == "refusal"
        index = self._begin(ir.TextPart("", extra={NAME: info} if info else None), out)
        self._texts[key] = index
        return index

    def _on_content_part_added(self, payload: JSON, out: list[ir.Event]) -> None:
        part, output_index = payload.get("part"), payload.get("output_index")
        content_index = payload.get("content_index", 0)
        if not isinstance(part, dict) or not isinstance(output_index, int) or not isinstance(content_index, int):
            return
        kind = part.get("type")
        if kind not in ("output_text", "refusal") or (output_index, content_index) in self._texts:
            return
        text_key = "text" if kind == "output_text" else "refusal"
        shape = {k: v for k, v in part.items() if k != text_key}
        index = self._begin_text((output_index, content_index), shape, out)
        initial = part.get(text_key)
        if isinstance(initial, str):
            self._delta(index, initial, out)

    def _on_text_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, str):
            self._delta(self._text_index(payload, out), delta, out)

    def _on_refusal_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, str):
            self._delta(self._text_index(payload, out, refusal=True), delta, out)

    def _on_text_done(self, payload: JSON, out: list[ir.Event]) -> None:
        text = payload.get("text", payload.get("refusal"))
        index = self._text_index(payload, out, refusal="refusal" in payload)
        if isinstance(text, str) and index is not None and index not in self._streamed:
            self._delta(index, text, out)

    def _on_content_part_done(self, payload: JSON, out: list[ir.Event]) -> None:
        output_index, content_index = payload.get("output_index"), payload.get("content_index", 0)
        if isinstance(output_index, int) and isinstance(content_index, int):
            index = self._texts.get((output_index, content_index))
            part = payload.get("part")
            if index is not None and index not in self._streamed and isinstance(part, dict):
                text = part.get("text", part.get("refusal"))
                if isinstance(text, str):
                    self._delta(index, text, out)
            self._stop(index, out)

    def _on_arguments_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        delta, output_index = payload.get("delta"), payload.get("output_index")
        if isinstance(delta, str) and isinstance(output_index, int):
            self._delta(self._calls.get(output_index), delta, out)

    def _on_arguments_done(self, payload: JSON, out: list[ir.Event]) -> None:
        arguments, output_index = payload.get("arguments"), payload.get("output_index")
        if isinstance(arguments, str) and isinstance(output_index, int):
            index = self._calls.get(output_index)
            if index is not None and index not in self._streamed:
                self._delta(index, arguments, out)

    def _reasoning_state(self, payload: JSON) -> _Reasoning | None:
        output_index = payload.get("output_index")
        if not isinstance(output_index, int):
            return None
        return self._reasoning.setdefault(output_index, _Reasoning())

    def _on_summary_part_added(self, payload: JSON, out: list[ir.Event]) -> None:
        state, summary_index = self._reasoning_state(payload), payload.get("summary_index", 0)
        if state is not None and isinstance(summary_index, int):
            state.summary.setdefault(summary_index, "")

    def _on_summary_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        state, summary_index, delta = (self._reasoning_state(payload), payload.get("summary_index", 0),
                                       payload.get("delta"))
        if state is not None and isinstance(summary_index, int) and isinstance(delta, str):
            state.summary[summary_index] = state.summary.get(summary_index, "") + delta

    def _on_reasoning_text_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        state, content_index, delta = (self._reasoning_state(payload), payload.get("content_index", 0),
                                       payload.get("delta"))
        if state is not None and isinstance(content_index, int) and isinstance(delta, str):
            state.content[content_index] = state.content.get(content_index, "") + delta

    def _on_item_done(self, payload: JSON, out: list[ir.Event]) -> None:
        item, output_index = payload.get("item"), payload.get("output_index")
        if not isinstance(item, dict) or not isinstance(output_index, int):
            return
        kind = item.get("type")
        if kind == "reasoning":
            self._emit_reasoning(output_index, item, out)
        elif kind == "function_call":
            index = self._calls.get(output_index)
            if index is None:
                index = self._begin_call(output_index, item, out)
            elif index not in self._streamed:
                arguments = item.get("arguments")
                if isinstance(arguments, str):
                    self._delta(index, arguments, out)
            self._stop(index, out)
        elif kind == "message":
            self._finish_message(output_index, item, out)

    def _finish_message(self, output_index: int, item: JSON, out: list[ir.Event]) -> None:
        content = item.get("content")
        if isinstance(content, list):
            self._messages.setdefault(output_index, {k: v for k, v in item.items()
                                                     if k not in ("content", "status")})
            for content_index, part in enumerate(content):
                key = (output_index, content_index)
                if key in self._texts or not isinstance(part, dict):
                    continue
                # a server that sent the finished message only
                self._on_content_part_added({"part": part, "output_index": output_index,
                                             "content_index": content_index}, out)
        for (item_index, _), index in list(self._texts.items()):
            if item_index == output_index:
                self._stop(index, out)

    def _emit_reasoning(self, output_index: int, item: JSON, out: list[ir.Event]) -> None:
        state = self._reasoning.pop(output_index, None)
        try:
            part = thinking_part(item, "item") if item else ir.ThinkingPart(extra={NAME: {}})
        except ir.Error:
            part = ir.ThinkingPart(extra={NAME: {}})
        text = part.text or (state.text() if state is not None else "")
        index = self._begin(ir.ThinkingPart(encrypted=part.encrypted, extra=part.extra), out)
        self._delta(index, text, out)
        self._stop(index, out)


_DECODE_HANDLERS: dict[str, Callable[[ResponsesStreamDecoder, JSON, list[ir.Event]], None]] = {
    "response.output_item.added": ResponsesStreamDecoder._on_item_added,
    "response.content_part.added": ResponsesStreamDecoder._on_content_part_added,
    "response.output_text.delta": ResponsesStreamDecoder._on_text_delta,
    "response.refusal.delta": ResponsesStreamDecoder._on_refusal_delta,
    "response.output_text.done": ResponsesStreamDecoder._on_text_done,
    "response.refusal.done": ResponsesStreamDecoder._on_text_done,
    "response.content_part.done": ResponsesStreamDecoder._on_content_part_done,
    "response.function_call_arguments.delta": ResponsesStreamDecoder._on_arguments_delta,
    "response.function_call_arguments.done": ResponsesStreamDecoder._on_arguments_done,
    "response.reasoning_summary_part.added": ResponsesStreamDecoder._on_summary_part_added,
    "response.reasoning_summary_text.delta": ResponsesStreamDecoder._on_summary_delta,
    "response.reasoning_text.delta": ResponsesStreamDecoder._on_reasoning_text_delta,
    "response.output_item.done": ResponsesStreamDecoder._on_item_done,
}
