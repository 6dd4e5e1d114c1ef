"""Gemini ``generateContent`` / ``streamGenerateContent`` <-> IR.

Wire facts (google-genai ``types`` are the reference): the model and the
stream flag live in the URL, never in the body; the REST API takes proto JSON,
so both camelCase and snake_case field names are parsed, camelCase rendered.

Choices worth knowing:

* Roles: ``model`` <-> assistant, everything else is a user turn. IR system
  messages that come before any turn join ``systemInstruction``; later ones
  (Claude Code sends them) are folded into a user turn as a plain text part,
  Gemini having no mid-conversation system role. Consecutive same-role turns
  are merged. Tool results go in a user turn.
* Tool ids: ``functionCall.id`` is optional. Missing ids are synthesised
  (``call_<name>_<n>`` in requests, with a random salt in responses so later
  turns do not collide) and marked ``_synthetic_id`` so a Gemini rendering
  leaves them out again; id-less ``functionResponse`` parts are matched to
  the calls by name, in order. Rendering a tool result needs the function
  name: ``ToolResultPart.name`` or the earlier call with the same id.
* ``functionResponse.response`` is an object: a text result is sent as
  ``{"result": text}`` (``{"error": text}`` when ``is_error``). Parsing
  reverses that (``result``/``output`` keys); any other object becomes its
  JSON text, marked so it renders back unchanged. Images in tool results go
  in ``functionResponse.parts`` for Gemini 3 models and as sibling parts of
  the same turn for older ones.
* Remote images (``ImagePart.url``) are rendered as ``fileData`` — the
  pipeline inlines them first where the upstream needs it.
* Parts the IR has no type for (``executableCode``, ``codeExecutionResult``,
  server-side tool parts, inline media in output) become a ``TextPart``
  holding a readable rendering, with the original part in
  ``extra["gemini"]["_part"]`` so a Gemini rendering restores it verbatim.
* ``extra["gemini"]`` on parts holds wire keys to merge into the rendered
  part (``thoughtSignature``...); keys starting with ``_`` are private
  markers. ``Request.extra["gemini"]`` holds a partial request body (unknown
  fields, unknown ``generationConfig``/``toolConfig`` keys...) merged under
  the rendered one — IR values win — plus ``_meta`` with what a same-dialect
  rendering needs to reproduce the client's exact spelling (original
  ``parameters`` schemas, ``parametersJsonSchema`` vs ``parameters``...).
* Thought signatures: thought parts and function calls parsed from a Gemini
  client carry ``extra["gemini"]`` (possibly empty), marking them as
  Gemini's own. Signatures on parts from other dialects are not sent to
  Gemini (its validator would reject them); instead, for ``gemini-3*``
  models, the first call of such a model turn gets the documented
  ``skip_thought_signature_validator`` sentinel, without which Gemini 3
  rejects the turn. Non-base64 signatures are never rendered (the field is
  bytes).
* Reasoning: ``thinkingBudget`` <-> ``Reasoning.budget``, ``thinkingLevel``
  <-> ``Reasoning.effort``; rendering uses ``thinkingLevel`` only for
  ``gemini-3*`` models and sets ``includeThoughts`` when thinking is on and the
  client did not say, so thoughts come back.
* Usage: IR ``output_tokens`` = ``candidatesTokenCount`` +
  ``thoughtsTokenCount``; ``toolUsePromptTokenCount`` is kept in ``extra``."""

from __future__ import annotations

from crossroads import ir
from crossroads.dialects.gemini.decode import GeminiStreamDecoder
from crossroads.dialects.gemini.encode import GeminiArrayStreamEncoder, GeminiStreamEncoder, JsonArrayFramer
from crossroads.dialects.gemini.errors import error_body, parse_error
from crossroads.dialects.gemini.request import parse_request, render_request
from crossroads.dialects.gemini.response import parse_response, parse_usage, render_response
from crossroads.dialects.gemini.tables import JSON, NAME
from crossroads.dialects.kit.adapter import DialectBase


class GeminiDialect(DialectBase):
    """``json_array=True`` is the variant for ``streamGenerateContent`` without
    ``alt=sse``: the same requests and replies, streams framed as one JSON array."""

    name = NAME
    stream_terminators = (b"finishReason", b"finish_reason")
    needs_inline_images = True
    model_in_url = True
    path_markers = ("/v1beta", ":")

    read_request = staticmethod(parse_request)
    write_request = staticmethod(render_request)
    read_response = staticmethod(parse_response)
    write_response = staticmethod(render_response)
    read_error = staticmethod(parse_error)
    write_error = staticmethod(error_body)
    new_decoder = staticmethod(GeminiStreamDecoder)

    def __init__(self, *, json_array: bool = False) -> None:
        self.json_array = json_array
        if json_array:
            self.stream_content_type = b"application/json"

    def new_encoder(self, model: str, request: ir.Request | None) -> GeminiStreamEncoder:
        if self.json_array:
            return GeminiArrayStreamEncoder(model, request)
        return GeminiStreamEncoder(model, request)

    def usage_of(self, payload: JSON) -> ir.Usage | None:
        return parse_usage(payload.get("usageMetadata") or payload.get("usage_metadata"))

    def passthrough_framer(self) -> JsonArrayFramer | None:
        return JsonArrayFramer() if self.json_array else None


DIALECT = GeminiDialect()
JSON_ARRAY = GeminiDialect(json_array=True)
