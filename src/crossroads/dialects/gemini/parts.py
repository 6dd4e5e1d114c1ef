"""Gemini content parts and messages <-> IR parts."""

from __future__ import annotations

import mimetypes
from collections import deque
from typing import Any

import orjson

from crossroads import ids, ir
from crossroads.dialects.gemini.tables import BASE64, NAME, SKIP_SIGNATURE_CHECK, camel, get, known
from crossroads.dialects.kit.extras import own, wrap
from crossroads.dialects.kit.fields import optional_str, require_dict, require_list, require_str
from crossroads.dialects.kit.media import guess_type, media_type, split_data_url, standard_b64


def public(gem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in gem.items() if not k.startswith("_")}


def leftover(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {camel(k): v for k, v in obj.items() if k not in known}


def usable_signature(signature: str | None) -> str | None:
    """thoughtSignature is bytes on the wire (base64 in JSON); a signature from
    another provider that is not base64 would make the request or the client's
    SDK fail, so it is left out."""
    if signature and len(signature) % 4 == 0 and BASE64.match(signature):
        return signature
    return None


def _model_id(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def is_gemini_3(model: str) -> bool:
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
    code = get(part, "executableCode")
    if isinstance(code, dict):
        language = str(code.get("language") or "").lower()
        if language == "language_unspecified":
            language = ""
        return f"```{language}\n{code.get('code') or ''}\n```"
    result = get(part, "codeExecutionResult")
    if isinstance(result, dict):
        return str(result.get("output") or f"[code execution: {result.get('outcome', 'unknown')}]")
    return ""


_TEXT_PART_KEYS = frozenset({"text"})


_THOUGHT_PART_KEYS = known("text", "thought", "thoughtSignature")


_CALL_PART_KEYS = known("functionCall")


_RESULT_KEYS = ("result", "output")  # Gemini CLI answers with {"output": ...}


class PartReader:
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
        part = require_dict(raw, where)
        call = get(part, "functionCall")
        if call is not None:
            return self.function_call(part, require_dict(call, f"{where}.functionCall"), where)
        response = get(part, "functionResponse")
        if response is not None and not self.output:
            return self.function_response(require_dict(response, f"{where}.functionResponse"), where)
        if "text" in part:
            text = part["text"]
            if not isinstance(text, str):
                raise ir.bad_request(f"{where}.text must be a string", f"{where}.text")
            if part.get("thought") is True:
                signature = get(part, "thoughtSignature")
                gem = leftover(part, _THOUGHT_PART_KEYS)
                return ir.ThinkingPart(text=text, signature=signature if isinstance(signature, str) else None,
                                       extra=wrap(NAME, gem) if self.output else {NAME: gem})
            return ir.TextPart(text=text, extra=wrap(NAME, leftover(part, _TEXT_PART_KEYS)))
        if self.output:
            return ir.TextPart(text=_raw_part_text(part), extra={NAME: {"_part": part}})
        blob = get(part, "inlineData")
        if blob is not None:
            return _blob_part(require_dict(blob, f"{where}.inlineData"), f"{where}.inlineData")
        file_data = get(part, "fileData")
        if file_data is not None:
            return _file_part(require_dict(file_data, f"{where}.fileData"), f"{where}.fileData")
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
        gem = leftover(part, _CALL_PART_KEYS)
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
                               extra=wrap(NAME, gem) if self.output else {NAME: gem})

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
        payload = require_dict({} if payload is None else payload, f"{where}.functionResponse.response")
        content, is_error = _result_content(payload)
        media = response.get("parts")
        if media is not None:
            for j, item in enumerate(require_list(media, f"{where}.functionResponse.parts")):
                item = require_dict(item, f"{where}.functionResponse.parts[{j}]")
                blob, file_data = get(item, "inlineData"), get(item, "fileData")
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
    data = standard_b64(require_str(blob.get("data"), f"{where}.data"), f"{where}.data")
    mime = guess_type(optional_str(get(blob, "mimeType"), f"{where}.mimeType"), data)
    if mime is not None and mime.startswith("image/"):
        return ir.ImagePart(media_type=mime, data=data)
    name = get(blob, "displayName")
    return ir.DocumentPart(media_type=mime, data=data, filename=name if isinstance(name, str) else None)


def _file_part(file_data: dict[str, Any], where: str) -> ir.ImagePart | ir.DocumentPart:
    uri = get(file_data, "fileUri")
    if not isinstance(uri, str) or not uri:
        raise ir.bad_request(f"{where}.fileUri is required", f"{where}.fileUri")
    mime = get(file_data, "mimeType")
    mime = mime if isinstance(mime, str) else None
    if mime is not None and mime.startswith("image/"):
        return ir.ImagePart(media_type=mime, url=uri)
    name = get(file_data, "displayName")
    return ir.DocumentPart(media_type=mime, url=uri, filename=name if isinstance(name, str) else None)


def parse_content(raw: Any, where: str, reader: PartReader) -> ir.Message:
    content = require_dict(raw, where)
    role = content.get("role") or "user"
    if role == "model":
        ir_role: ir.Role = "assistant"
    elif role in ("user", "function"):
        ir_role = "user"
    else:
        raise ir.bad_request(f"{where}.role must be 'user' or 'model', got {role!r}", f"{where}.role")
    parts = content.get("parts")
    raw_parts = [] if parts is None else require_list(parts, f"{where}.parts")
    return ir.Message(role=ir_role, parts=[reader.part(p, f"{where}.parts[{j}]") for j, p in enumerate(raw_parts)])


def merge_under(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Fill ``target`` with ``extra``'s fields it lacks; values already rendered from the IR win."""
    for key, value in extra.items():
        current = target.get(key)
        if current is None:
            # A copy: whoever edits the rendered body must not edit the IR (retries render again).
            target[key] = _copy_json(value)
        elif isinstance(current, dict) and isinstance(value, dict):
            merge_under(current, value)


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def render_contents(request: ir.Request, meta: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    calls: dict[str, tuple[str, bool]] = {}  # tool-call id -> (function name, id was synthesised)
    hidden_ids = set(meta.get("orphan_ids") or ())
    gemini_3 = is_gemini_3(request.model)
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
            part.setdefault("thoughtSignature", SKIP_SIGNATURE_CHECK)
            return


def _render_part(part: ir.Part, out: list[dict[str, Any]], calls: dict[str, tuple[str, bool]],
                 hidden_ids: set[str], gemini_3: bool) -> None:
    if isinstance(part, ir.TextPart):
        rendered = text_part(part)
        if rendered is not None:
            out.append(rendered)
    elif isinstance(part, ir.ThinkingPart):
        # Another provider's signature would fail Gemini's validation: only the text goes.
        thought = thought_part(part, keep_signature=NAME in (part.extra or {}))
        if thought is not None:
            out.append(thought)
    elif isinstance(part, ir.ToolCallPart):
        synthetic = bool(own(part.extra, NAME).get("_synthetic_id"))
        calls[part.id] = (part.name, synthetic)
        out.append(call_part(part))
    elif isinstance(part, ir.ToolResultPart):
        out.extend(_result_parts(part, calls, hidden_ids, gemini_3))
    else:
        media = media_part(part)
        if media is not None:
            out.append(media)


def text_part(part: ir.TextPart) -> dict[str, Any] | None:
    gem = own(part.extra, NAME)
    raw = gem.get("_part")
    if isinstance(raw, dict):
        return raw
    wire = public(gem)
    if not part.text and not wire:
        return None  # Gemini rejects empty text parts
    return {"text": part.text, **wire}


def thought_part(part: ir.ThinkingPart, keep_signature: bool = True) -> dict[str, Any] | None:
    # Redacted/encrypted reasoning from other providers has no Gemini form.
    signature = usable_signature(part.signature) if keep_signature else None
    if not part.text and not signature:
        return None
    rendered: dict[str, Any] = {"text": part.text, "thought": True}
    if signature:
        rendered["thoughtSignature"] = signature
    rendered.update(public(own(part.extra, NAME)))
    return rendered


def call_part(part: ir.ToolCallPart) -> dict[str, Any]:
    gem = own(part.extra, NAME)
    call: dict[str, Any] = {"name": part.name, "args": _args_object(part.arguments)}
    if not gem.get("_synthetic_id"):
        call["id"] = part.id
    return {"functionCall": call, **public(gem)}


def _result_parts(part: ir.ToolResultPart, calls: dict[str, tuple[str, bool]], hidden_ids: set[str],
                  multimodal: bool) -> list[dict[str, Any]]:
    known = calls.get(part.tool_call_id)
    name = part.name or (known[0] if known else None)
    if not name:
        raise ir.bad_request(
            f"tool result {part.tool_call_id!r} has no matching tool call; Gemini needs the function name",
            "messages")
    texts = [p for p in part.content if isinstance(p, ir.TextPart)]
    media = [m for m in (media_part(p) for p in part.content if not isinstance(p, ir.TextPart)) if m]
    response: dict[str, Any] = {"name": name, "response": _result_payload(texts, part.is_error)}
    if not (known and known[1]) and part.tool_call_id not in hidden_ids:
        response["id"] = part.tool_call_id
    if media and multimodal:
        response["parts"] = media
        return [{"functionResponse": response}]
    return [{"functionResponse": response}, *media]


def _result_payload(texts: list[ir.TextPart], is_error: bool) -> dict[str, Any]:
    if len(texts) == 1:
        gem = own(texts[0].extra, NAME)
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


def media_part(part: ir.Part) -> dict[str, Any] | None:
    if not isinstance(part, ir.ImagePart | ir.DocumentPart):
        return None
    fallback = "image/jpeg" if isinstance(part, ir.ImagePart) else "application/pdf"
    if part.data:
        return {"inlineData": {"mimeType": media_type(part.media_type, part.data, fallback), "data": part.data}}
    if not part.url:
        return None
    inline = split_data_url(part.url, "url")
    if inline is not None:
        return {"inlineData": {"mimeType": media_type(inline[0] or part.media_type, inline[1], fallback),
                               "data": inline[1]}}
    mime = part.media_type or mimetypes.guess_type(part.url)[0] or fallback
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}
