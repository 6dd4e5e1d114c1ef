"""OpenAI chat stream events -> IR events."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.kit.extras import leftovers, wrap
from crossroads.dialects.kit.stream import PartTracker
from crossroads.dialects.openai_chat.errors import error_from_payload
from crossroads.dialects.openai_chat.parts import THINKING_FIELDS, nonempty_str, obj
from crossroads.dialects.openai_chat.response import parse_usage, stop_reason_from_finish
from crossroads.dialects.openai_chat.tables import FORM, JSON, NAME
from crossroads.ids import new_id


class _ToolState:
    __slots__ = ("arguments", "extra", "id", "index", "name")

    def __init__(self, call_id: str | None, name: str | None, extra: JSON | None) -> None:
        self.id = call_id
        self.name = name
        self.extra = extra
        self.index: int | None = None  # IR part index once started
        self.arguments: list[str] = []  # fragments seen before the name was known


DONE = ("[DONE]", b"[DONE]")


class ChatStreamDecoder:
    """``chat.completion.chunk`` frames -> IR events (choice 0 only)."""

    id_prefix = "chatcmpl-"
    __slots__ = ("_finish", "_finish_seen", "_open", "_open_kind", "_parts", "_refused", "_started",
                 "_tool_order", "_tools", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._refused = False
        self._parts = PartTracker()
        self._open: int | None = None  # the part the next text delta continues
        self._open_kind = ""
        self._tools: dict[int, _ToolState] = {}
        self._tool_order: list[int] = []
        self._finish: ir.StopReason | None = None
        self._finish_seen = False
        self._usage: ir.Usage | None = None

    def feed(self, event: str | None, data: str | bytes) -> list[ir.Event]:
        if self._parts.done:
            return []
        if data[:6] in DONE:
            return self._complete()
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []  # keep-alive noise some servers send
        if not isinstance(payload, dict):
            return []
        error = payload.get("error")
        if error or event == "error":
            return self._parts.fail(error_from_payload(payload))
        events: list[ir.Event] = []
        if not self._started:
            self._started = True
            events.append(ir.Start(id=str(payload.get("id") or new_id(self.id_prefix)),
                                   model=str(payload.get("model") or "")))
        choices = payload.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, events)
        usage = parse_usage(payload.get("usage"))
        if usage is not None:
            self._usage = usage if self._usage is None else self._usage.merged(usage)
            if self._finish_seen:
                self._parts.finish(events, self._finish, self._usage)
            else:
                events.append(ir.UsageEvent(usage))
        return events

    def close(self) -> list[ir.Event]:
        if self._finish_seen and not self._parts.done:
            return self._complete()
        return self._parts.cut()

    # ------------------------------------------------------------------ internals

    def _complete(self) -> list[ir.Event]:
        events: list[ir.Event] = []
        if not self._started:
            events.append(ir.Start(id=new_id(self.id_prefix), model=""))
            self._started = True
        self._flush_tools(events)
        stop = self._finish
        if not self._finish_seen:
            stop = "tool_use" if self._tools else "end_turn"
        self._parts.finish(events, stop, self._usage)
        return events

    def _choice(self, choice: JSON, events: list[ir.Event]) -> None:
        """One choice-0 entry of a chunk (overridden for legacy completions)."""
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, events)
        self._finish_choice(choice.get("finish_reason"), events)

    def _finish_choice(self, finish: Any, events: list[ir.Event]) -> None:
        if isinstance(finish, str) and finish:
            self._flush_tools(events)
            self._stop_open(events)
            self._finish = stop_reason_from_finish(finish)
            if self._finish == "end_turn" and self._refused:
                self._finish = "refusal"  # as parse_response reads a refusal message
            self._finish_seen = True

    def _delta(self, delta: JSON, events: list[ir.Event]) -> None:
        for field in THINKING_FIELDS:
            value = delta.get(field)
            if isinstance(value, str):
                if value:
                    self._text(events, "thinking", value, field)
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text(events, "text", content, None)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._text(events, "refusal", refusal, None)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    self._tool_fragment(call, events)
        function_call = delta.get("function_call")
        if isinstance(function_call, dict):
            self._tool_fragment({"index": 0, "function": function_call, "legacy": True}, events)

    def _text(self, events: list[ir.Event], kind: str, text: str, field: str | None) -> None:
        if self._open is None or self._open_kind != kind:
            self._stop_open(events)
            part: ir.TextPart | ir.ThinkingPart
            if kind == "thinking":
                part = ir.ThinkingPart(extra={FORM: {"field": field}} if field != "reasoning_content" else None)
            elif kind == "refusal":
                part = ir.TextPart(text="", extra={FORM: {"refusal": True}})
                self._refused = True
            else:
                part = ir.TextPart(text="")
            self._open, self._open_kind = self._parts.begin(part, events), kind
        events.append(ir.PartDelta(self._open, text=text))

    def _tool_fragment(self, call: JSON, events: list[ir.Event]) -> None:
        function = obj(call.get("function"))
        call_id = nonempty_str(call.get("id"))
        name = nonempty_str(function.get("name"))
        arguments = function.get("arguments")
        wire_index = call.get("index")
        if not isinstance(wire_index, int) or isinstance(wire_index, bool):
            # Servers that omit the index send whole calls: a new id is a new call.
            last = self._tools.get(self._tool_order[-1]) if self._tool_order else None
            if last is not None and (call_id is None or call_id == last.id):
                wire_index = self._tool_order[-1]
            else:
                wire_index = len(self._tool_order)
        state = self._tools.get(wire_index)
        if state is None:
            rest = leftovers(call, ("index", "id", "type", "function", "legacy"))
            form: JSON = {"legacy": True} if call.get("legacy") else {}
            state = _ToolState(call_id, name, wrap(NAME, rest, FORM, form))
            self._tools[wire_index] = state
            self._tool_order.append(wire_index)
        else:
            state.id = state.id or call_id
            state.name = state.name or name
        if state.index is None:
            if isinstance(arguments, str) and arguments:
                state.arguments.append(arguments)
            if state.name is not None:
                self._start_tool(state, events)
        elif isinstance(arguments, str) and arguments:
            events.append(ir.PartDelta(state.index, text=arguments))

    def _start_tool(self, state: _ToolState, events: list[ir.Event]) -> None:
        self._stop_open(events)
        state.index = self._parts.begin(ir.ToolCallPart(id=state.id or new_id("call_"), name=state.name or "",
                                                        extra=state.extra), events)
        if state.arguments:
            events.append(ir.PartDelta(state.index, text="".join(state.arguments)))
            state.arguments.clear()
        self._open, self._open_kind = state.index, "tool"

    def _flush_tools(self, events: list[ir.Event]) -> None:
        for wire_index in self._tool_order:
            state = self._tools[wire_index]
            if state.index is None:
                self._start_tool(state, events)

    def _stop_open(self, events: list[ir.Event]) -> None:
        self._parts.stop(self._open, events)
        self._open = None
        self._open_kind = ""
