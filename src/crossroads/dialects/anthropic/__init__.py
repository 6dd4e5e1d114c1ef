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

from typing import Any, Literal

from crossroads import ir
from crossroads.dialects.anthropic.decode import AnthropicStreamDecoder
from crossroads.dialects.anthropic.encode import AnthropicStreamEncoder
from crossroads.dialects.anthropic.errors import parse_error, render_error
from crossroads.dialects.anthropic.request import parse_request, render_request
from crossroads.dialects.anthropic.response import parse_response, render_response
from crossroads.dialects.anthropic.tables import NAME


class AnthropicDialect:
    stream_terminators: tuple[bytes, ...] = (b"message_stop",)
    needs_inline_images = False
    name = NAME

    def __init__(self, *, mid_conversation_system: Literal["fold", "keep"] = "fold",
                 sampling_params: bool = False) -> None:
        self.keep_system_messages = mid_conversation_system == "keep"
        self.sampling_params = sampling_params

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        try:
            return parse_request(body, model, stream)
        except ir.Error:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ir.bad_request(f"malformed request: {exc}") from None

    def render_request(self, request: ir.Request) -> dict[str, Any]:
        return render_request(request, keep_system=self.keep_system_messages,
                              sampling_params=self.sampling_params)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        try:
            return parse_response(body)
        except ir.Error as exc:
            raise ir.Error(502, "server_error", f"malformed upstream response: {exc.message}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ir.Error(502, "server_error", f"malformed upstream response: {exc}") from None

    def render_response(self, response: ir.Response) -> dict[str, Any]:
        return render_response(response)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(model=model, request=request)

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        return parse_error(status, body)

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]:
        return render_error(error)


DIALECT = AnthropicDialect()
