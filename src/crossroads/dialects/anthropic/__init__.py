"""Anthropic Messages API (``POST /v1/messages``) <-> IR.

Choices worth knowing (the SDK's types, ``anthropic`` 2.14, are the reference):

* Mid-conversation ``role: "system"`` messages (a Claude Code beta) parse to
  ``ir.Message(role="system")`` in place. When rendering, leading system
  messages join the top-level ``system`` blocks; a later one is folded into
  the adjacent user turn as a plain text block (``mid_conversation_system=
  "fold"``, the default: works on every Anthropic-compatible upstream) or
  kept as a system message (``"keep"``: the SDK's ``SystemMessageParam``).
* The SDK's create params have no ``temperature``/``top_p``/``top_k`` (and
  the API rejects unknown top-level fields), so they are parsed into the IR
  but only rendered when ``sampling_params=True`` (for Anthropic-compatible
  upstreams that still take them). With thinking on, temperature and top_k
  are dropped and top_p is kept only when >= 0.95.
* ``max_tokens`` is mandatory: None renders as 8192. A thinking budget is at
  least 1024 and must stay below ``max_tokens``; when it does not,
  ``max_tokens`` becomes budget + the answer room the client asked for.
  Forced tool use (``any``/``tool``) is incompatible with a thinking budget:
  thinking is omitted then. Effort ``none`` renders ``thinking: disabled``.
* Usage: IR ``input_tokens`` = ``input_tokens`` + cache reads + cache
  writes; ``output_tokens_details.thinking_tokens`` <-> ``reasoning_tokens``.
* Extra fields round-trip through ``extra["anthropic"]`` dicts whose keys are
  the wire keys they merge back into. Blocks the IR cannot hold (server tool
  results, file sources, ...) are kept as ``[position, block]`` pairs under
  ``extra["anthropic"]["content"]`` of their message / tool result / response."""

from __future__ import annotations

from typing import Literal

from crossroads import ir
from crossroads.dialects.anthropic.decode import AnthropicStreamDecoder
from crossroads.dialects.anthropic.encode import AnthropicStreamEncoder
from crossroads.dialects.anthropic.errors import parse_error, render_error
from crossroads.dialects.anthropic.request import parse_request, render_request
from crossroads.dialects.anthropic.response import parse_response, render_response, usage_from_wire
from crossroads.dialects.anthropic.tables import JSON, NAME
from crossroads.dialects.kit.adapter import DialectBase


class AnthropicDialect(DialectBase):
    name = NAME
    stream_terminators = (b"message_stop",)
    identifying_headers = ("anthropic-version",)
    path_markers = ("/messages",)

    def __init__(self, *, mid_conversation_system: Literal["fold", "keep"] = "fold",
                 sampling_params: bool = False) -> None:
        self.keep_system_messages = mid_conversation_system == "keep"
        self.sampling_params = sampling_params

    read_request = staticmethod(parse_request)

    def write_request(self, request: ir.Request) -> JSON:
        return render_request(request, keep_system=self.keep_system_messages, sampling_params=self.sampling_params)

    read_response = staticmethod(parse_response)
    write_response = staticmethod(render_response)
    read_error = staticmethod(parse_error)
    write_error = staticmethod(render_error)
    new_decoder = staticmethod(AnthropicStreamDecoder)
    new_encoder = staticmethod(AnthropicStreamEncoder)

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        raw = payload.get("usage")
        if raw is None and isinstance(payload.get("message"), dict):
            raw = payload["message"].get("usage")  # message_start
        return usage_from_wire(raw) if isinstance(raw, dict) else None


DIALECT = AnthropicDialect()
