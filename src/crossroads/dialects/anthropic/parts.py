"""Anthropic Messages content parts and messages <-> IR parts."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from crossroads import ids, ir
from crossroads.dialects.anthropic.tables import (
    DOCUMENT_KEYS,
    IMAGE_KEYS,
    JSON,
    MESSAGE_KEYS,
    NAME,
    TEXT_KEYS,
    THINKING_KEYS,
    TOOL_RESULT_KEYS,
    TOOL_USE_KEYS,
)
from crossroads.dialects.kit.extras import leftovers, merged, own, wrap
from crossroads.dialects.kit.fields import (
    optional_dict,
    optional_str,
    require_dict,
    require_list,
    require_str,
)
from crossroads.dialects.kit.media import media_type, split_data_url, standard_b64


def tool_input(arguments: str) -> JSON:
    """Tool-call argument text -> the ``input`` object Anthropic requires."""
    if not arguments or arguments.isspace():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    else:
        if isinstance(value, dict):
            return value
    # Invalid or non-object arguments (e.g. a truncated call in the history)
    # cannot be an ``input``; keep the text rather than fail the request.
    return {"_raw_arguments": arguments}


def _tool_arguments(value: Any, param: str) -> str:
    if not isinstance(value, dict):
        raise ir.bad_request(f"{param}: expected an object", param)
    return orjson.dumps(value).decode()


class ToolIds:
    """Sanitises tool ids consistently within one rendering (calls and results)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, tool_id: str) -> str:
        safe = self._seen.get(tool_id)
        if safe is None:
            safe = self._seen[tool_id] = ids.safe_tool_id(tool_id)
        return safe


def interleave(blocks: list[tuple[int, JSON]], raw: Any) -> list[JSON]:
    """``blocks`` are (IR part position, rendered block); ``raw`` holds the
    ``[position, block]`` pairs the parser kept for blocks the IR cannot hold."""
    if not raw:
        return [block for _, block in blocks]
    pending = sorted((pair for pair in raw if isinstance(pair, list | tuple) and len(pair) == 2),
                     key=lambda pair: pair[0])
    out: list[JSON] = []
    waiting = 0
    for position, block in blocks:
        while waiting < len(pending) and pending[waiting][0] <= position:
            out.append(pending[waiting][1])
            waiting += 1
        out.append(block)
    out.extend(pair[1] for pair in pending[waiting:])
    return out


def cache_control(block: JSON, param: str) -> JSON | None:
    return optional_dict(block.get("cache_control"), f"{param}.cache_control")


def parse_text_block(block: JSON, param: str) -> ir.TextPart:
    return ir.TextPart(
        text=require_str(block.get("text"), f"{param}.text"),
        cache_control=cache_control(block, param),
        extra=wrap(NAME, leftovers(block, TEXT_KEYS)),
    )


def _parse_image_block(block: JSON, param: str) -> ir.ImagePart | None:
    source = require_dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    part = ir.ImagePart(cache_control=cache_control(block, param), extra=wrap(NAME, leftovers(block, IMAGE_KEYS)))
    if kind == "base64":
        part.media_type = optional_str(source.get("media_type"), f"{param}.source.media_type")
        part.data = standard_b64(require_str(source.get("data"), f"{param}.source.data"), f"{param}.source.data")
    elif kind == "url":
        url = require_str(source.get("url"), f"{param}.source.url")
        inline = split_data_url(url, f"{param}.source.url")
        if inline is None:
            part.url = url
        else:
            part.media_type, part.data = inline
    else:
        return None  # file ids and future sources stay raw
    return part


def _parse_document_block(block: JSON, param: str) -> ir.DocumentPart | None:
    source = require_dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    part = ir.DocumentPart(
        filename=optional_str(block.get("title"), f"{param}.title"),
        cache_control=cache_control(block, param),
        extra=wrap(NAME, leftovers(block, DOCUMENT_KEYS)),
    )
    if kind == "base64":
        part.media_type = optional_str(source.get("media_type"), f"{param}.source.media_type")
        part.data = standard_b64(require_str(source.get("data"), f"{param}.source.data"), f"{param}.source.data")
    elif kind == "text":
        # IR documents are always base64; plain-text sources carry raw text.
        text = require_str(source.get("data"), f"{param}.source.data")
        part.media_type = optional_str(source.get("media_type"), f"{param}.source.media_type") or "text/plain"
        part.data = base64.b64encode(text.encode()).decode()
    elif kind == "url":
        part.url = require_str(source.get("url"), f"{param}.source.url")
    else:
        return None  # "content" and "file" sources stay raw
    return part


def _parse_media_or_text(block: JSON, param: str) -> ir.TextPart | ir.ImagePart | ir.DocumentPart | None:
    kind = block.get("type")
    if kind == "text":
        return parse_text_block(block, param)
    if kind == "image":
        return _parse_image_block(block, param)
    if kind == "document":
        return _parse_document_block(block, param)
    return None


def _parse_tool_result(block: JSON, param: str, tool_names: dict[str, str]) -> ir.ToolResultPart:
    tool_use_id = require_str(block.get("tool_use_id"), f"{param}.tool_use_id")
    content = block.get("content")
    parts: list[ir.TextPart | ir.ImagePart | ir.DocumentPart] = []
    raw: list[list[Any]] = []
    if isinstance(content, str):
        parts.append(ir.TextPart(text=content))
    elif content is not None:
        for index, item in enumerate(require_list(content, f"{param}.content")):
            item_param = f"{param}.content.{index}"
            part = _parse_media_or_text(require_dict(item, item_param), item_param)
            if part is None:
                raw.append([len(parts), item])
            else:
                parts.append(part)
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise ir.bad_request(f"{param}.is_error: expected a boolean", f"{param}.is_error")
    fields = leftovers(block, TOOL_RESULT_KEYS) or {}
    if raw:
        fields["content"] = raw
    return ir.ToolResultPart(
        tool_call_id=tool_use_id,
        content=parts,
        is_error=is_error,
        name=tool_names.get(tool_use_id),
        cache_control=cache_control(block, param),
        extra=wrap(NAME, fields),
    )


def parse_block(block: JSON, param: str, tool_names: dict[str, str]) -> ir.Part | None:
    kind = block.get("type")
    if kind == "text" or kind == "image" or kind == "document":
        return _parse_media_or_text(block, param)
    if kind == "tool_use":
        tool_id = require_str(block.get("id"), f"{param}.id")
        name = require_str(block.get("name"), f"{param}.name")
        tool_names[tool_id] = name
        return ir.ToolCallPart(
            id=tool_id,
            name=name,
            arguments=_tool_arguments(block.get("input"), f"{param}.input"),
            extra=wrap(NAME, leftovers(block, TOOL_USE_KEYS)),
        )
    if kind == "tool_result":
        return _parse_tool_result(block, param, tool_names)
    if kind == "thinking":
        return ir.ThinkingPart(
            text=require_str(block.get("thinking"), f"{param}.thinking"),
            signature=optional_str(block.get("signature"), f"{param}.signature"),
            extra=wrap(NAME, leftovers(block, THINKING_KEYS)),
        )
    if kind == "redacted_thinking":
        return ir.ThinkingPart(redacted=require_str(block.get("data"), f"{param}.data"))
    if not isinstance(kind, str):
        raise ir.bad_request(f"{param}.type: expected a string", f"{param}.type")
    return None


def _parse_content(content: Any, param: str, tool_names: dict[str, str]) -> tuple[list[ir.Part], list[list[Any]]]:
    if isinstance(content, str):
        return [ir.TextPart(text=content)], []
    parts: list[ir.Part] = []
    raw: list[list[Any]] = []
    for index, block in enumerate(require_list(content, param)):
        block_param = f"{param}.{index}"
        part = parse_block(require_dict(block, block_param), block_param, tool_names)
        if part is None:
            raw.append([len(parts), block])
        else:
            parts.append(part)
    return parts, raw


def parse_message(message: Any, param: str, tool_names: dict[str, str]) -> ir.Message:
    message = require_dict(message, param)
    role = message.get("role")
    if role not in ("user", "assistant", "system"):
        raise ir.bad_request(f"{param}.role: expected user, assistant or system, got {role!r}", f"{param}.role")
    if "content" not in message:
        raise ir.bad_request(f"{param}.content: field required", f"{param}.content")
    parts, raw = _parse_content(message["content"], f"{param}.content", tool_names)
    if role == "system" and any(not isinstance(part, ir.TextPart) for part in parts):
        raise ir.bad_request(f"{param}.content: system messages take text blocks only", f"{param}.content")
    fields = leftovers(message, MESSAGE_KEYS) or {}
    if raw:
        fields["content"] = raw
    return ir.Message(role=role, parts=parts, extra=wrap(NAME, fields))


def _render_text(part: ir.TextPart) -> JSON | None:
    if not part.text:
        return None  # the API rejects empty text blocks
    block: JSON = {"type": "text", "text": part.text}
    if part.cache_control is None and not part.extra:
        return block
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return merged(block, part.extra, NAME)


def _placeholder(text: str) -> JSON:
    return {"type": "text", "text": text}


def _render_image(part: ir.ImagePart) -> JSON | None:
    inline = split_data_url(part.url, "url") if part.url and not part.data else None
    if inline is not None:
        part = ir.ImagePart(media_type=inline[0] or part.media_type, data=inline[1],
                            cache_control=part.cache_control, extra=part.extra)
    if part.data:
        source: JSON = {"type": "base64", "media_type": media_type(part.media_type, part.data, "image/png"),
                        "data": part.data}
    elif part.url and part.url.startswith(("http://", "https://")):
        source = {"type": "url", "url": part.url}
    elif part.url:
        return _placeholder(f"[image: {part.url}]")
    else:
        return None
    block: JSON = {"type": "image", "source": source}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return merged(block, part.extra, NAME)


def _decode_text(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ir.bad_request("text document: data is not base64-encoded UTF-8") from None


def _render_document(part: ir.DocumentPart) -> JSON | None:
    media_type = (part.media_type or "").lower()
    if part.data and media_type.startswith("image/"):
        return _render_image(ir.ImagePart(media_type=part.media_type, data=part.data,
                                          cache_control=part.cache_control))
    if part.data and media_type.startswith("text/"):
        source: JSON = {"type": "text", "media_type": "text/plain", "data": _decode_text(part.data)}
    elif part.data and media_type in ("", "application/pdf"):
        source = {"type": "base64", "media_type": "application/pdf", "data": part.data}
    elif part.data:
        # Anthropic documents are PDF or plain text only.
        return _placeholder(f"[file: {part.filename or 'attachment'} ({part.media_type})]")
    elif part.url:
        source = {"type": "url", "url": part.url}
    else:
        return None
    block: JSON = {"type": "document", "source": source}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    if part.filename is not None:
        block["title"] = part.filename
    return merged(block, part.extra, NAME)


def _render_media_or_text(part: ir.Part) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return _render_text(part)
    if isinstance(part, ir.ImagePart):
        return _render_image(part)
    if isinstance(part, ir.DocumentPart):
        return _render_document(part)
    return None


def compact(blocks: list[JSON]) -> str | list[JSON]:
    """A lone plain text block is sent as a string, the shorthand clients use."""
    if len(blocks) == 1:
        block = blocks[0]
        if len(block) == 2 and block.get("type") == "text" and "text" in block:
            text: str = block["text"]
            return text
    return blocks


def _render_tool_result(part: ir.ToolResultPart, tool_ids: ToolIds) -> JSON:
    block: JSON = {"type": "tool_result", "tool_use_id": tool_ids(part.tool_call_id)}
    fields = own(part.extra, NAME)
    if len(part.content) == 1 and isinstance(part.content[0], ir.TextPart) and not fields.get("content"):
        only = part.content[0]
        rendered = _render_text(only) or {"type": "text", "text": ""}
        block["content"] = compact([rendered])
    else:
        rendered_items = []
        for position, item in enumerate(part.content):
            rendered_item = _render_media_or_text(item)
            if rendered_item is not None:
                rendered_items.append((position, rendered_item))
        items = interleave(rendered_items, fields.get("content"))
        if items:
            block["content"] = items
    if part.is_error:
        block["is_error"] = True
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    other = {key: value for key, value in fields.items() if key != "content"}
    return {**other, **block} if other else block


def _render_thinking(part: ir.ThinkingPart) -> JSON | None:
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.signature:
        # Without Anthropic's signature the API rejects a thinking block
        # (e.g. reasoning text from OpenAI-style upstreams): drop it.
        return None
    return merged({"type": "thinking", "thinking": part.text, "signature": part.signature}, part.extra, NAME)


def _render_part(part: ir.Part, tool_ids: ToolIds) -> JSON | None:
    if isinstance(part, ir.ToolCallPart):
        block: JSON = {"type": "tool_use", "id": tool_ids(part.id), "name": part.name,
                       "input": tool_input(part.arguments)}
        return merged(block, part.extra, NAME)
    if isinstance(part, ir.ToolResultPart):
        return _render_tool_result(part, tool_ids)
    if isinstance(part, ir.ThinkingPart):
        return _render_thinking(part)
    return _render_media_or_text(part)


def _render_blocks(message: ir.Message, tool_ids: ToolIds) -> list[JSON]:
    rendered = []
    for position, part in enumerate(message.parts):
        block = _render_part(part, tool_ids)
        if block is not None:
            rendered.append((position, block))
    return interleave(rendered, own(message.extra, NAME).get("content"))


def system_blocks(parts: list[ir.Part]) -> list[JSON]:
    blocks = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            block = _render_text(part)
            if block is not None:
                blocks.append(block)
    return blocks


def _tool_results_first(blocks: list[JSON]) -> list[JSON]:
    results = [block for block in blocks if block.get("type") == "tool_result"]
    if not results or len(results) == len(blocks):
        return blocks
    return results + [block for block in blocks if block.get("type") != "tool_result"]


class _Turn:
    __slots__ = ("blocks", "fields", "role")

    def __init__(self, role: str, blocks: list[JSON], fields: JSON) -> None:
        self.role = role
        self.blocks = blocks
        self.fields = fields

    def wire(self) -> JSON:
        blocks = _tool_results_first(self.blocks) if self.role == "user" else self.blocks
        return {**self.fields, "role": self.role, "content": compact(blocks)}


def _message_fields(message: ir.Message) -> JSON:
    fields = own(message.extra, NAME)
    if not fields:
        return {}
    return {key: value for key, value in fields.items() if key not in ("content", "role")}


def render_messages(messages: list[ir.Message], *, keep_system: bool) -> tuple[list[JSON], list[JSON]]:
    """-> (top-level system blocks from leading system messages, wire messages)."""
    tool_ids = ToolIds()
    system: list[JSON] = []
    turns: list[_Turn] = []
    leading = True
    for message in messages:
        if message.role == "system":
            blocks = system_blocks(message.parts)
            if leading:
                system.extend(blocks)
                continue
            role = "system" if keep_system else "user"
        else:
            leading = False
            role = message.role
            parts = message.parts
            if len(parts) == 1 and message.extra is None and type(only := parts[0]) is ir.TextPart:
                text = _render_text(only)  # the commonest message, one text: no interleaving to do
                blocks = [text] if text is not None else []
            else:
                blocks = _render_blocks(message, tool_ids)
        if not blocks:
            continue
        if turns and turns[-1].role == role:
            turns[-1].blocks.extend(blocks)  # the API wants alternating turns
        else:
            turns.append(_Turn(role, blocks, _message_fields(message)))
    return system, [turn.wire() for turn in turns]
