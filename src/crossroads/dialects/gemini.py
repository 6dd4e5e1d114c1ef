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
  ``thoughtsTokenCount``; ``toolUsePromptTokenCount`` is kept in ``extra``.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from collections import deque
from typing import Any, Literal

import orjson

from crossroads import ids, ir, reasoning, sse
from crossroads.dialects.gemini_schema import clean_schema, to_json_schema
from crossroads.dialects.wire import require_dict as _require_dict
from crossroads.dialects.wire import require_list as _require_list

NAME = "gemini"
_META = "_meta"

# ----------------------------------------------------------------- field names

_CAMEL_RE = re.compile(r"_([a-z0-9])")


def _camel(key: str) -> str:
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), key) if "_" in key else key


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field under its camelCase or snake_case name (proto JSON accepts both)."""
    value = obj.get(camel)
    if value is None:
        snake = _SNAKE.get(camel)
        if snake is not None:
            value = obj.get(snake)
    return value


_CAMEL_FIELDS = (
    "systemInstruction", "toolConfig", "generationConfig", "functionCallingConfig", "allowedFunctionNames",
    "functionDeclarations", "parametersJsonSchema", "maxOutputTokens", "stopSequences", "candidateCount",
    "presencePenalty", "frequencyPenalty", "topP", "topK", "responseMimeType", "responseSchema",
    "responseJsonSchema", "thinkingConfig", "thinkingBudget", "thinkingLevel", "includeThoughts",
    "inlineData", "fileData", "functionCall", "functionResponse", "thoughtSignature", "mimeType",
    "fileUri", "displayName", "executableCode", "codeExecutionResult", "finishReason", "usageMetadata",
    "promptTokenCount", "candidatesTokenCount", "totalTokenCount", "cachedContentTokenCount",
    "thoughtsTokenCount", "toolUsePromptTokenCount", "modelVersion", "responseId", "promptFeedback",
    "blockReason",
)
_SNAKE = {name: re.sub(r"([A-Z])", r"_\1", name).lower() for name in _CAMEL_FIELDS}


def _known(*camel: str) -> frozenset[str]:
    return frozenset(camel) | frozenset(_SNAKE.get(name, name) for name in camel)


_REQUEST_KEYS = _known("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")
_GENERATION_KEYS = _known(
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed",
    "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
    "thinkingConfig",
)
_THINKING_KEYS = _known("thinkingBudget", "thinkingLevel", "includeThoughts")
_DECLARATION_KEYS = _known("name", "description", "parameters", "parametersJsonSchema")
_USAGE_KEYS = _known("promptTokenCount", "candidatesTokenCount", "totalTokenCount",
                     "cachedContentTokenCount", "thoughtsTokenCount")
_RESPONSE_KEYS = _known("candidates", "usageMetadata", "modelVersion", "responseId")
_CANDIDATE_KEYS = _known("content", "finishReason")

# ----------------------------------------------------------------- enums

_FINISH_TO_STOP: dict[str, ir.StopReason] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
}
_STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "STOP",
    "tool_use": "STOP",
    "stop_sequence": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "refusal": "SAFETY",
    "error": "OTHER",
}
_ChoiceMode = Literal["auto", "none", "required", "tool"]
_MODE_TO_CHOICE: dict[str, _ChoiceMode] = {"AUTO": "auto", "VALIDATED": "auto", "MODE_UNSPECIFIED": "auto",
                                           "NONE": "none", "ANY": "required"}
_CHOICE_TO_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}

_ERROR_STATUS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "INVALID_ARGUMENT"),
    "request_too_large": (400, "INVALID_ARGUMENT"),
    "authentication": (401, "UNAUTHENTICATED"),
    "permission": (403, "PERMISSION_DENIED"),
    "not_found": (404, "NOT_FOUND"),
    "rate_limit": (429, "RESOURCE_EXHAUSTED"),
    "server_error": (500, "INTERNAL"),
    "overloaded": (503, "UNAVAILABLE"),
    "timeout": (504, "DEADLINE_EXCEEDED"),
}
_KIND_BY_GOOGLE_STATUS: dict[str, ir.ErrorKind] = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "UNAUTHENTICATED": "authentication",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "INTERNAL": "server_error",
    "UNKNOWN": "server_error",
    "DATA_LOSS": "server_error",
    "ABORTED": "server_error",
    "CANCELLED": "server_error",
    "DEADLINE_EXCEEDED": "timeout",
}

_MAGIC_MIME = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"),
               ("UklGR", "image/webp"), ("JVBERi0", "application/pdf"))
_SKIP_SIGNATURE_CHECK = "skip_thought_signature_validator"
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_DATA_URL = re.compile(r"^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$", re.DOTALL)

# ----------------------------------------------------------------- small helpers


def _wire_extra(extra: dict[str, Any] | None) -> dict[str, Any]:
    """This dialect's share of a part's ``extra``."""
    if not extra:
        return {}
    value = extra.get(NAME)
    return value if isinstance(value, dict) else {}


def _public(gem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in gem.items() if not k.startswith("_")}


def _as_extra(gem: dict[str, Any]) -> dict[str, Any] | None:
    return {NAME: gem} if gem else None


def _leftover(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {_camel(k): v for k, v in obj.items() if k not in known}






def _opt_number(obj: dict[str, Any], key: str, where: str) -> float | None:
    value = _get(obj, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ir.bad_request(f"{where}.{key} must be a number", f"{where}.{key}")
    return value


def _opt_int(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = _get(obj, key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)  # proto JSON may quote 64-bit integers
    if isinstance(value, bool) or not isinstance(value, int):
        raise ir.bad_request(f"{where}.{key} must be an integer", f"{where}.{key}")
    return value


def _usable_signature(signature: str | None) -> str | None:
    """thoughtSignature is bytes on the wire (base64 in JSON); a signature from
    another provider that is not base64 would make the request or the client's
    SDK fail, so it is left out."""
    if signature and len(signature) % 4 == 0 and _BASE64.match(signature):
        return signature
    return None


def _sniff_mime(data: str, fallback: str) -> str:
    for prefix, mime in _MAGIC_MIME:
        if data.startswith(prefix):
            return mime
    return fallback


def _model_id(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def _is_gemini_3(model: str) -> bool:
    return _model_id(model).startswith("gemini-3")


def _args_object(arguments: str) -> dict[str, Any]:
    """``functionCall.args`` must be an object; a client's malformed history is kept, not rejected."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _raw_part_text(part: dict[str, Any]) -> str:
    code = _get(part, "executableCode")
    if isinstance(code, dict):
        language = str(code.get("language") or "").lower()
        if language == "language_unspecified":
            language = ""
        return f"```{language}\n{code.get('code') or ''}\n```"
    result = _get(part, "codeExecutionResult")
    if isinstance(result, dict):
        return str(result.get("output") or f"[code execution: {result.get('outcome', 'unknown')}]")
    return ""


# ----------------------------------------------------------------- wire -> IR parts


_TEXT_PART_KEYS = frozenset({"text"})
_THOUGHT_PART_KEYS = _known("text", "thought", "thoughtSignature")
_CALL_PART_KEYS = _known("functionCall")
_RESULT_KEYS = ("result", "output")  # Gemini CLI answers with {"output": ...}


class _PartReader:
    """Wire parts -> IR parts, synthesising missing tool-call ids consistently."""

    __slots__ = ("counter", "orphans", "output", "pending", "salt")

    def __init__(self, salt: str = "", output: bool = False) -> None:
        self.salt = salt
        self.output = output  # model output: media parts have no IR form there
        self.counter = 0
        self.pending: dict[str, deque[str]] = {}
        self.orphans: list[str] = []

    def synth_id(self, name: str) -> str:
        call_id = ids.safe_tool_id(f"call_{name}_{self.salt}{self.counter}")
        self.counter += 1
        return call_id

    def part(self, raw: Any, where: str) -> ir.Part:
        part = _require_dict(raw, where)
        call = _get(part, "functionCall")
        if call is not None:
            return self.function_call(part, _require_dict(call, f"{where}.functionCall"), where)
        response = _get(part, "functionResponse")
        if response is not None and not self.output:
            return self.function_response(_require_dict(response, f"{where}.functionResponse"), where)
        if "text" in part:
            text = part["text"]
            if not isinstance(text, str):
                raise ir.bad_request(f"{where}.text must be a string", f"{where}.text")
            if part.get("thought") is True:
                signature = _get(part, "thoughtSignature")
                gem = _leftover(part, _THOUGHT_PART_KEYS)
                return ir.ThinkingPart(text=text, signature=signature if isinstance(signature, str) else None,
                                       extra=_as_extra(gem) if self.output else {NAME: gem})
            return ir.TextPart(text=text, extra=_as_extra(_leftover(part, _TEXT_PART_KEYS)))
        if self.output:
            return ir.TextPart(text=_raw_part_text(part), extra={NAME: {"_part": part}})
        blob = _get(part, "inlineData")
        if blob is not None:
            return _blob_part(_require_dict(blob, f"{where}.inlineData"), f"{where}.inlineData")
        file_data = _get(part, "fileData")
        if file_data is not None:
            return _file_part(_require_dict(file_data, f"{where}.fileData"), f"{where}.fileData")
        return ir.TextPart(text=_raw_part_text(part), extra={NAME: {"_part": part}})

    def function_call(self, part: dict[str, Any], call: dict[str, Any], where: str) -> ir.ToolCallPart:
        name = call.get("name")
        if not isinstance(name, str) or not name:
            raise ir.bad_request(f"{where}.functionCall.name is required", f"{where}.functionCall.name")
        args = call.get("args")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ir.bad_request(f"{where}.functionCall.args must be an object", f"{where}.functionCall.args")
        gem = _leftover(part, _CALL_PART_KEYS)
        call_id = call.get("id")
        if not call_id:
            call_id = self.synth_id(name)
            gem["_synthetic_id"] = True
            self.pending.setdefault(name, deque()).append(call_id)
        elif not isinstance(call_id, str):
            raise ir.bad_request(f"{where}.functionCall.id must be a string", f"{where}.functionCall.id")
        # Calls parsed from a client's request always carry a (maybe empty) Gemini extra:
        # it tells the renderer the client manages its own thought signatures.
        return ir.ToolCallPart(id=call_id, name=name, arguments=orjson.dumps(args).decode(),
                               extra=_as_extra(gem) if self.output else {NAME: gem})

    def function_response(self, response: dict[str, Any], where: str) -> ir.ToolResultPart:
        name = response.get("name")
        if not isinstance(name, str) or not name:
            raise ir.bad_request(f"{where}.functionResponse.name is required", f"{where}.functionResponse.name")
        result_id = response.get("id")
        if not result_id:
            waiting = self.pending.get(name)
            if waiting:
                result_id = waiting.popleft()
            else:
                result_id = self.synth_id(name)
                self.orphans.append(result_id)
        elif not isinstance(result_id, str):
            raise ir.bad_request(f"{where}.functionResponse.id must be a string", f"{where}.functionResponse.id")
        payload = response.get("response")
        payload = _require_dict({} if payload is None else payload, f"{where}.functionResponse.response")
        content, is_error = _result_content(payload)
        media = response.get("parts")
        if media is not None:
            for j, item in enumerate(_require_list(media, f"{where}.functionResponse.parts")):
                item = _require_dict(item, f"{where}.functionResponse.parts[{j}]")
                blob, file_data = _get(item, "inlineData"), _get(item, "fileData")
                if isinstance(blob, dict):
                    content.append(_blob_part(blob, f"{where}.functionResponse.parts[{j}].inlineData"))
                elif isinstance(file_data, dict):
                    content.append(_file_part(file_data, f"{where}.functionResponse.parts[{j}].fileData"))
        return ir.ToolResultPart(tool_call_id=result_id, content=content, is_error=is_error, name=name)


def _result_content(payload: dict[str, Any]) -> tuple[list[ir.TextPart | ir.ImagePart | ir.DocumentPart], bool]:
    if len(payload) == 1:
        key, value = next(iter(payload.items()))
        if isinstance(value, str) and key in _RESULT_KEYS:
            extra = None if key == "result" else {NAME: {"_result_key": key}}
            return [ir.TextPart(text=value, extra=extra)], False
        if isinstance(value, str) and key == "error":
            return [ir.TextPart(text=value)], True
    text = orjson.dumps(payload).decode()
    return [ir.TextPart(text=text, extra={NAME: {"_response_object": True}})], set(payload) == {"error"}


def _blob_part(blob: dict[str, Any], where: str) -> ir.ImagePart | ir.DocumentPart:
    data = blob.get("data")
    if not isinstance(data, str):
        raise ir.bad_request(f"{where}.data must be base64 text", f"{where}.data")
    mime = _get(blob, "mimeType")
    mime = mime if isinstance(mime, str) else None
    if mime is not None and mime.startswith("image/"):
        return ir.ImagePart(media_type=mime, data=data)
    name = _get(blob, "displayName")
    return ir.DocumentPart(media_type=mime, data=data, filename=name if isinstance(name, str) else None)


def _file_part(file_data: dict[str, Any], where: str) -> ir.ImagePart | ir.DocumentPart:
    uri = _get(file_data, "fileUri")
    if not isinstance(uri, str) or not uri:
        raise ir.bad_request(f"{where}.fileUri is required", f"{where}.fileUri")
    mime = _get(file_data, "mimeType")
    mime = mime if isinstance(mime, str) else None
    if mime is not None and mime.startswith("image/"):
        return ir.ImagePart(media_type=mime, url=uri)
    name = _get(file_data, "displayName")
    return ir.DocumentPart(media_type=mime, url=uri, filename=name if isinstance(name, str) else None)


# ----------------------------------------------------------------- request parsing


def _parse_request(body: Any, model: str | None, stream: bool | None) -> ir.Request:
    body = _require_dict(body, "request body")
    model_name = model or body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("model is required (Gemini takes it from the URL path)", "model")
    if model_name.startswith("models/"):
        model_name = model_name[len("models/"):]
    request = ir.Request(model=model_name, stream=bool(stream))
    extra: dict[str, Any] = _leftover(body, _REQUEST_KEYS)
    meta: dict[str, Any] = {}

    reader = _PartReader()
    contents = body.get("contents")
    if contents is None:
        raise ir.bad_request("contents is required", "contents")
    for i, content in enumerate(_require_list(contents, "contents")):
        request.messages.append(_parse_content(content, f"contents[{i}]", reader))
    if reader.orphans:
        meta["orphan_ids"] = reader.orphans

    system = _get(body, "systemInstruction")
    if system is not None:
        _parse_system(system, request, extra)
    tools = body.get("tools")
    if tools is not None:
        request.tools = _parse_tools(_require_list(tools, "tools"), meta)
    tool_config = _get(body, "toolConfig")
    if tool_config is not None:
        _parse_tool_config(_require_dict(tool_config, "toolConfig"), request, extra, meta)
    generation = _get(body, "generationConfig")
    if generation is not None:
        _parse_generation_config(_require_dict(generation, "generationConfig"), request, extra, meta)

    if meta:
        extra[_META] = meta
    if extra:
        request.extra[NAME] = extra
    return request


def _parse_content(raw: Any, where: str, reader: _PartReader) -> ir.Message:
    content = _require_dict(raw, where)
    role = content.get("role") or "user"
    if role == "model":
        ir_role: ir.Role = "assistant"
    elif role in ("user", "function"):
        ir_role = "user"
    else:
        raise ir.bad_request(f"{where}.role must be 'user' or 'model', got {role!r}", f"{where}.role")
    parts = content.get("parts")
    raw_parts = [] if parts is None else _require_list(parts, f"{where}.parts")
    return ir.Message(role=ir_role, parts=[reader.part(p, f"{where}.parts[{j}]") for j, p in enumerate(raw_parts)])


def _parse_system(system: Any, request: ir.Request, extra: dict[str, Any]) -> None:
    if isinstance(system, str):
        request.system = [ir.TextPart(text=system)]
        return
    system = _require_dict(system, "systemInstruction")
    parts = system.get("parts") or []
    for j, part in enumerate(_require_list(parts, "systemInstruction.parts")):
        part = _require_dict(part, f"systemInstruction.parts[{j}]")
        if isinstance(part.get("text"), str):
            request.system.append(ir.TextPart(text=part["text"]))
    if system.get("role") is not None:
        extra["systemInstruction"] = {"role": system["role"]}


def _parse_tools(tools: list[Any], meta: dict[str, Any]) -> list[ir.Tool]:
    out: list[ir.Tool] = []
    for i, entry in enumerate(tools):
        for key, value in _require_dict(entry, f"tools[{i}]").items():
            key = _camel(key)
            if key != "functionDeclarations":
                out.append(ir.Tool(name=key, kind=f"{NAME}:{key}", raw={key: value}))
                continue
            for j, declaration in enumerate(_require_list(value, f"tools[{i}].functionDeclarations")):
                out.append(_parse_declaration(declaration, f"tools[{i}].functionDeclarations[{j}]", meta))
    return out


def _parse_declaration(raw: Any, where: str, meta: dict[str, Any]) -> ir.Tool:
    declaration = _require_dict(raw, where)
    name = declaration.get("name")
    if not isinstance(name, str) or not name:
        raise ir.bad_request(f"{where}.name is required", f"{where}.name")
    description = declaration.get("description")
    if description is not None and not isinstance(description, str):
        raise ir.bad_request(f"{where}.description must be a string", f"{where}.description")
    parameters: dict[str, Any] | None = None
    json_schema = _get(declaration, "parametersJsonSchema")
    openapi = declaration.get("parameters")
    if json_schema is not None:
        parameters = _require_dict(json_schema, f"{where}.parametersJsonSchema")
        meta.setdefault("json_schema_functions", []).append(name)
    elif openapi is not None:
        parameters = to_json_schema(_require_dict(openapi, f"{where}.parameters"))
        meta.setdefault("parameters", {})[name] = openapi
    others = _leftover(declaration, _DECLARATION_KEYS)
    if others:
        meta.setdefault("function_fields", {})[name] = others
    return ir.Tool(name=name, description=description, parameters=parameters)


def _parse_tool_config(config: dict[str, Any], request: ir.Request, extra: dict[str, Any],
                       meta: dict[str, Any]) -> None:
    partial = _leftover(config, _known("functionCallingConfig"))
    calling = _get(config, "functionCallingConfig")
    if calling is not None:
        calling = _require_dict(calling, "toolConfig.functionCallingConfig")
        mode = calling.get("mode")
        allowed = _get(calling, "allowedFunctionNames")
        if mode is not None and not isinstance(mode, str):
            raise ir.bad_request("toolConfig.functionCallingConfig.mode must be a string",
                                 "toolConfig.functionCallingConfig.mode")
        choice = _MODE_TO_CHOICE.get((mode or "AUTO").upper())
        if choice is None:
            raise ir.bad_request(f"unknown functionCallingConfig.mode {mode!r}", "toolConfig.functionCallingConfig.mode")
        calling_partial = _leftover(calling, _known("mode", "allowedFunctionNames"))
        if choice == "required" and isinstance(allowed, list) and len(allowed) == 1 and isinstance(allowed[0], str):
            request.tool_choice = ir.ToolChoice(mode="tool", name=allowed[0])
        else:
            request.tool_choice = ir.ToolChoice(mode=choice)
            if allowed is not None:
                calling_partial["allowedFunctionNames"] = allowed
        if mode is not None:
            meta["fc_mode"] = mode
        if calling_partial:
            partial["functionCallingConfig"] = calling_partial
    if partial:
        extra["toolConfig"] = partial


def _parse_generation_config(config: dict[str, Any], request: ir.Request, extra: dict[str, Any],
                             meta: dict[str, Any]) -> None:
    where = "generationConfig"
    partial = _leftover(config, _GENERATION_KEYS)
    request.temperature = _opt_number(config, "temperature", where)
    request.top_p = _opt_number(config, "topP", where)
    request.top_k = _opt_int(config, "topK", where)
    request.max_tokens = _opt_int(config, "maxOutputTokens", where)
    request.n = _opt_int(config, "candidateCount", where)
    request.seed = _opt_int(config, "seed", where)
    request.presence_penalty = _opt_number(config, "presencePenalty", where)
    request.frequency_penalty = _opt_number(config, "frequencyPenalty", where)
    stop = _get(config, "stopSequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ir.bad_request(f"{where}.stopSequences must be an array of strings", f"{where}.stopSequences")
        request.stop = list(stop)
    _parse_response_format(config, request, partial, meta)
    thinking = _get(config, "thinkingConfig")
    if thinking is not None:
        _parse_thinking(_require_dict(thinking, f"{where}.thinkingConfig"), request, partial)
    if partial:
        extra["generationConfig"] = partial


def _parse_response_format(config: dict[str, Any], request: ir.Request, partial: dict[str, Any],
                           meta: dict[str, Any]) -> None:
    mime = _get(config, "responseMimeType")
    schema = _get(config, "responseSchema")
    json_schema = _get(config, "responseJsonSchema")
    if mime == "application/json":
        if json_schema is not None:
            request.response_format = ir.ResponseFormat(type="json_schema", schema=json_schema)
            meta["response_json_schema"] = True
        elif schema is not None:
            request.response_format = ir.ResponseFormat(
                type="json_schema", schema=to_json_schema(_require_dict(schema, "generationConfig.responseSchema")))
            meta["response_schema"] = schema
        else:
            request.response_format = ir.ResponseFormat(type="json_object")
        return
    if mime == "text/plain" and schema is None and json_schema is None:
        request.response_format = ir.ResponseFormat(type="text")
        return
    # Enum output (text/x.enum) and other shapes the IR cannot express stay as they came.
    for key, value in (("responseMimeType", mime), ("responseSchema", schema), ("responseJsonSchema", json_schema)):
        if value is not None:
            partial[key] = value


def _parse_thinking(thinking: dict[str, Any], request: ir.Request, partial: dict[str, Any]) -> None:
    where = "generationConfig.thinkingConfig"
    budget = _opt_int(thinking, "thinkingBudget", where)
    level = _get(thinking, "thinkingLevel")
    effort: str | None = None
    if level is not None:
        if not isinstance(level, str):
            raise ir.bad_request(f"{where}.thinkingLevel must be a string", f"{where}.thinkingLevel")
        effort = level.lower()
        if effort == "thinking_level_unspecified":
            effort = None
        elif effort not in reasoning.LEVEL_BUDGETS:
            raise ir.bad_request(f"unknown thinkingLevel {level!r}", f"{where}.thinkingLevel")
    include = _get(thinking, "includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise ir.bad_request(f"{where}.includeThoughts must be a boolean", f"{where}.includeThoughts")
    others = _leftover(thinking, _THINKING_KEYS)
    if budget is None and effort is None and include is None:
        partial["thinkingConfig"] = thinking
        return
    request.reasoning = ir.Reasoning(effort=effort, budget=budget, include_thoughts=include)
    if others:
        partial["thinkingConfig"] = others


# ----------------------------------------------------------------- request rendering


def _render_request(request: ir.Request) -> dict[str, Any]:
    extra = dict(request.extra.get(NAME) or {})
    meta: dict[str, Any] = extra.pop(_META, None) or {}
    contents, leading_system = _render_contents(request, meta)
    body: dict[str, Any] = {"contents": contents}
    system = [{"text": p.text} for p in request.system if p.text] + [{"text": t} for t in leading_system]
    if system:
        body["systemInstruction"] = {"parts": system}
    else:
        extra.pop("systemInstruction", None)
    tools, has_functions = _render_tools(request.tools, meta)
    if tools:
        body["tools"] = tools
    if request.tool_choice is not None and has_functions:
        body["toolConfig"] = {"functionCallingConfig": _render_tool_choice(request.tool_choice, meta)}
    generation = _render_generation_config(request, meta)
    if generation:
        body["generationConfig"] = generation
    _merge_under(body, extra)
    return body


def _merge_under(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Fill ``target`` with ``extra``'s fields it lacks; values already rendered from the IR win."""
    for key, value in extra.items():
        current = target.get(key)
        if current is None:
            # A copy: whoever edits the rendered body must not edit the IR (retries render again).
            target[key] = _copy_json(value)
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge_under(current, value)


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _render_contents(request: ir.Request, meta: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    calls: dict[str, tuple[str, bool]] = {}  # tool-call id -> (function name, id was synthesised)
    hidden_ids = set(meta.get("orphan_ids") or ())
    gemini_3 = _is_gemini_3(request.model)
    contents: list[dict[str, Any]] = []
    leading_system: list[str] = []
    for message in request.messages:
        if message.role == "system":
            texts = [p.text for p in message.parts if isinstance(p, ir.TextPart) and p.text]
            if not contents:
                leading_system.extend(texts)
                continue
            role = "user"
            parts = [{"text": text} for text in texts]
        else:
            role = "model" if message.role == "assistant" else "user"
            parts = []
            for part in message.parts:
                _render_part(part, parts, calls, hidden_ids, gemini_3)
            if role == "model" and gemini_3:
                _sign_first_call(message.parts, parts)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents, leading_system


def _sign_first_call(source: list[ir.Part], rendered: list[dict[str, Any]]) -> None:
    """Gemini 3 rejects a model turn whose first functionCall has no thoughtSignature.
    Calls from another dialect's history never have one (and the model never produced
    them), so they get the documented sentinel that skips the check. A Gemini client's
    own calls are left as the client sent them."""
    first = next((p for p in source if isinstance(p, ir.ToolCallPart)), None)
    if first is None or NAME in (first.extra or {}):
        return
    for part in rendered:
        if "functionCall" in part:
            part.setdefault("thoughtSignature", _SKIP_SIGNATURE_CHECK)
            return


def _render_part(part: ir.Part, out: list[dict[str, Any]], calls: dict[str, tuple[str, bool]],
                 hidden_ids: set[str], gemini_3: bool) -> None:
    if isinstance(part, ir.TextPart):
        rendered = _text_part(part)
        if rendered is not None:
            out.append(rendered)
    elif isinstance(part, ir.ThinkingPart):
        # Another provider's signature would fail Gemini's validation: only the text goes.
        thought = _thought_part(part, keep_signature=NAME in (part.extra or {}))
        if thought is not None:
            out.append(thought)
    elif isinstance(part, ir.ToolCallPart):
        synthetic = bool(_wire_extra(part.extra).get("_synthetic_id"))
        calls[part.id] = (part.name, synthetic)
        out.append(_call_part(part))
    elif isinstance(part, ir.ToolResultPart):
        out.extend(_result_parts(part, calls, hidden_ids, gemini_3))
    else:
        media = _media_part(part)
        if media is not None:
            out.append(media)


def _text_part(part: ir.TextPart) -> dict[str, Any] | None:
    gem = _wire_extra(part.extra)
    raw = gem.get("_part")
    if isinstance(raw, dict):
        return raw
    wire = _public(gem)
    if not part.text and not wire:
        return None  # Gemini rejects empty text parts
    return {"text": part.text, **wire}


def _thought_part(part: ir.ThinkingPart, keep_signature: bool = True) -> dict[str, Any] | None:
    # Redacted/encrypted reasoning from other providers has no Gemini form.
    signature = _usable_signature(part.signature) if keep_signature else None
    if not part.text and not signature:
        return None
    rendered: dict[str, Any] = {"text": part.text, "thought": True}
    if signature:
        rendered["thoughtSignature"] = signature
    rendered.update(_public(_wire_extra(part.extra)))
    return rendered


def _call_part(part: ir.ToolCallPart) -> dict[str, Any]:
    gem = _wire_extra(part.extra)
    call: dict[str, Any] = {"name": part.name, "args": _args_object(part.arguments)}
    if not gem.get("_synthetic_id"):
        call["id"] = part.id
    return {"functionCall": call, **_public(gem)}


def _result_parts(part: ir.ToolResultPart, calls: dict[str, tuple[str, bool]], hidden_ids: set[str],
                  multimodal: bool) -> list[dict[str, Any]]:
    known = calls.get(part.tool_call_id)
    name = part.name or (known[0] if known else None)
    if not name:
        raise ir.bad_request(
            f"tool result {part.tool_call_id!r} has no matching tool call; Gemini needs the function name",
            "messages")
    texts = [p for p in part.content if isinstance(p, ir.TextPart)]
    media = [m for m in (_media_part(p) for p in part.content if not isinstance(p, ir.TextPart)) if m]
    response: dict[str, Any] = {"name": name, "response": _result_payload(texts, part.is_error)}
    if not (known and known[1]) and part.tool_call_id not in hidden_ids:
        response["id"] = part.tool_call_id
    if media and multimodal:
        response["parts"] = media
        return [{"functionResponse": response}]
    return [{"functionResponse": response}, *media]


def _result_payload(texts: list[ir.TextPart], is_error: bool) -> dict[str, Any]:
    if len(texts) == 1:
        gem = _wire_extra(texts[0].extra)
        if gem.get("_response_object"):
            try:
                value = orjson.loads(texts[0].text)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                return value
        key = gem.get("_result_key")
        if isinstance(key, str) and not is_error:
            return {key: texts[0].text}
    text = "\n".join(p.text for p in texts)
    return {"error": text} if is_error else {"result": text}


def _media_part(part: ir.Part) -> dict[str, Any] | None:
    if not isinstance(part, ir.ImagePart | ir.DocumentPart):
        return None
    fallback = "image/jpeg" if isinstance(part, ir.ImagePart) else "application/pdf"
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or _sniff_mime(part.data, fallback), "data": part.data}}
    if not part.url:
        return None
    match = _DATA_URL.match(part.url)
    if match:
        data = match.group(2)
        return {"inlineData": {"mimeType": match.group(1) or part.media_type or _sniff_mime(data, fallback),
                               "data": data}}
    mime = part.media_type or mimetypes.guess_type(part.url)[0] or fallback
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _render_tools(tools: list[ir.Tool], meta: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    out: list[dict[str, Any]] = []
    declarations: list[dict[str, Any]] | None = None
    for tool in tools:
        if tool.kind == "function":
            if declarations is None:
                declarations = []
                out.append({"functionDeclarations": declarations})
            declarations.append(_render_declaration(tool, meta))
        elif tool.kind.startswith(f"{NAME}:") and tool.raw is not None:
            out.append(tool.raw)
        # Provider tools of other dialects have no Gemini equivalent: dropped.
    return out, declarations is not None


def _render_declaration(tool: ir.Tool, meta: dict[str, Any]) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    if tool.parameters is not None:
        original = (meta.get("parameters") or {}).get(tool.name)
        if tool.name in (meta.get("json_schema_functions") or ()):
            declaration["parametersJsonSchema"] = tool.parameters
        elif original is not None:
            declaration["parameters"] = original
        else:
            cleaned = clean_schema(tool.parameters)
            if cleaned.get("type") == "OBJECT" and cleaned.get("properties"):
                declaration["parameters"] = cleaned
            elif "anyOf" in cleaned:
                # A union at the root has no OBJECT form; JSON Schema can say it.
                declaration["parametersJsonSchema"] = tool.parameters
            # else: no parameters — Gemini rejects an OBJECT with empty properties.
    extra_fields = (meta.get("function_fields") or {}).get(tool.name)
    if extra_fields:
        _merge_under(declaration, extra_fields)
    return declaration


def _render_tool_choice(choice: ir.ToolChoice, meta: dict[str, Any]) -> dict[str, Any]:
    mode = _CHOICE_TO_MODE[choice.mode]
    original = meta.get("fc_mode")
    if isinstance(original, str) and _CHOICE_TO_MODE.get(_MODE_TO_CHOICE.get(original.upper(), "")) == mode:
        mode = original  # keep VALIDATED, or the client's spelling
    calling: dict[str, Any] = {"mode": mode}
    if choice.mode == "tool" and choice.name:
        calling["allowedFunctionNames"] = [choice.name]
    return calling


def _render_generation_config(request: ir.Request, meta: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in (
        ("temperature", request.temperature), ("topP", request.top_p), ("topK", request.top_k),
        ("maxOutputTokens", request.max_tokens), ("candidateCount", request.n), ("seed", request.seed),
        ("presencePenalty", request.presence_penalty), ("frequencyPenalty", request.frequency_penalty),
    ):
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.response_format is not None:
        _render_response_format(request.response_format, config, meta)
    if request.reasoning is not None:
        thinking = _render_thinking(request.reasoning, request.model)
        if thinking:
            config["thinkingConfig"] = thinking
    return config


def _render_response_format(fmt: ir.ResponseFormat, config: dict[str, Any], meta: dict[str, Any]) -> None:
    if fmt.type == "text":
        config["responseMimeType"] = "text/plain"
        return
    config["responseMimeType"] = "application/json"
    if fmt.type != "json_schema" or fmt.schema is None:
        return
    if meta.get("response_json_schema"):
        config["responseJsonSchema"] = fmt.schema
    elif meta.get("response_schema") is not None:
        config["responseSchema"] = meta["response_schema"]
    else:
        cleaned = clean_schema(fmt.schema)
        if cleaned:
            config["responseSchema"] = cleaned


def _render_thinking(setting: ir.Reasoning, model: str) -> dict[str, Any]:
    thinking: dict[str, Any] = {}
    if setting.effort is not None:
        effort = setting.effort.lower()
        if effort in ("none", "auto"):
            thinking["thinkingBudget"] = reasoning.LEVEL_BUDGETS[effort]
        elif _is_gemini_3(model) and effort in reasoning.GEMINI_LEVELS:
            thinking["thinkingLevel"] = reasoning.GEMINI_LEVELS[effort]
        else:
            thinking["thinkingBudget"] = reasoning.budget_for_level(effort)
    elif setting.budget is not None:
        thinking["thinkingBudget"] = setting.budget
    elif setting.adaptive:
        thinking["thinkingBudget"] = reasoning.LEVEL_BUDGETS["auto"]
    if setting.include_thoughts is not None:
        thinking["includeThoughts"] = setting.include_thoughts
    elif thinking and thinking.get("thinkingBudget") != 0:
        thinking["includeThoughts"] = True
    return thinking


# ----------------------------------------------------------------- responses


def _stop_reason(finish: Any, has_calls: bool) -> ir.StopReason | None:
    if not isinstance(finish, str) or finish == "FINISH_REASON_UNSPECIFIED":
        return None
    stop = _FINISH_TO_STOP.get(finish.upper(), "end_turn")
    return "tool_use" if stop == "end_turn" and has_calls else stop


def _parse_usage(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = _get(raw, "promptTokenCount")
    candidates = _get(raw, "candidatesTokenCount")
    thoughts = _get(raw, "thoughtsTokenCount")
    cached = _get(raw, "cachedContentTokenCount")
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return ir.Usage(input_tokens=prompt, output_tokens=output, cache_read_tokens=cached, reasoning_tokens=thoughts)


def _render_usage(usage: ir.Usage, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if usage.input_tokens is not None:
        rendered["promptTokenCount"] = usage.input_tokens
    if usage.output_tokens is not None:
        rendered["candidatesTokenCount"] = max(usage.output_tokens - (usage.reasoning_tokens or 0), 0)
    if usage.reasoning_tokens is not None:
        rendered["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cache_read_tokens is not None:
        rendered["cachedContentTokenCount"] = usage.cache_read_tokens
    if extra:
        _merge_under(rendered, extra)
    counted = [rendered[k] for k in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
                                     "toolUsePromptTokenCount") if isinstance(rendered.get(k), int)]
    if counted:
        rendered["totalTokenCount"] = sum(counted)
    return rendered


def _upstream_error(message: str) -> ir.Error:
    return ir.Error(502, "server_error", message)


def _parse_response(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise _upstream_error("upstream Gemini response is not a JSON object")
    if isinstance(body.get("error"), dict) and "candidates" not in body:
        raise _error_from_object(body["error"], 502)
    gem: dict[str, Any] = _leftover(body, _RESPONSE_KEYS)
    usage_raw = _get(body, "usageMetadata")
    usage = _parse_usage(usage_raw)
    if isinstance(usage_raw, dict):
        usage_extra = _leftover(usage_raw, _USAGE_KEYS)
        if usage_extra:
            gem["usageMetadata"] = usage_extra
    response_id = _get(body, "responseId")
    model = _get(body, "modelVersion")
    response = ir.Response(id=response_id if isinstance(response_id, str) and response_id else ids.new_id(""),
                           model=model if isinstance(model, str) else "", usage=usage)
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates:
        _parse_candidate(candidates[0], response, gem)
        if len(candidates) > 1:
            gem["_candidates"] = candidates[1:]
    else:
        gem["_no_candidates"] = True
        feedback = _get(body, "promptFeedback")
        if isinstance(feedback, dict) and _get(feedback, "blockReason"):
            response.stop_reason = "content_filter"
    if gem:
        response.extra[NAME] = gem
    return response


def _parse_candidate(raw: Any, response: ir.Response, gem: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise _upstream_error("upstream Gemini candidate is not an object")
    candidate_extra = _leftover(raw, _CANDIDATE_KEYS)
    content = raw.get("content")
    if isinstance(content, dict):
        reader = _PartReader(salt=secrets.token_hex(3) + "_", output=True)
        parts = content.get("parts") or []
        try:
            response.parts = [reader.part(p, f"candidates[0].content.parts[{j}]") for j, p in enumerate(parts)]
        except ir.Error as exc:
            raise _upstream_error(f"malformed upstream Gemini part: {exc.message}") from None
    else:
        candidate_extra["_no_content"] = True
    finish = _get(raw, "finishReason")
    has_calls = any(isinstance(p, ir.ToolCallPart) for p in response.parts)
    response.stop_reason = _stop_reason(finish, has_calls)
    if isinstance(finish, str) and _STOP_TO_FINISH.get(response.stop_reason or "") != finish:
        candidate_extra["finishReason"] = finish
    if candidate_extra:
        gem["_candidate"] = candidate_extra


def _render_response(response: ir.Response) -> dict[str, Any]:
    gem = dict(_wire_extra(response.extra))
    body: dict[str, Any] = {}
    candidate_extra = gem.pop("_candidate", None) or {}
    more = gem.pop("_candidates", None)
    no_candidates = gem.pop("_no_candidates", False)
    parts = _output_parts(response.parts)
    if parts or not no_candidates:
        candidate: dict[str, Any] = {}
        if parts or not candidate_extra.get("_no_content"):
            candidate["content"] = {"role": "model", "parts": parts} if parts else {"role": "model"}
        finish = _STOP_TO_FINISH.get(response.stop_reason or "")
        if finish is not None:
            candidate["finishReason"] = finish
        _merge_candidate_extra(candidate, candidate_extra, response.stop_reason)
        body["candidates"] = [candidate, *(more if isinstance(more, list) else ())]
    usage_extra = gem.pop("usageMetadata", None)
    if response.usage is not None:
        body["usageMetadata"] = _render_usage(response.usage, usage_extra)
    body["modelVersion"] = response.model
    body["responseId"] = response.id
    _merge_under(body, gem)
    return body


def _merge_candidate_extra(candidate: dict[str, Any], extra: dict[str, Any], stop: ir.StopReason | None) -> None:
    for key, value in extra.items():
        if key == "finishReason":
            # The original spelling (RECITATION, OTHER...) when it still means the same stop reason.
            if _stop_reason(value, stop == "tool_use") == stop:
                candidate["finishReason"] = value
        elif not key.startswith("_") and key not in candidate:
            candidate[key] = value


def _output_parts(parts: list[ir.Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            rendered = _text_part(part)
        elif isinstance(part, ir.ThinkingPart):
            rendered = _thought_part(part)
        elif isinstance(part, ir.ToolCallPart):
            rendered = _call_part(part)
        else:
            rendered = _media_part(part)
        if rendered is not None:
            out.append(rendered)
    return out


# ----------------------------------------------------------------- errors


def _retry_seconds(value: Any) -> float | None:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", value)
        return float(match.group(1)) if match else None
    if isinstance(value, dict):  # a Duration given as an object
        seconds = value.get("seconds", 0)
        nanos = value.get("nanos", 0)
        try:
            return float(seconds) + float(nanos) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def _error_from_object(error: dict[str, Any], status: int) -> ir.Error:
    code = error.get("code")
    http_status = code if isinstance(code, int) and 400 <= code <= 599 else status
    raw_status, raw_message = error.get("status"), error.get("message")
    google_status = raw_status if isinstance(raw_status, str) else None
    message = raw_message if isinstance(raw_message, str) else ""
    kind = _KIND_BY_GOOGLE_STATUS.get(google_status or "") or ir.kind_for_status(http_status)
    retry_after: float | None = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        type_url = str(detail.get("@type", ""))
        if type_url.endswith("google.rpc.RetryInfo"):
            retry_after = _retry_seconds(detail.get("retryDelay"))
        elif type_url.endswith("google.rpc.ErrorInfo") and detail.get("reason") == "API_KEY_INVALID":
            # Google answers a bad API key with 400 INVALID_ARGUMENT; it is an auth failure.
            kind, http_status = "authentication", 401
    if retry_after is None and kind == "rate_limit":
        hinted = re.search(r"retry in (\d+(?:\.\d+)?)s", message, re.IGNORECASE)
        retry_after = float(hinted.group(1)) if hinted else None
    return ir.Error(status=http_status, kind=kind, message=message or f"upstream returned HTTP {http_status}",
                    retry_after=retry_after, code=google_status)


def _parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # streamGenerateContent without alt=sse
        payload = payload[0]
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return _error_from_object(payload["error"], status)
    text = body.decode("utf-8", errors="replace").strip()[:500] if body else ""
    return ir.Error(status=status, kind=ir.kind_for_status(status),
                    message=text or f"upstream returned HTTP {status}")


def _error_body(error: ir.Error) -> tuple[int, dict[str, Any]]:
    status, google_status = _ERROR_STATUS.get(error.kind, (500, "INTERNAL"))
    if google_status == "INTERNAL" and error.status in (502, 503):
        status, google_status = 503, "UNAVAILABLE"  # an upstream out of reach: the SDK retries UNAVAILABLE
    body: dict[str, Any] = {"code": status, "message": error.message, "status": google_status}
    if error.retry_after is not None:
        delay = f"{error.retry_after:.3f}".rstrip("0").rstrip(".")
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}]
    return status, {"error": body}


# ----------------------------------------------------------------- streams


class GeminiStreamDecoder:
    """Each SSE ``data:`` is a whole GenerateContentResponse; the chunk with a
    ``finishReason`` ends the stream (there is no terminator event)."""

    __slots__ = ("_done", "_kind", "_next", "_open", "_reader", "_saw_call", "_started", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._next = 0
        self._open: int | None = None
        self._kind = ""
        self._usage: dict[str, Any] = {}
        self._saw_call = False
        self._reader = _PartReader(salt=secrets.token_hex(3) + "_", output=True)

    def feed(self, event: str | None, data: str) -> list[ir.Event]:
        if self._done:
            return []
        data = data.strip()
        if not data:
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(_upstream_error("upstream sent invalid JSON in the Gemini stream"))
        if not isinstance(chunk, dict):
            return self._fail(_upstream_error("upstream Gemini stream chunk is not an object"))
        if isinstance(chunk.get("error"), dict):
            return self._fail(_error_from_object(chunk["error"], 500))
        events: list[ir.Event] = []
        if not self._started:
            self._started = True
            response_id = _get(chunk, "responseId")
            model = _get(chunk, "modelVersion")
            events.append(ir.Start(id=response_id if isinstance(response_id, str) and response_id else ids.new_id(""),
                                   model=model if isinstance(model, str) else ""))
        usage = chunk.get("usageMetadata") or chunk.get("usage_metadata")
        if isinstance(usage, dict):
            # Counts are cumulative; later fields win. Parsed once, at the end.
            self._usage.update(usage)
        candidates = chunk.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            candidate = candidates[0]
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            try:
                for part in parts if isinstance(parts, list) else ():
                    self._part(part, events)
            except ir.Error as exc:
                return events + self._fail(_upstream_error(f"malformed upstream Gemini part: {exc.message}"))
            finish = _get(candidate, "finishReason")
            if isinstance(finish, str) and finish:
                self._finish(_stop_reason(finish, self._saw_call), events)
        elif not candidates:
            feedback = _get(chunk, "promptFeedback")
            if isinstance(feedback, dict) and _get(feedback, "blockReason"):
                self._finish("content_filter", events)
        return events

    def close(self) -> list[ir.Event]:
        if self._done:
            return []
        return self._fail(ir.Error(502, "server_error", "upstream stream ended before completion"))

    def _fail(self, error: ir.Error) -> list[ir.Event]:
        self._done = True
        return [ir.ErrorEvent(error)]

    def _finish(self, stop: ir.StopReason | None, events: list[ir.Event]) -> None:
        self._close_open(events)
        events.append(ir.Finish(stop_reason=stop, usage=_parse_usage(self._usage) if self._usage else None))
        self._done = True

    def _close_open(self, events: list[ir.Event]) -> None:
        if self._open is not None:
            events.append(ir.PartStop(self._open))
            self._open = None
            self._kind = ""

    def _start(self, part: ir.TextPart | ir.ThinkingPart | ir.ToolCallPart, events: list[ir.Event]) -> int:
        index = self._next
        self._next += 1
        events.append(ir.PartStart(index, part))
        return index

    def _part(self, raw: Any, events: list[ir.Event]) -> None:
        if isinstance(raw, dict) and len(raw) == 1 and isinstance(raw.get("text"), str):
            self._plain_text(raw["text"], events)  # the common chunk: skip the general reader
            return
        part = self._reader.part(raw, "part")
        if isinstance(part, ir.ToolCallPart):
            self._close_open(events)
            self._saw_call = True
            index = self._start(ir.ToolCallPart(id=part.id, name=part.name, extra=part.extra), events)
            events.append(ir.PartDelta(index, text=part.arguments))
            events.append(ir.PartStop(index))
        elif isinstance(part, ir.ThinkingPart):
            if self._kind != "thinking" or part.extra:
                self._close_open(events)
                self._open = self._start(ir.ThinkingPart(extra=part.extra), events)
                self._kind = "thinking"
            assert self._open is not None
            if part.text:
                events.append(ir.PartDelta(self._open, text=part.text))
            if part.signature:
                events.append(ir.PartDelta(self._open, signature=part.signature))
        elif isinstance(part, ir.TextPart):
            gem = _wire_extra(part.extra)
            if "_part" in gem:
                self._close_open(events)
                index = self._start(ir.TextPart(text="", extra=part.extra), events)
                if part.text:
                    events.append(ir.PartDelta(index, text=part.text))
                events.append(ir.PartStop(index))
                return
            if not gem:
                self._plain_text(part.text, events)
                return
            # A part carrying extra wire keys (a thoughtSignature) starts its own IR part,
            # since PartStart is the only place to attach them.
            self._close_open(events)
            self._open = self._start(ir.TextPart(text="", extra=part.extra), events)
            self._kind = "text"
            if part.text:
                events.append(ir.PartDelta(self._open, text=part.text))

    def _plain_text(self, text: str, events: list[ir.Event]) -> None:
        if self._open is None or self._kind != "text":
            self._close_open(events)
            self._open = self._start(ir.TextPart(text=""), events)
            self._kind = "text"
        if text:
            events.append(ir.PartDelta(self._open, text=text))


_CHUNK_HEAD = b'{"candidates":[{"content":{"role":"model","parts":['


class _OpenPart:
    __slots__ = ("args", "call", "kind", "wire")

    def __init__(self, kind: str, wire: dict[str, Any] | None = None,
                 call: ir.ToolCallPart | None = None) -> None:
        self.kind = kind
        self.wire = wire  # wire keys still to attach to this part's first chunk
        self.call = call
        self.args: list[str] = []


class GeminiStreamEncoder:
    """IR events -> GenerateContentResponse chunks, one per text/thinking delta.

    Tool calls are sent whole (Gemini never streams arguments), so their
    argument fragments are buffered until the call's PartStop. With
    ``sse=False`` the chunks form one JSON array (``streamGenerateContent``
    without ``alt=sse``)."""

    __slots__ = ("_done", "_emitted", "_id", "_model", "_parts", "_sse", "_tail", "_usage")

    def __init__(self, *, model: str, request: ir.Request | None = None, sse: bool = True) -> None:
        self._model = model
        self._sse = sse
        self._id = ""
        self._tail = b""
        self._parts: dict[int, _OpenPart] = {}
        self._usage: ir.Usage | None = None
        self._emitted = False
        self._done = False
        self._set_id(ids.new_id(""))

    def _set_id(self, response_id: str) -> None:
        self._id = response_id
        self._tail = (b']},"index":0}],"modelVersion":' + orjson.dumps(self._model)
                      + b',"responseId":' + orjson.dumps(response_id) + b"}")

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.PartDelta):
            return self._delta(event)
        if isinstance(event, ir.PartStart):
            return self._start(event)
        if isinstance(event, ir.PartStop):
            return self._stop(event.index)
        if isinstance(event, ir.Start):
            if event.id:
                self._set_id(event.id)
            if event.usage is not None:
                self._usage = event.usage
            return b""
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage if self._usage is None else self._usage.merged(event.usage)
            return b""
        if isinstance(event, ir.Finish):
            return self._finish(event)
        if isinstance(event, ir.ErrorEvent):
            self._done = True
            return self._emit(orjson.dumps(_error_body(event.error)[1]))
        return b""

    def close(self) -> bytes:
        if self._sse:
            return b""
        return b"]" if self._emitted else b"[]"

    def _emit(self, payload: bytes) -> bytes:
        if self._sse:
            return sse.frame(payload)
        prefix = b",\r\n" if self._emitted else b"["
        self._emitted = True
        return prefix + payload

    def _part_chunk(self, part: dict[str, Any]) -> bytes:
        return self._emit(_CHUNK_HEAD + orjson.dumps(part) + self._tail)

    def _start(self, event: ir.PartStart) -> bytes:
        part = event.part
        if isinstance(part, ir.ToolCallPart):
            self._parts[event.index] = _OpenPart("call", call=part)
            return b""
        if isinstance(part, ir.ThinkingPart):
            self._parts[event.index] = _OpenPart("thinking", wire=_public(_wire_extra(part.extra)) or None)
            return b""
        gem = _wire_extra(part.extra)
        raw = gem.get("_part")
        if isinstance(raw, dict):
            self._parts[event.index] = _OpenPart("raw")
            return self._part_chunk(raw)
        self._parts[event.index] = _OpenPart("text", wire=_public(gem) or None)
        return b""

    def _delta(self, event: ir.PartDelta) -> bytes:
        state = self._parts.get(event.index)
        if state is None or state.kind == "raw":
            return b""
        if state.kind == "call":
            state.args.append(event.text)
            return b""
        signature = _usable_signature(event.signature) if state.kind == "thinking" else None
        if not event.text and not signature:
            return b""
        part: dict[str, Any] = {"text": event.text}
        if state.kind == "thinking":
            part["thought"] = True
            if signature:
                part["thoughtSignature"] = signature
        if state.wire:
            part.update(state.wire)
            state.wire = None
        return self._part_chunk(part)

    def _stop(self, index: int) -> bytes:
        state = self._parts.pop(index, None)
        if state is None:
            return b""
        if state.kind == "call" and state.call is not None:
            call = ir.ToolCallPart(id=state.call.id, name=state.call.name, arguments="".join(state.args),
                                   extra=state.call.extra)
            return self._part_chunk(_call_part(call))
        if state.wire:  # e.g. a thoughtSignature on a part whose text was empty
            part: dict[str, Any] = {"text": ""}
            if state.kind == "thinking":
                part["thought"] = True
            part.update(state.wire)
            return self._part_chunk(part)
        return b""

    def _finish(self, event: ir.Finish) -> bytes:
        self._done = True
        usage = self._usage
        if event.usage is not None:
            usage = event.usage if usage is None else usage.merged(event.usage)
        chunk: dict[str, Any] = {
            "candidates": [{"finishReason": _STOP_TO_FINISH.get(event.stop_reason or "", "STOP"), "index": 0}],
        }
        if usage is not None:
            chunk["usageMetadata"] = _render_usage(usage)
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        return self._emit(orjson.dumps(chunk))


# ----------------------------------------------------------------- the dialect


class GeminiDialect:
    stream_terminators: tuple[bytes, ...] = (b"finishReason", b"finish_reason")
    needs_inline_images = True
    name = NAME

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        return _parse_request(body, model, stream)

    def render_request(self, request: ir.Request) -> dict[str, Any]:
        return _render_request(request)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return _parse_response(body)

    def render_response(self, response: ir.Response) -> dict[str, Any]:
        return _render_response(response)

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(model=model, request=request, sse=sse)

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        return _parse_error(status, body)

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]:
        return _error_body(error)


DIALECT = GeminiDialect()
