"""OpenAI Responses content parts and messages <-> IR parts."""

from __future__ import annotations

from typing import Any

from crossroads import ids, ir
from crossroads.dialects.kit.extras import claim, own
from crossroads.dialects.kit.fields import optional_str, require_dict, require_list, require_str
from crossroads.dialects.kit.media import data_url, split_data_url, standard_b64
from crossroads.dialects.openai_responses.tables import (
    JSON,
    NAME,
    OUTPUT_TEXT,
    SYNTH,
    TEXT_TYPES,
    ContentPart,
)


def synth_id(prefix: str) -> str:
    return ids.new_id(prefix + SYNTH)


def _is_synth(item_id: Any) -> bool:
    if not isinstance(item_id, str):
        return False
    _, sep, rest = item_id.partition("_")
    return bool(sep) and rest.startswith(SYNTH)


def leftover(obj: JSON, modelled: frozenset[str]) -> JSON:
    """Keys the IR does not hold (explicit nulls included, so they survive a round trip)."""
    return {k: v for k, v in obj.items() if k not in modelled or v is None}


def _parse_part(raw: Any, where: str, default_text: JSON) -> tuple[ContentPart, JSON | None]:
    """One wire content part -> IR part, plus wire keys the IR part cannot hold."""
    part = require_dict(raw, where)
    kind = require_str(part.get("type"), f"{where}.type")
    if kind in TEXT_TYPES:
        text = require_str(part.get("text"), f"{where}.text")
        shape = {k: v for k, v in part.items() if k != "text"}
        return ir.TextPart(text, extra=None if shape == default_text else {NAME: {"part": shape}}), None
    if kind == "refusal":
        text = require_str(part.get("refusal"), f"{where}.refusal")
        shape = {k: v for k, v in part.items() if k != "refusal"}
        return ir.TextPart(text, extra={NAME: {"part": shape}}), None
    if kind == "input_image":
        return _parse_image(part, where)
    if kind == "input_file":
        return _parse_file(part, where)
    return _placeholder(f"[{kind}]", part), None


def _placeholder(text: str, wire_part: JSON) -> ir.TextPart:
    """A part with no IR home: other dialects see ``text``; this one renders ``wire_part``."""
    return ir.TextPart(text, extra={NAME: {"part": dict(wire_part)}})


def _parse_image(part: JSON, where: str) -> tuple[ContentPart, JSON | None]:
    url = part.get("image_url")
    if url is None:
        file_id = part.get("file_id")
        if not isinstance(file_id, str):
            raise ir.bad_request(f"{where} needs image_url or file_id", f"{where}.image_url")
        return _placeholder(f"[image: {file_id}]", part), None
    url = require_str(url, f"{where}.image_url")
    detail = optional_str(part.get("detail"), f"{where}.detail")
    inline = split_data_url(url, f"{where}.image_url")
    if inline is not None:
        image = ir.ImagePart(media_type=inline[0], data=inline[1], detail=detail)
    else:
        image = ir.ImagePart(url=url, detail=detail)
    rest = {k: v for k, v in part.items() if k not in ("type", "image_url", "detail")}
    return image, rest or None


def _parse_file(part: JSON, where: str) -> tuple[ContentPart, JSON | None]:
    file_data, file_url = part.get("file_data"), part.get("file_url")
    filename = optional_str(part.get("filename"), f"{where}.filename")
    if isinstance(file_data, str):
        inline = split_data_url(file_data, f"{where}.file_data")
        if inline is not None:
            doc = ir.DocumentPart(media_type=inline[0], data=inline[1], filename=filename)
        else:
            doc = ir.DocumentPart(data=standard_b64(file_data, f"{where}.file_data"), filename=filename)
        modelled: tuple[str, ...] = ("type", "file_data", "filename")
    elif isinstance(file_url, str):
        doc = ir.DocumentPart(url=file_url, filename=filename)
        modelled = ("type", "file_url", "filename")
    elif isinstance(part.get("file_id"), str):
        return _placeholder(f"[file: {filename or part['file_id']}]", part), None
    else:
        raise ir.bad_request(f"{where} needs file_data, file_url or file_id", f"{where}.file_data")
    rest = {k: v for k, v in part.items() if k not in modelled}
    return doc, rest or None


def parse_content(content: list[Any], where: str, default_text: JSON
                   ) -> tuple[list[ContentPart], dict[int, JSON] | None]:
    parts: list[ContentPart] = []
    leftovers: dict[int, JSON] | None = None
    for j, raw in enumerate(content):
        part, rest = _parse_part(raw, f"{where}[{j}]", default_text)
        if rest:
            leftovers = leftovers or {}
            leftovers[j] = rest
        parts.append(part)
    return parts, leftovers


def render_text(part: ir.TextPart, default_text: JSON) -> JSON:
    info = own(part.extra, NAME)
    shape = info.get("part") if info else None
    if shape is None:
        return {**default_text, "text": part.text}
    kind = shape.get("type")
    if kind in TEXT_TYPES:
        return {**shape, "text": part.text}
    if kind == "refusal":
        return {**shape, "refusal": part.text}
    return dict(shape)  # a placeholder: the wire part verbatim


def render_part(part: ir.Part, default_text: JSON, detail_required: bool,
                 leftover: JSON | None) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return render_text(part, default_text)
    if isinstance(part, ir.ImagePart):
        if part.data is not None:
            url = data_url(part.media_type, part.data, "image/png")
        elif part.url is not None:
            url = part.url
        else:
            return None
        image: JSON = {**leftover} if leftover else {}
        image["type"] = "input_image"
        image["image_url"] = url
        if part.detail is not None or detail_required:
            image["detail"] = part.detail or "auto"
        return image
    if isinstance(part, ir.DocumentPart):
        doc: JSON = {**leftover} if leftover else {}
        doc["type"] = "input_file"
        if part.data is not None:
            doc["file_data"] = (data_url(part.media_type, part.data, "application/octet-stream")
                                if part.media_type else part.data)
        elif part.url is not None:
            doc["file_url"] = part.url
        else:
            return None
        if part.filename is not None:
            doc["filename"] = part.filename
        return doc
    return None


def message_texts(item: JSON, where: str, default_text: JSON) -> list[ir.TextPart] | None:
    """A message item -> TextParts whose first part records the item (None: no content)."""
    content = item.get("content")
    head = {k: v for k, v in item.items() if k != "content"}
    if isinstance(content, str):
        return [ir.TextPart(content, extra={NAME: {"item": head, "string": True}})]
    content = require_list(content, f"{where}.content")
    if not content:
        return None
    texts: list[ir.TextPart] = []
    for j, raw in enumerate(content):
        part, rest = _parse_part(raw, f"{where}.content[{j}]", default_text)
        if not isinstance(part, ir.TextPart) or rest:
            part = _placeholder(f"[{raw.get('type')}]", raw)
        texts.append(part)
    first = claim(texts[0], NAME)
    first["item"] = head
    if len(texts) > 1:
        first["n"] = len(texts)
    return texts


def tool_call_part(item: JSON, where: str) -> ir.ToolCallPart:
    call_id = require_str(item.get("call_id"), f"{where}.call_id")
    name = require_str(item.get("name"), f"{where}.name")
    arguments = item.get("arguments", "")
    arguments = require_str(arguments, f"{where}.arguments")
    rest = {k: v for k, v in item.items() if k not in ("type", "call_id", "name", "arguments")}
    return ir.ToolCallPart(id=call_id, name=name, arguments=arguments, extra={NAME: rest} if rest else None)


def _texts_of(entries: Any, where: str) -> list[str]:
    texts: list[str] = []
    for j, entry in enumerate(require_list(entries, where)):
        entry = require_dict(entry, f"{where}[{j}]")
        texts.append(require_str(entry.get("text"), f"{where}[{j}].text"))
    return texts


def thinking_part(item: JSON, where: str) -> ir.ThinkingPart:
    summary = _texts_of(item.get("summary", []), f"{where}.summary")
    encrypted = item.get("encrypted_content")
    info: JSON = {k: v for k, v in item.items() if k not in ("type", "summary")}
    if isinstance(encrypted, str):
        del info["encrypted_content"]
    else:
        encrypted = None
    info["summary_lengths"] = [len(t) for t in summary]
    text = "\n\n".join(summary)
    if not summary and isinstance(item.get("content"), list):
        # servers that return raw reasoning text (gpt-oss) and no summary
        text = "".join(_texts_of(item["content"], f"{where}.content"))
        info["from_content"] = True
    return ir.ThinkingPart(text=text, encrypted=encrypted, extra={NAME: info})


def _summary_of(part: ir.ThinkingPart, info: JSON | None) -> list[JSON]:
    text = part.text
    lengths = info.get("summary_lengths") if info else None
    if info and info.get("from_content"):
        return []
    if isinstance(lengths, list) and sum(lengths) + 2 * max(len(lengths) - 1, 0) == len(text):
        pieces, start = [], 0
        for length in lengths:
            pieces.append(text[start:start + length])
            start += length + 2
        return [{"type": "summary_text", "text": piece} for piece in pieces]
    return [{"type": "summary_text", "text": text}] if text else []


def _reasoning_item(part: ir.ThinkingPart, for_request: bool) -> JSON | None:
    info = own(part.extra, NAME)
    if for_request:
        item_id = info.get("id") if info else None
        if part.encrypted is None and (item_id is None or _is_synth(item_id)):
            return None  # the API rejects reasoning it did not issue
    elif part.encrypted is None and not part.text and NAME not in (part.extra or {}):
        return None  # e.g. Anthropic redacted thinking: nothing to show
    item: JSON = {k: v for k, v in info.items() if k not in ("summary_lengths", "from_content")} if info else {}
    if for_request and _is_synth(item.get("id")):
        del item["id"]
    elif not for_request:
        item.setdefault("id", synth_id("rs_"))
    item["type"] = "reasoning"
    item["summary"] = _summary_of(part, info)
    if part.encrypted is not None:
        item["encrypted_content"] = part.encrypted
    return item


def _function_call_item(part: ir.ToolCallPart, for_request: bool) -> JSON:
    info = own(part.extra, NAME)
    item: JSON = dict(info) if info else {}
    if for_request and _is_synth(item.get("id")):
        del item["id"]
    elif not for_request:
        item.setdefault("id", synth_id("fc_"))
        item.setdefault("status", "completed")
    item["type"] = "function_call"
    item["call_id"] = part.id or synth_id("call_")
    item["name"] = part.name
    item["arguments"] = part.arguments
    return item


def assistant_items(parts: list[ir.Part], raw: list[Any] | None, for_request: bool) -> list[JSON]:
    """Assistant parts (+ verbatim items at their positions) -> input or output items."""
    items: list[JSON] = []
    open_content: list[JSON] | None = None  # content of a multi-part message item being filled
    remaining = 0
    raw_iter = iter(raw or ())
    pending = next(raw_iter, None)
    for index, part in enumerate(parts):
        while pending is not None and pending[0] <= index:
            items.append(pending[1])
            open_content, remaining = None, 0
            pending = next(raw_iter, None)
        if isinstance(part, ir.TextPart):
            info = own(part.extra, NAME)
            head = info.get("item") if info else None
            if head is None and remaining > 0 and open_content is not None:
                open_content.append(render_text(part, OUTPUT_TEXT))
                remaining -= 1
                continue
            item, open_content = _assistant_message(part, head, info, for_request)
            remaining = (info.get("n", 1) - 1) if head is not None and info else 0
            items.append(item)
            continue
        open_content, remaining = None, 0
        if isinstance(part, ir.ToolCallPart):
            items.append(_function_call_item(part, for_request))
        elif isinstance(part, ir.ThinkingPart):
            reasoning_item = _reasoning_item(part, for_request)
            if reasoning_item is not None:
                items.append(reasoning_item)
    while pending is not None:
        items.append(pending[1])
        pending = next(raw_iter, None)
    return items


def _assistant_message(part: ir.TextPart, head: JSON | None, info: JSON | None,
                       for_request: bool) -> tuple[JSON, list[JSON] | None]:
    if head is None:
        if for_request:
            return {"type": "message", "role": "assistant", "content": part.text}, None
        content = [render_text(part, OUTPUT_TEXT)]
        return {"id": synth_id("msg_"), "type": "message", "role": "assistant",
                "status": "completed", "content": content}, content
    item = dict(head)
    item["role"] = "assistant"
    if for_request:
        if _is_synth(item.get("id")):
            del item["id"]
        if info and info.get("string") and not (info.get("part")):
            item["content"] = part.text
            return item, None
    else:
        item.setdefault("id", synth_id("msg_"))
        item.setdefault("type", "message")
        item.setdefault("status", "completed")
    content = [render_text(part, OUTPUT_TEXT)]
    item["content"] = content
    return item, content


def output_parts(output: list[Any], where: str) -> tuple[list[ir.Part], list[Any], bool, bool]:
    """Response output items -> parts, verbatim items with positions, has_call, has_refusal."""
    parts: list[ir.Part] = []
    raw: list[Any] = []
    has_call = has_refusal = False
    for i, item in enumerate(output):
        item = require_dict(item, f"{where}[{i}]")
        kind = item.get("type")
        if kind == "message":
            texts = message_texts(item, f"{where}[{i}]", OUTPUT_TEXT)
            if texts is None:
                raw.append([len(parts), item])
                continue
            has_refusal = has_refusal or any(_is_refusal(t) for t in texts)
            parts.extend(texts)
        elif kind == "function_call":
            parts.append(tool_call_part(item, f"{where}[{i}]"))
            has_call = True
        elif kind == "reasoning":
            parts.append(thinking_part(item, f"{where}[{i}]"))
        else:
            raw.append([len(parts), item])
    return parts, raw, has_call, has_refusal


def _is_refusal(part: ir.TextPart) -> bool:
    info = own(part.extra, NAME)
    shape = info.get("part") if info else None
    return isinstance(shape, dict) and shape.get("type") == "refusal"
