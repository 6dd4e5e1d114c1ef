"""IR events -> OpenAI chat stream events."""

from __future__ import annotations

import time

import orjson

from crossroads import ir
from crossroads.dialects.kit.extras import own
from crossroads.dialects.kit.stream import EncoderBase
from crossroads.dialects.openai_chat.errors import error_object
from crossroads.dialects.openai_chat.response import finish_from_stop, is_refusal, render_usage
from crossroads.dialects.openai_chat.tables import FORM, JSON
from crossroads.ids import new_id
from crossroads.sse import frame

DONE_FRAME = b"data: [DONE]\n\n"


class ChatStreamEncoder(EncoderBase):
    """IR events -> ``chat.completion.chunk`` SSE frames, one frame per event."""

    __slots__ = ("_created", "_id", "_include_usage", "_kinds", "_model", "_prefix", "_refused", "_suffix",
                 "_tools", "_usage_prefix")

    def __init__(self, model: str, request: ir.Request | None = None) -> None:
        super().__init__()
        self._model = model
        self._created = int(time.time())
        self._include_usage = bool(request is not None and request.include_usage)
        self._id = ""
        self._prefix = b""
        self._suffix = b""
        self._usage_prefix = b""
        self._kinds: dict[int, tuple[str, int]] = {}  # IR index -> (kind, tool index)
        self._tools = 0
        self._refused = False

    def on_start(self, event: ir.Start) -> bytes:
        return self._start(event.id)

    def on_part_start(self, event: ir.PartStart) -> bytes:
        return self._ensure_started() + self._part_start(event)

    def on_delta(self, event: ir.PartDelta) -> bytes:
        return self._delta(event)

    def on_finish(self, event: ir.Finish) -> bytes:
        return self._ensure_started() + self._finish(event.stop_reason)

    def on_error(self, error: ir.Error) -> bytes:
        return frame(orjson.dumps({"error": error_object(error)}))

    def on_close(self) -> bytes:
        return b"" if self.failed else DONE_FRAME

    # ------------------------------------------------------------------ internals

    def _start(self, response_id: str) -> bytes:
        self._id = response_id or new_id("chatcmpl-")
        head = (b'{"id":' + orjson.dumps(self._id) + b',"object":"chat.completion.chunk","created":'
                + str(self._created).encode() + b',"model":' + orjson.dumps(self._model))
        self._prefix = head + b',"choices":[{"index":0,"delta":'
        self._suffix = b',"logprobs":null,"finish_reason":null}]' + (
            b',"usage":null}' if self._include_usage else b"}")
        self._usage_prefix = head + b',"choices":[],"usage":'
        return self._chunk({"role": "assistant", "content": ""})

    def _ensure_started(self) -> bytes:
        return b"" if self._prefix else self._start("")

    def _chunk(self, delta: JSON) -> bytes:
        return frame(self._prefix + orjson.dumps(delta) + self._suffix)

    def _part_start(self, event: ir.PartStart) -> bytes:
        part = event.part
        if isinstance(part, ir.ToolCallPart):
            tool_index = self._tools
            self._tools += 1
            self._kinds[event.index] = ("tool", tool_index)
            call: JSON = {"index": tool_index, "id": part.id or new_id("call_"), "type": "function",
                          "function": {"name": part.name, "arguments": part.arguments}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(part, ir.ThinkingPart):
            field = own(part.extra, FORM).get("field") or "reasoning_content"
            self._kinds[event.index] = (field, 0)
            return self._chunk({field: part.text}) if part.text else b""
        field = "content"
        if is_refusal(part):
            field, self._refused = "refusal", True
        self._kinds[event.index] = (field, 0)
        return self._chunk({field: part.text}) if part.text else b""

    def _delta(self, event: ir.PartDelta) -> bytes:
        if not event.text:
            return b""  # signatures have no home in chat completions
        kind = self._kinds.get(event.index)
        if kind is None:
            return b""
        field, tool_index = kind
        if field == "tool":
            return self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": event.text}}]})
        return self._chunk({field: event.text})

    def _finish(self, stop: ir.StopReason | None) -> bytes:
        # A refusal message already says so; OpenAI ends it with "stop" (as render_response does).
        finish = b"stop" if stop == "refusal" and self._refused else finish_from_stop(stop).encode()
        out = frame(self._prefix + b'{},"logprobs":null,"finish_reason":"' + finish + b'"}]'
                    + (b',"usage":null}' if self._include_usage else b"}"))
        if self._include_usage and self.usage is not None:
            out += frame(self._usage_prefix + orjson.dumps(render_usage(self.usage)) + b"}")
        return out
