"""OpenAI Responses API (``POST /v1/responses``) <-> IR.

Decisions worth knowing (the rest follows the SDK types in ``openai.types.responses``):

Requests
* ``instructions`` becomes ``Request.system``. Leading ``system``/``developer`` message
  items whose content is all text also go to ``Request.system``; their first TextPart
  carries the wire item in ``extra["openai-responses"]["item"]`` so they render back as
  input items (Codex sends developer messages and no ``instructions``). Unmarked system
  parts (e.g. from another dialect) render as ``instructions``, joined with a blank line.
  Later system/developer items stay in place as ``Message(role="system")``; a foreign
  mid-conversation system message renders as a ``developer`` message item in place.
* Consecutive assistant-side items (assistant messages, ``function_call``, ``reasoning``)
  form ONE assistant ``Message``; consecutive ``function_call_output`` items form ONE user
  message of ``ToolResultPart``s. Item boundaries, item ids and wire shapes are kept in
  ``extra`` (first TextPart of a message item: ``item``/``n``/``string``; other parts:
  ``part``; ToolCallPart/ThinkingPart: the item's other keys; tool results:
  ``Message.extra[...]["outputs"][call_id]``) so a same-dialect round trip is exact.
* Item types the IR cannot express (custom_tool_call, web_search_call, item_reference,
  compaction, ...) are kept verbatim in ``Message.extra[...]["raw"]`` as
  ``[position_in_parts, item]`` on the message they follow; other dialects never see them.
  Input parts with no IR home (``input_image``/``input_file`` by ``file_id``, unknown part
  types) become a placeholder ``TextPart`` ("[image: file-..]") whose extra holds the wire
  part, rendered back verbatim here.
* Reasoning: a ``ThinkingPart`` renders as a ``reasoning`` input item only when it has
  ``encrypted`` content or an upstream-issued id; otherwise (Anthropic/Gemini thinking, or
  reasoning we synthesised in a response) it is dropped: the API rejects reasoning items
  it did not issue. Ids we synthesise carry an ``x`` after the prefix (``rs_x..``,
  ``fc_x..``, ``msg_x..``) and are stripped again when rendering a request.
* Function tools are flat ``{type, name, description, parameters, strict}``; the SDK
  requires ``parameters`` and ``strict``, so ``strict: None`` renders ``false`` (the
  Chat Completions default; Responses would otherwise default to strict mode and reject
  ordinary schemas). A function tool with extra keys (``defer_loading``...) keeps its
  original dict in ``Tool.raw``; other tool types keep it with kind ``openai-responses:<type>``.
* Not in this API, dropped when rendering: stop, seed, top_k, penalties, n.
  Round-trip normalisations: ``input_image.detail`` renders ``"auto"`` when absent (the
  SDK requires it); ``stream: false`` survives only via extra; explicit ``null`` values of
  modelled fields are kept in extra.

Responses / usage
* Usage: the SDK's ``ResponseUsage`` requires ``input_tokens_details`` (``cached_tokens``,
  ``cache_write_tokens``) and ``output_tokens_details.reasoning_tokens``: this is the one
  place where a ``None`` IR count renders as ``0``. On parse a present 0 counts as reported.
* Stop reasons: completed + function_call -> tool_use; completed + refusal -> refusal;
  incomplete(max_output_tokens) -> max_tokens; incomplete(content_filter) -> content_filter;
  failed -> error. Statuses that do not follow from the stop reason are kept for round trips.

Streams
* Decoder: a reasoning item is emitted as one ThinkingPart when ``output_item.done``
  arrives (summary deltas are buffered until then) because the authoritative
  ``encrypted_content`` only comes with the done item and ``ir.PartDelta`` has no field
  for it; the part's ``PartStart`` therefore carries ``encrypted``. Text and tool-call
  arguments stream through as they arrive. ``response.failed`` and ``error`` events
  become ``ErrorEvent``.
* Encoder: created -> in_progress -> per part output_item.added (+ content_part.added /
  summary_part.added) -> deltas -> *.done -> output_item.done -> completed|incomplete,
  the final event carrying every output item and usage (accumulated with
  ``assemble.Assembler``). A mid-stream ``ErrorEvent`` becomes an ``error`` event followed
  by ``response.failed`` (the SDK yields both; Codex acts on ``response.failed``)."""

from __future__ import annotations

from crossroads import ir
from crossroads.dialects.kit.adapter import DialectBase
from crossroads.dialects.openai_chat.errors import parse_error
from crossroads.dialects.openai_responses.decode import ResponsesStreamDecoder
from crossroads.dialects.openai_responses.encode import ResponsesStreamEncoder
from crossroads.dialects.openai_responses.errors import render_error
from crossroads.dialects.openai_responses.request import parse_request, render_request
from crossroads.dialects.openai_responses.response import parse_response, parse_usage, render_response
from crossroads.dialects.openai_responses.tables import JSON, NAME


class OpenAIResponsesDialect(DialectBase):
    name = NAME
    stream_terminators = (b"response.completed", b"response.incomplete", b"response.failed")
    read_request = staticmethod(parse_request)
    write_request = staticmethod(render_request)
    read_response = staticmethod(parse_response)
    write_response = staticmethod(render_response)
    read_error = staticmethod(parse_error)
    write_error = staticmethod(render_error)
    new_decoder = staticmethod(ResponsesStreamDecoder)
    new_encoder = staticmethod(ResponsesStreamEncoder)

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        raw = payload.get("usage")
        if raw is None and isinstance(payload.get("response"), dict):
            raw = payload["response"].get("usage")  # response.completed
        return parse_usage(raw)


DIALECT = OpenAIResponsesDialect()
