"""OpenAI chat content parts and messages <-> IR parts."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Sequence
from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.kit.extras import leftovers, own, wrap
from crossroads.dialects.kit.fields import invalid, optional_str, require_dict, require_list, require_str
from crossroads.dialects.kit.media import data_url, sniff, split_data_url, standard_b64
from crossroads.dialects.openai_chat.tables import FORM, JSON, NAME

# Small validators: bad client input must become a 400, never a KeyError.












THINKING_FIELDS = ("reasoning_content", "reasoning")


_TOOL_ROLES = ("tool", "function")


def _text_item(raw: JSON, param: str) -> ir.TextPart:
    text = require_str(raw.get("text"), f"{param}.text")
    rest = {k: v for k, v in raw.items() if k not in ("type", "text")}
    if not rest:
        return ir.TextPart(text=text)
    # OpenRouter-style cache_control also serves dialects that cache (kept verbatim for us).
    cache = rest.get("cache_control")
    return ir.TextPart(text=text, cache_control=cache if isinstance(cache, dict) else None, extra={NAME: rest})


def _image_item(raw: JSON, param: str) -> ir.ImagePart:
    image = require_dict(raw.get("image_url"), f"{param}.image_url")
    url = require_str(image.get("url"), f"{param}.image_url.url")
    detail = optional_str(image.get("detail"), f"{param}.image_url.detail")
    rest = {k: v for k, v in raw.items() if k not in ("type", "image_url")}
    extra = {NAME: rest} if rest else None
    inline = split_data_url(url, f"{param}.image_url.url")
    if inline is not None:
        return ir.ImagePart(media_type=inline[0], data=inline[1], detail=detail, extra=extra)
    return ir.ImagePart(url=url, detail=detail, extra=extra)


def _file_item(raw: JSON, param: str) -> ir.DocumentPart | None:
    """A ``file`` part with inline data; None for ``file_id`` references,
    which only OpenAI can resolve (kept opaque)."""
    file = require_dict(raw.get("file"), f"{param}.file")
    file_data = optional_str(file.get("file_data"), f"{param}.file.file_data")
    if file_data is None:
        return None
    filename = optional_str(file.get("filename"), f"{param}.file.filename")
    rest = {k: v for k, v in raw.items() if k not in ("type", "file")}
    extra: JSON = {NAME: rest} if rest else {}
    inline = split_data_url(file_data, f"{param}.file.file_data")
    if inline is not None:
        media_type, data = inline
    else:  # bare base64: guess the type for other dialects, remember the shape
        data = standard_b64(file_data, f"{param}.file.file_data")
        media_type = mimetypes.guess_type(filename or "")[0] or sniff(data) or "application/pdf"
        extra[FORM] = {"bare": True}
    return ir.DocumentPart(media_type=media_type, data=data, filename=filename, extra=extra or None)


def _parse_parts(content: list[Any], param: str, *, images: bool) -> tuple[list[ir.Part], list[list[Any]]]:
    """Content parts -> IR parts plus opaque parts ([position, raw]) the IR cannot
    hold (audio, file ids, unknown types), kept for a same-dialect render."""
    parts: list[ir.Part] = []
    opaque: list[list[Any]] = []
    for i, item in enumerate(content):
        item_param = f"{param}[{i}]"
        item = require_dict(item, item_param)
        kind = item.get("type")
        if kind == "text":
            parts.append(_text_item(item, item_param))
        elif kind == "refusal":
            text = require_str(item.get("refusal"), f"{item_param}.refusal")
            parts.append(ir.TextPart(text=text, extra={FORM: {"refusal": True}}))
        elif not images:
            raise ir.bad_request(f"'{item_param}': only text parts are allowed here, got {kind!r}", item_param)
        elif kind == "image_url":
            parts.append(_image_item(item, item_param))
        elif kind == "file":
            document = _file_item(item, item_param)
            if document is None:
                opaque.append([i, item])
            else:
                parts.append(document)
        elif isinstance(kind, str):
            opaque.append([i, item])  # input_audio, video_url, ...: nothing to map to
        else:
            raise ir.bad_request(f"'{item_param}.type' must be a string", f"{item_param}.type")
    return parts, opaque


def _parse_text_content(content: Any, param: str) -> tuple[list[ir.TextPart], bool]:
    """System / developer / tool content: a string or text parts. Returns the
    parts and whether the wire used the list form."""
    if isinstance(content, str):
        return [ir.TextPart(text=content)], False
    items = require_list(content, param)
    parts, _ = _parse_parts(items, param, images=False)
    return [p for p in parts if isinstance(p, ir.TextPart)], True


class RequestParser:
    __slots__ = ("form", "legacy_calls", "tool_names")

    def __init__(self, form: JSON) -> None:
        self.form = form
        self.tool_names: dict[str, str] = {}  # tool call id -> function name
        self.legacy_calls: list[ir.ToolCallPart] = []

    def messages(self, raw_messages: Any) -> tuple[list[ir.TextPart], list[ir.Message]]:
        items = require_list(raw_messages, "messages")
        if not items:
            raise ir.bad_request("'messages' must contain at least one message", "messages")
        system: list[ir.TextPart] = []
        groups: list[JSON] = []
        messages: list[ir.Message] = []
        leading = True
        for i, raw in enumerate(items):
            if type(raw) is dict and len(raw) == 2 and type(content := raw.get("content")) is str:
                # the plainest and commonest shape, {"role", "content": "text"}: nothing to check or keep
                role = raw.get("role")
                if role == "user":
                    leading = False
                    messages.append(ir.Message("user", [ir.TextPart(content)]))
                    continue
                if role == "system" and leading:
                    system.append(ir.TextPart(content))
                    groups.append({"role": "system", "n": 1})
                    continue
            param = f"messages[{i}]"
            raw = require_dict(raw, param)
            role = raw.get("role")
            if role in ("system", "developer"):
                parts, as_list = _parse_text_content(raw.get("content"), f"{param}.content")
                name = optional_str(raw.get("name"), f"{param}.name")
                fields = leftovers(raw, ("role", "content", "name"))
                if leading:
                    system.extend(parts)
                    group: JSON = {"role": role, "n": len(parts)}
                    if name is not None:
                        group["name"] = name
                    if as_list:
                        group["list"] = True
                    if fields:
                        group["fields"] = fields
                    groups.append(group)
                    continue
                form: JSON = {"role": role} if role == "developer" else {}
                if as_list:
                    form["list"] = True
                messages.append(ir.Message("system", list(parts), name=name, extra=wrap(NAME, fields, FORM, form)))
                continue
            leading = False
            if role == "user":
                messages.append(self._user(raw, param))
            elif role == "assistant":
                messages.append(self._assistant(raw, param))
            elif role in _TOOL_ROLES:
                result = self._tool_result(raw, param, role)
                previous = messages[-1] if messages else None
                if previous is not None and previous.extra is not None and previous.extra.get(FORM, {}).get("tools"):
                    previous.parts.append(result)
                else:
                    messages.append(ir.Message("user", [result], extra={FORM: {"tools": True}}))
            else:
                raise ir.bad_request(
                    f"'{param}.role' must be one of system, developer, user, assistant, tool, function; "
                    f"got {role!r}", f"{param}.role")
        if groups:
            self.form["system"] = groups
        return system, messages

    def _user(self, raw: JSON, param: str) -> ir.Message:
        content = raw.get("content")
        form: JSON = {}
        if isinstance(content, str):
            parts: list[ir.Part] = [ir.TextPart(text=content)]
        else:
            items = require_list(content, f"{param}.content")
            parts, opaque = _parse_parts(items, f"{param}.content", images=True)
            form["list"] = True
            if opaque:
                form["opaque"] = opaque
        name = optional_str(raw.get("name"), f"{param}.name")
        return ir.Message("user", parts, name=name, extra=wrap(NAME, leftovers(raw, ("role", "content", "name")), FORM, form))

    def _assistant(self, raw: JSON, param: str) -> ir.Message:
        form: JSON = {}
        parts: list[ir.Part] = []
        known = ["role", "content", "name", "tool_calls", "function_call"]
        for field in THINKING_FIELDS:
            value = raw.get(field)
            if value is not None:
                text = require_str(value, f"{param}.{field}")
                parts.append(ir.ThinkingPart(text=text, extra={FORM: {"field": field}}))
                known.append(field)
                break
        content = raw.get("content")
        if "content" not in raw:
            form["content"] = "absent"
        elif content is None:
            form["content"] = "null"
        elif content == "":
            form["content"] = "empty"
        elif isinstance(content, str):
            parts.append(ir.TextPart(text=content))
        else:
            items, _ = _parse_parts(require_list(content, f"{param}.content"), f"{param}.content", images=False)
            parts.extend(items)
            form["content"] = "list"
        tool_calls = raw.get("tool_calls")
        if tool_calls is not None:
            calls = require_list(tool_calls, f"{param}.tool_calls")
            if not calls:
                form["tool_calls"] = "empty"
            for j, call in enumerate(calls):
                parts.append(self._tool_call(call, f"{param}.tool_calls[{j}]"))
        function_call = raw.get("function_call")
        if function_call is not None:
            parts.append(self._legacy_call(function_call, f"{param}.function_call"))
        name = optional_str(raw.get("name"), f"{param}.name")
        return ir.Message("assistant", parts, name=name, extra=wrap(NAME, leftovers(raw, known), FORM, form))

    def _tool_call(self, raw: Any, param: str) -> ir.ToolCallPart:
        raw = require_dict(raw, param)
        call_id = require_str(raw.get("id"), f"{param}.id")
        kind = raw.get("type", "function")
        rest = leftovers(raw, ("id", "type", "function", "custom"))
        form: JSON = {}
        if "type" not in raw:
            form["no_type"] = True
        if kind == "custom":
            custom = require_dict(raw.get("custom"), f"{param}.custom")
            name = require_str(custom.get("name"), f"{param}.custom.name")
            arguments = require_str(custom.get("input"), f"{param}.custom.input")
            form["custom"] = True
        elif kind == "function":
            function = require_dict(raw.get("function"), f"{param}.function")
            name = require_str(function.get("name"), f"{param}.function.name")
            arguments = _arguments(function.get("arguments"), f"{param}.function.arguments")
        else:
            raise ir.bad_request(f"'{param}.type' must be 'function' or 'custom', got {kind!r}", f"{param}.type")
        self.tool_names[call_id] = name
        return ir.ToolCallPart(id=call_id, name=name, arguments=arguments, extra=wrap(NAME, rest, FORM, form))

    def _legacy_call(self, raw: Any, param: str) -> ir.ToolCallPart:
        raw = require_dict(raw, param)
        name = require_str(raw.get("name"), f"{param}.name")
        arguments = _arguments(raw.get("arguments"), f"{param}.arguments")
        part = ir.ToolCallPart(id=f"call_legacy_{len(self.legacy_calls)}", name=name, arguments=arguments,
                               extra={FORM: {"legacy": True}})
        self.legacy_calls.append(part)
        self.tool_names[part.id] = name
        return part

    def _tool_result(self, raw: JSON, param: str, role: str) -> ir.ToolResultPart:
        form: JSON = {}
        if role == "function":
            name = require_str(raw.get("name"), f"{param}.name")
            call_id = next((c.id for c in reversed(self.legacy_calls) if c.name == name),
                           f"call_legacy_{name}")
            form["legacy"] = True
            content = raw.get("content")
            parts = [] if content is None else [ir.TextPart(text=require_str(content, f"{param}.content"))]
            if content is None:
                form["null"] = True
            fields = leftovers(raw, ("role", "name", "content"))
            return ir.ToolResultPart(call_id, list(parts), name=name, extra=wrap(NAME, fields, FORM, form))
        call_id = require_str(raw.get("tool_call_id"), f"{param}.tool_call_id")
        text_parts, as_list = _parse_text_content(raw.get("content"), f"{param}.content")
        if as_list:
            form["list"] = True
        wire_name = raw.get("name")
        function_name = wire_name if isinstance(wire_name, str) else self.tool_names.get(call_id)
        fields = leftovers(raw, ("role", "tool_call_id", "content"))
        return ir.ToolResultPart(call_id, list(text_parts), name=function_name, extra=wrap(NAME, fields, FORM, form))


def obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _arguments(value: Any, param: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # some clients send the object itself
        return orjson.dumps(value).decode()
    raise invalid(param, "a JSON string", value)


_MAX_TOOL_ID = 40  # OpenAI rejects longer tool call ids


def wire_tool_id(tool_id: str) -> str:
    """Deterministic, so a call and its result still match after shortening."""
    if len(tool_id) <= _MAX_TOOL_ID:
        return tool_id
    return "call_" + hashlib.sha256(tool_id.encode()).hexdigest()[:32]


def _text_part_json(part: ir.TextPart) -> JSON:
    if own(part.extra, FORM).get("refusal"):
        return {"type": "refusal", "refusal": part.text}
    item: JSON = {"type": "text", "text": part.text}
    item.update(own(part.extra, NAME))
    return item


def _needs_list(parts: Sequence[ir.Part]) -> bool:
    for part in parts:
        if not isinstance(part, ir.TextPart):
            return True
        if part.extra and (NAME in part.extra or FORM in part.extra):
            return True
    return False


def text_content(parts: Sequence[ir.TextPart], as_list: bool) -> str | list[JSON]:
    if as_list or _needs_list(parts):
        return [_text_part_json(p) for p in parts]
    if len(parts) == 1:
        return parts[0].text
    return "\n\n".join(p.text for p in parts)


def _image_json(part: ir.ImagePart) -> JSON | None:
    if part.data is not None:
        url = data_url(part.media_type, part.data)
    elif part.url is not None:
        url = part.url
    else:
        return None
    image: JSON = {"url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    item: JSON = {"type": "image_url", "image_url": image}
    item.update(own(part.extra, NAME))
    return item


def _document_json(part: ir.DocumentPart) -> JSON:
    if part.data is None:  # chat has no file-by-URL part
        return {"type": "text", "text": f"[document: {part.url or part.filename or 'unavailable'}]"}
    bare = own(part.extra, FORM).get("bare")
    file: JSON = {"file_data": part.data if bare else data_url(part.media_type, part.data)}
    if part.filename is not None:
        file["filename"] = part.filename
    item: JSON = {"type": "file", "file": file}
    item.update(own(part.extra, NAME))
    return item


def _content_item(part: ir.Part) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return _text_part_json(part)
    if isinstance(part, ir.ImagePart):
        return _image_json(part)
    if isinstance(part, ir.DocumentPart):
        return _document_json(part)
    return None


def _user_content(parts: Sequence[ir.Part], form: JSON) -> str | list[JSON]:
    opaque = form.get("opaque")
    if not form.get("list") and not opaque and not _needs_list(parts):
        texts = [p for p in parts if isinstance(p, ir.TextPart)]
        return text_content(texts, False)
    items = [item for item in map(_content_item, parts) if item is not None]
    for position, raw in opaque or ():
        items.insert(min(position, len(items)), raw)
    return items


def _message_json(role: str, content: Any, name: str | None, extra: JSON | None) -> JSON:
    message: JSON = {"role": role, "content": content}
    if name is not None:
        message["name"] = name
    message.update(own(extra, NAME))
    return message


class RequestRenderer:
    __slots__ = ("legacy_ids", "send_reasoning")

    def __init__(self, send_reasoning: bool) -> None:
        self.send_reasoning = send_reasoning
        self.legacy_ids: set[str] = set()

    def system(self, parts: list[ir.TextPart], groups: list[JSON] | None) -> list[JSON]:
        if groups and sum(int(g.get("n", 0)) for g in groups) == len(parts):
            out, start = [], 0
            for group in groups:
                count = int(group.get("n", 0))
                chunk = parts[start:start + count]
                start += count
                message = _message_json(group["role"], text_content(chunk, bool(group.get("list"))),
                                        group.get("name"), None)
                message.update(group.get("fields") or {})
                out.append(message)
            return out
        if not parts:
            return []
        return [{"role": "system", "content": text_content(parts, False)}]

    def message(self, message: ir.Message) -> list[JSON]:
        form = own(message.extra, FORM)
        if message.role == "system":
            texts = [p for p in message.parts if isinstance(p, ir.TextPart)]
            return [_message_json(form.get("role", "system"), text_content(texts, bool(form.get("list"))),
                                  message.name, message.extra)]
        if message.role == "assistant":
            return [self.assistant(message, form)]
        return self.user(message, form)

    def user(self, message: ir.Message, form: JSON) -> list[JSON]:
        out: list[JSON] = []
        rest: list[ir.Part] = []
        moved: list[ir.Part] = []
        for part in message.parts:
            if isinstance(part, ir.ToolResultPart):
                out.append(self.tool_result(part, moved))
            elif isinstance(part, ir.TextPart | ir.ImagePart | ir.DocumentPart):
                rest.append(part)
        if out and not rest and not moved:
            return out
        if moved:
            rest = moved + rest
            form = {**form, "list": True}
        if rest or not out or form.get("opaque"):
            out.append(_message_json("user", _user_content(rest, form), message.name, message.extra))
        return out

    def tool_result(self, part: ir.ToolResultPart, moved: list[ir.Part]) -> JSON:
        form = own(part.extra, FORM)
        texts: list[ir.TextPart] = []
        for item in part.content:
            if isinstance(item, ir.TextPart):
                texts.append(item)
            else:
                moved.append(item)  # tool messages carry text only
        if form.get("legacy") or part.tool_call_id in self.legacy_ids:
            content: Any = None if form.get("null") else "\n\n".join(t.text for t in texts)
            message: JSON = {"role": "function", "name": part.name or "", "content": content}
        else:
            message = {"role": "tool", "tool_call_id": wire_tool_id(part.tool_call_id),
                       "content": text_content(texts, bool(form.get("list")))}
        message.update(own(part.extra, NAME))
        return message

    def assistant(self, message: ir.Message, form: JSON) -> JSON:
        texts: list[ir.TextPart] = []
        thinking: list[ir.ThinkingPart] = []
        calls: list[JSON] = []
        legacy: JSON | None = None
        for part in message.parts:
            if isinstance(part, ir.TextPart):
                texts.append(part)
            elif isinstance(part, ir.ToolCallPart):
                if own(part.extra, FORM).get("legacy"):
                    self.legacy_ids.add(part.id)
                    legacy = {"name": part.name, "arguments": part.arguments}
                else:
                    calls.append(tool_call_json(part, wire_tool_id(part.id)))
            elif isinstance(part, ir.ThinkingPart) and (self.send_reasoning or FORM in (part.extra or {})):
                thinking.append(part)
        out: JSON = {"role": "assistant"}
        content_form = form.get("content")
        if texts:
            out["content"] = text_content(texts, content_form == "list")
        elif content_form == "empty":
            out["content"] = ""
        elif content_form == "list":
            out["content"] = []
        elif content_form != "absent":
            out["content"] = None if (calls or legacy or content_form == "null") else ""
        if thinking:
            field = own(thinking[0].extra, FORM).get("field", "reasoning_content")
            out[field] = "\n\n".join(t.text for t in thinking)
        if calls or form.get("tool_calls") == "empty":
            out["tool_calls"] = calls
        if legacy is not None:
            out["function_call"] = legacy
        if message.name is not None:
            out["name"] = message.name
        out.update(own(message.extra, NAME))
        return out


def tool_call_json(part: ir.ToolCallPart, call_id: str) -> JSON:
    form = own(part.extra, FORM)
    call: JSON = {"id": call_id}
    if form.get("custom"):
        call["type"] = "custom"
        call["custom"] = {"name": part.name, "input": part.arguments}
    else:
        if not form.get("no_type"):
            call["type"] = "function"
        call["function"] = {"name": part.name, "arguments": part.arguments}
    call.update(own(part.extra, NAME))
    return call
