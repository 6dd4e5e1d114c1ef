"""OpenAI Chat Completions (``POST /v1/chat/completions``) <-> IR.

Also the dialect of most "OpenAI-compatible" servers (DeepSeek, vLLM,
OpenRouter, ...), so the codecs accept their common extensions: assistant
``reasoning_content`` / ``reasoning`` fields and deltas, usage inside the last
choice chunk, tool-call deltas without ``index``.

Same-dialect fidelity. Fields the IR does not model are kept so that
``render_request(parse_request(body)) == body``:

* ``extra["openai-chat"]`` (on the request, messages, parts, tools, tool calls
  and responses) holds unknown wire fields, merged back verbatim;
* ``extra["openai-chat:form"]`` holds wire-shape hints (string vs. list
  content, ``max_tokens`` vs ``max_completion_tokens``, how the leading system
  messages were grouped, legacy ``functions``...). A request that carries the
  request-level hint came from this dialect.

Choices made when rendering IR from other dialects:

* ``request.system`` becomes one leading ``system`` message (text blocks
  joined with a blank line); mid-conversation IR system messages stay in
  place as ``system`` messages (the API accepts them anywhere).
* Tool results are split into one ``tool`` message each, placed before the
  rest of the user turn. Chat ``tool`` messages only carry text, so images or
  documents inside a tool result move into the user message that follows.
  ``is_error`` has no field and is dropped.
* Thinking parts in request history are only sent back (as
  ``reasoning_content``) when they came from this dialect: the real OpenAI
  API rejects unknown message fields. ``OpenAIChatDialect(send_reasoning=True)``
  sends them always (DeepSeek-style servers that want them back).
* Thinking signatures, redacted and encrypted thinking have no home and are
  dropped; cache-write tokens go to ``prompt_tokens_details.cache_write_tokens``
  (present in the SDK's ``PromptTokensDetails``).
* Provider tools of other dialects are dropped; ``openai-chat:<type>`` tools
  are rendered back unchanged."""

from __future__ import annotations

from crossroads import ir
from crossroads.dialects.kit.adapter import DialectBase
from crossroads.dialects.openai_chat.decode import ChatStreamDecoder
from crossroads.dialects.openai_chat.encode import ChatStreamEncoder
from crossroads.dialects.openai_chat.errors import parse_error, render_error
from crossroads.dialects.openai_chat.request import parse_request, render_request
from crossroads.dialects.openai_chat.response import parse_response, parse_usage, render_response
from crossroads.dialects.openai_chat.tables import JSON, NAME


class OpenAIChatDialect(DialectBase):
    name = NAME
    stream_terminators = (b"[DONE]",)

    def __init__(self, *, send_reasoning: bool = False, max_tokens_field: str = "max_tokens") -> None:
        self.send_reasoning = send_reasoning
        self.max_tokens_field = max_tokens_field

    read_request = staticmethod(parse_request)

    def write_request(self, request: ir.Request) -> JSON:
        return render_request(request, send_reasoning=self.send_reasoning, max_tokens_field=self.max_tokens_field)

    read_response = staticmethod(parse_response)
    write_response = staticmethod(render_response)
    read_error = staticmethod(parse_error)
    write_error = staticmethod(render_error)
    new_decoder = staticmethod(ChatStreamDecoder)
    new_encoder = staticmethod(ChatStreamEncoder)

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        return parse_usage(payload.get("usage"))

    def passthrough_edits(self, body: JSON, model: str | None, stream: bool) -> tuple[bool, bool]:
        changed, _ = super().passthrough_edits(body, model, stream)
        options = body.get("stream_options")
        if not stream or (isinstance(options, dict) and options.get("include_usage")):
            return changed, False
        # ask for usage so it can be accounted, and hide the extra chunk from the client
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return True, True

    def hides_usage_chunk(self, payload: JSON) -> bool:
        return payload.get("choices") == []


DIALECT = OpenAIChatDialect()
