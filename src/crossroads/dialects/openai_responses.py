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
  by ``response.failed`` (the SDK yields both; Codex acts on ``response.failed``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from crossroads import ids, ir, reasoning, sse
from crossroads.assemble import Assembler, events_for
from crossroads.dialects.base import Dialect
from crossroads.dialects.wire import data_url as _data_url
from crossroads.dialects.wire import optional_str as _opt_str
from crossroads.dialects.wire import require_bool as _bool
from crossroads.dialects.wire import require_dict as _dict
from crossroads.dialects.wire import require_int as _int
from crossroads.dialects.wire import require_list as _list
from crossroads.dialects.wire import require_number as _number
from crossroads.dialects.wire import require_str as _str
from crossroads.dialects.wire import split_data_url as _split_data_url

NAME = "openai-responses"
_META = f"{NAME}:meta"  # Response.extra key for bookkeeping that must not reach the wire
_KIND_PREFIX = f"{NAME}:"
_SYNTH = "x"  # marks ids we made up: rs_x.., fc_x.., msg_x..

JSON = dict[str, Any]
ContentPart = ir.TextPart | ir.ImagePart | ir.DocumentPart
StreamPart = ir.TextPart | ir.ThinkingPart | ir.ToolCallPart

_INPUT_TEXT: JSON = {"type": "input_text"}
_OUTPUT_TEXT: JSON = {"type": "output_text", "annotations": []}
_TEXT_TYPES = frozenset({"input_text", "output_text"})
_WIRE_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
_FUNCTION_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
_MODELLED_TOP = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "max_output_tokens", "temperature", "top_p", "stream", "reasoning", "text", "user", "metadata",
})


# --------------------------------------------------------------------- small helpers


def _ours(extra: dict[str, Any] | None) -> JSON | None:
    if not extra:
        return None
    info = extra.get(NAME)
    return info if isinstance(info, dict) else None


def _own(part: ir.TextPart | ir.ThinkingPart | ir.ToolCallPart) -> JSON:
    """This dialect's extra dict on a part we created, made on first use."""
    if part.extra is None:
        part.extra = {}
    info = part.extra.get(NAME)
    if info is None:
        info = part.extra[NAME] = {}
    return info


def _synth_id(prefix: str) -> str:
    return ids.new_id(prefix + _SYNTH)


def _is_synth(item_id: Any) -> bool:
    if not isinstance(item_id, str):
        return False
    _, sep, rest = item_id.partition("_")
    return bool(sep) and rest.startswith(_SYNTH)
















def _leftover(obj: JSON, modelled: frozenset[str]) -> JSON:
    """Keys the IR does not hold (explicit nulls included, so they survive a round trip)."""
    return {k: v for k, v in obj.items() if k not in modelled or v is None}






# --------------------------------------------------------------------- content parts


def _parse_part(raw: Any, where: str, default_text: JSON) -> tuple[ContentPart, JSON | None]:
    """One wire content part -> IR part, plus wire keys the IR part cannot hold."""
    part = _dict(raw, where)
    kind = part.get("type")
    if kind in _TEXT_TYPES:
        text = _str(part.get("text"), f"{where}.text")
        shape = {k: v for k, v in part.items() if k != "text"}
        return ir.TextPart(text, extra=None if shape == default_text else {NAME: {"part": shape}}), None
    if kind == "refusal":
        text = _str(part.get("refusal"), f"{where}.refusal")
        shape = {k: v for k, v in part.items() if k != "refusal"}
        return ir.TextPart(text, extra={NAME: {"part": shape}}), None
    if kind == "input_image":
        return _parse_image(part, where)
    if kind == "input_file":
        return _parse_file(part, where)
    if not isinstance(kind, str):
        raise ir.bad_request(f"{where}.type must be a string", f"{where}.type")
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
    url = _str(url, f"{where}.image_url")
    detail = _opt_str(part.get("detail"), f"{where}.detail")
    inline = _split_data_url(url)
    if inline is not None:
        image = ir.ImagePart(media_type=inline[0], data=inline[1], detail=detail)
    else:
        image = ir.ImagePart(url=url, detail=detail)
    rest = {k: v for k, v in part.items() if k not in ("type", "image_url", "detail")}
    return image, rest or None


def _parse_file(part: JSON, where: str) -> tuple[ContentPart, JSON | None]:
    file_data, file_url = part.get("file_data"), part.get("file_url")
    filename = _opt_str(part.get("filename"), f"{where}.filename")
    if isinstance(file_data, str):
        inline = _split_data_url(file_data)
        if inline is not None:
            doc = ir.DocumentPart(media_type=inline[0], data=inline[1], filename=filename)
        else:
            doc = ir.DocumentPart(data=file_data, filename=filename)
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


def _parse_content(content: list[Any], where: str, default_text: JSON
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


def _render_text(part: ir.TextPart, default_text: JSON) -> JSON:
    info = _ours(part.extra)
    shape = info.get("part") if info else None
    if shape is None:
        return {**default_text, "text": part.text}
    kind = shape.get("type")
    if kind in _TEXT_TYPES:
        return {**shape, "text": part.text}
    if kind == "refusal":
        return {**shape, "refusal": part.text}
    return dict(shape)  # a placeholder: the wire part verbatim


def _render_part(part: ir.Part, default_text: JSON, detail_required: bool,
                 leftover: JSON | None) -> JSON | None:
    if isinstance(part, ir.TextPart):
        return _render_text(part, default_text)
    if isinstance(part, ir.ImagePart):
        if part.data is not None:
            url = _data_url(part.media_type, part.data, "image/png")
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
            doc["file_data"] = (_data_url(part.media_type, part.data, "application/octet-stream")
                                if part.media_type else part.data)
        elif part.url is not None:
            doc["file_url"] = part.url
        else:
            return None
        if part.filename is not None:
            doc["filename"] = part.filename
        return doc
    return None


# --------------------------------------------------------------------- assistant-side items


def _message_texts(item: JSON, where: str, default_text: JSON) -> list[ir.TextPart] | None:
    """A message item -> TextParts whose first part records the item (None: no content)."""
    content = item.get("content")
    head = {k: v for k, v in item.items() if k != "content"}
    if isinstance(content, str):
        return [ir.TextPart(content, extra={NAME: {"item": head, "string": True}})]
    content = _list(content, f"{where}.content")
    if not content:
        return None
    texts: list[ir.TextPart] = []
    for j, raw in enumerate(content):
        part, rest = _parse_part(raw, f"{where}.content[{j}]", default_text)
        if not isinstance(part, ir.TextPart) or rest:
            part = _placeholder(f"[{raw.get('type')}]", raw)
        texts.append(part)
    first = _own(texts[0])
    first["item"] = head
    if len(texts) > 1:
        first["n"] = len(texts)
    return texts


def _tool_call_part(item: JSON, where: str) -> ir.ToolCallPart:
    call_id = _str(item.get("call_id"), f"{where}.call_id")
    name = _str(item.get("name"), f"{where}.name")
    arguments = item.get("arguments", "")
    arguments = _str(arguments, f"{where}.arguments")
    rest = {k: v for k, v in item.items() if k not in ("type", "call_id", "name", "arguments")}
    return ir.ToolCallPart(id=call_id, name=name, arguments=arguments, extra={NAME: rest} if rest else None)


def _texts_of(entries: Any, where: str) -> list[str]:
    texts: list[str] = []
    for j, entry in enumerate(_list(entries, where)):
        entry = _dict(entry, f"{where}[{j}]")
        texts.append(_str(entry.get("text"), f"{where}[{j}].text"))
    return texts


def _thinking_part(item: JSON, where: str) -> ir.ThinkingPart:
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
    info = _ours(part.extra)
    if for_request:
        item_id = info.get("id") if info else None
        if part.encrypted is None and (item_id is None or _is_synth(item_id)):
            return None  # the API rejects reasoning it did not issue
    elif part.encrypted is None and not part.text and info is None:
        return None  # e.g. Anthropic redacted thinking: nothing to show
    item: JSON = {k: v for k, v in info.items() if k not in ("summary_lengths", "from_content")} if info else {}
    if for_request and _is_synth(item.get("id")):
        del item["id"]
    elif not for_request:
        item.setdefault("id", _synth_id("rs_"))
    item["type"] = "reasoning"
    item["summary"] = _summary_of(part, info)
    if part.encrypted is not None:
        item["encrypted_content"] = part.encrypted
    return item


def _function_call_item(part: ir.ToolCallPart, for_request: bool) -> JSON:
    info = _ours(part.extra)
    item: JSON = dict(info) if info else {}
    if for_request and _is_synth(item.get("id")):
        del item["id"]
    elif not for_request:
        item.setdefault("id", _synth_id("fc_"))
        item.setdefault("status", "completed")
    item["type"] = "function_call"
    item["call_id"] = part.id or _synth_id("call_")
    item["name"] = part.name
    item["arguments"] = part.arguments
    return item


def _assistant_items(parts: list[ir.Part], raw: list[Any] | None, for_request: bool) -> list[JSON]:
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
            info = _ours(part.extra)
            head = info.get("item") if info else None
            if head is None and remaining > 0 and open_content is not None:
                open_content.append(_render_text(part, _OUTPUT_TEXT))
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
        content = [_render_text(part, _OUTPUT_TEXT)]
        return {"id": _synth_id("msg_"), "type": "message", "role": "assistant",
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
        item.setdefault("id", _synth_id("msg_"))
        item.setdefault("type", "message")
        item.setdefault("status", "completed")
    content = [_render_text(part, _OUTPUT_TEXT)]
    item["content"] = content
    return item, content


def _output_parts(output: list[Any], where: str) -> tuple[list[ir.Part], list[Any], bool, bool]:
    """Response output items -> parts, verbatim items with positions, has_call, has_refusal."""
    parts: list[ir.Part] = []
    raw: list[Any] = []
    has_call = has_refusal = False
    for i, item in enumerate(output):
        item = _dict(item, f"{where}[{i}]")
        kind = item.get("type")
        if kind == "message":
            texts = _message_texts(item, f"{where}[{i}]", _OUTPUT_TEXT)
            if texts is None:
                raw.append([len(parts), item])
                continue
            has_refusal = has_refusal or any(_is_refusal(t) for t in texts)
            parts.extend(texts)
        elif kind == "function_call":
            parts.append(_tool_call_part(item, f"{where}[{i}]"))
            has_call = True
        elif kind == "reasoning":
            parts.append(_thinking_part(item, f"{where}[{i}]"))
        else:
            raw.append([len(parts), item])
    return parts, raw, has_call, has_refusal


def _is_refusal(part: ir.TextPart) -> bool:
    info = _ours(part.extra)
    shape = info.get("part") if info else None
    return isinstance(shape, dict) and shape.get("type") == "refusal"


# --------------------------------------------------------------------- request: input items


class _InputReader:
    """Folds the ``input`` item list into IR messages (see the module docstring)."""

    def __init__(self) -> None:
        self.messages: list[ir.Message] = []
        self.system: list[ir.TextPart] = []
        self.leading = True  # still in the run of leading system/developer items
        self.kind: str | None = None  # what the last message holds: assistant/results/user/system
        self.pending_raw: list[Any] = []
        self.call_names: dict[str, str] = {}

    def read(self, items: list[Any]) -> None:
        for i, raw_item in enumerate(items):
            self._item(_dict(raw_item, f"input[{i}]"), f"input[{i}]")
        if self.pending_raw:  # nothing but verbatim items: keep them on an empty user message
            self._new_message("user", "user")

    def _item(self, item: JSON, where: str) -> None:
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                self._system_item(item, where)
                return
            self.leading = False
            if role == "user":
                self._user_item(item, where)
            elif role == "assistant":
                texts = _message_texts(item, where, _OUTPUT_TEXT)
                if texts is None:
                    self._raw(item)
                else:
                    self._assistant().parts.extend(texts)
            else:
                raise ir.bad_request(f"{where}.role must be user, assistant, system or developer",
                                     f"{where}.role")
            return
        self.leading = False
        if kind == "function_call":
            call = _tool_call_part(item, where)
            self.call_names[call.id] = call.name
            self._assistant().parts.append(call)
        elif kind == "reasoning":
            self._assistant().parts.append(_thinking_part(item, where))
        elif kind == "function_call_output":
            self._tool_output(item, where)
        elif isinstance(kind, str) or "id" in item:
            self._raw(item)
        else:
            raise ir.bad_request(f"{where}.type must be a string", f"{where}.type")

    def _new_message(self, role: ir.Role, kind: str, extra: JSON | None = None) -> ir.Message:
        message = ir.Message(role=role, extra={NAME: extra} if extra is not None else None)
        if self.pending_raw:
            info = _message_info(message)
            info["raw"] = [[-1, item] for item in self.pending_raw]  # -1: before the first part
            self.pending_raw = []
        self.messages.append(message)
        self.kind = kind
        return message

    def _assistant(self) -> ir.Message:
        if self.kind == "assistant":
            return self.messages[-1]
        return self._new_message("assistant", "assistant")

    def _raw(self, item: JSON) -> None:
        if not self.messages:
            self.pending_raw.append(item)
            return
        message = self.messages[-1]
        _message_info(message).setdefault("raw", []).append([len(message.parts), item])

    def _system_item(self, item: JSON, where: str) -> None:
        content = item.get("content")
        all_text = isinstance(content, str) or (
            isinstance(content, list) and bool(content)
            and all(isinstance(p, dict) and p.get("type") in _TEXT_TYPES for p in content))
        if self.leading and not self.messages and not self.pending_raw and all_text:
            texts = _message_texts(item, where, _INPUT_TEXT)
            assert texts is not None
            self.system.extend(texts)
            return
        self.leading = False
        self._content_message("system", "system", item, where)

    def _user_item(self, item: JSON, where: str) -> None:
        self._content_message("user", "user", item, where)

    def _content_message(self, role: ir.Role, kind: str, item: JSON, where: str) -> None:
        content = item.get("content")
        info: JSON = {"item": {k: v for k, v in item.items() if k != "content"}}
        if isinstance(content, str):
            parts: list[ContentPart] = [ir.TextPart(content)]
            info["string"] = True
        else:
            parts, leftovers = _parse_content(_list(content, f"{where}.content"), f"{where}.content",
                                              _INPUT_TEXT)
            if leftovers:
                info["parts"] = leftovers
        message = self._new_message(role, kind, info)
        message.parts.extend(parts)

    def _tool_output(self, item: JSON, where: str) -> None:
        call_id = _str(item.get("call_id"), f"{where}.call_id")
        output = item.get("output")
        entry: JSON = {}
        if isinstance(output, str):
            content: list[ContentPart] = [ir.TextPart(output)]
        else:
            content, leftovers = _parse_content(_list(output, f"{where}.output"), f"{where}.output",
                                                _INPUT_TEXT)
            entry["list"] = True
            if leftovers:
                entry["parts"] = leftovers
        name = item.get("name")
        if isinstance(name, str):
            entry["named"] = True
        else:
            name = self.call_names.get(call_id)  # Gemini needs the function name on results
        head = {k: v for k, v in item.items()
                if k not in ("type", "call_id", "output") and not (k == "name" and entry.get("named"))}
        if head:
            entry["item"] = head
        if self.kind == "results":
            message = self.messages[-1]
        else:
            message = self._new_message("user", "results", {})
        _message_info(message).setdefault("outputs", {})[call_id] = entry
        message.parts.append(ir.ToolResultPart(tool_call_id=call_id, content=list(content), name=name))


def _message_info(message: ir.Message) -> JSON:
    if message.extra is None:
        message.extra = {}
    info = message.extra.get(NAME)
    if info is None:
        info = message.extra[NAME] = {}
    return info


# --------------------------------------------------------------------- request: rendering input


def _render_system(system: list[ir.TextPart]) -> tuple[str | None, list[JSON]]:
    """Request.system -> (instructions, leading system/developer items)."""
    loose: list[str] = []
    items: list[JSON] = []
    open_content: list[JSON] | None = None
    remaining = 0
    for part in system:
        info = _ours(part.extra)
        head = info.get("item") if info else None
        if head is None and remaining > 0 and open_content is not None:
            open_content.append(_render_text(part, _INPUT_TEXT))
            remaining -= 1
            continue
        remaining = 0
        if head is None and not items:
            loose.append(part.text)
            continue
        item = dict(head) if head is not None else {"type": "message"}
        if item.get("role") not in ("system", "developer"):
            item["role"] = "developer"
        if head is not None and info and info.get("string") and not info.get("part"):
            item["content"] = part.text
            open_content = None
        else:
            open_content = [_render_text(part, _INPUT_TEXT)]
            item["content"] = open_content
            remaining = (info.get("n", 1) - 1) if head is not None and info else 0
        items.append(item)
    return ("\n\n".join(loose) if loose else None), items


def _render_messages(messages: list[ir.Message]) -> list[JSON]:
    items: list[JSON] = []
    for message in messages:
        info = _ours(message.extra)
        raw = info.get("raw") if info else None
        if message.role == "assistant":
            items.extend(_assistant_items(message.parts, raw, for_request=True))
            continue
        rendered = _render_user_side(message, info)
        if raw:
            items.extend(_interleave(rendered, raw))
        else:
            items.extend(item for _, item in rendered)
    return items


def _interleave(rendered: list[tuple[int, JSON]], raw: list[Any]) -> list[JSON]:
    """Place each verbatim ``[position, item]`` before the item holding part ``position``
    (-1: before everything; an item with no parts counts as position -1)."""
    out: list[JSON] = []
    raw_iter = iter(raw)
    pending = next(raw_iter, None)
    for first_part, item in rendered:
        while pending is not None and pending[0] <= first_part:
            out.append(pending[1])
            pending = next(raw_iter, None)
        out.append(item)
    while pending is not None:
        out.append(pending[1])
        pending = next(raw_iter, None)
    return out


def _render_user_side(message: ir.Message, info: JSON | None) -> list[tuple[int, JSON]]:
    """A user or system message -> [(index of its first part, item)]."""
    outputs = info.get("outputs") if info else None
    leftovers = info.get("parts") if info else None
    head = info.get("item") if info else None
    has_results = any(isinstance(p, ir.ToolResultPart) for p in message.parts)
    out: list[tuple[int, JSON]] = []
    content: list[JSON] | None = None
    for index, part in enumerate(message.parts):
        if isinstance(part, ir.ToolResultPart):
            content = None
            entry = outputs.get(part.tool_call_id) if outputs else None
            out.append((index, _render_tool_output(part, entry or {})))
            continue
        rendered = _render_part(part, _INPUT_TEXT, True, leftovers.get(index) if leftovers else None)
        if rendered is None:
            continue
        if content is None:
            content = []
            out.append((index, _content_item(message.role, None if has_results else head, content)))
        content.append(rendered)
    if not message.parts and head is not None:  # an empty message the client sent as such
        out.append((-1, _content_item(message.role, head, [])))
    if head is not None and info and info.get("string") and not has_results and len(out) == 1:
        parts = message.parts
        if len(parts) == 1 and isinstance(parts[0], ir.TextPart) and _ours(parts[0].extra) is None:
            out[0][1]["content"] = parts[0].text
    return out


def _content_item(role: ir.Role, head: JSON | None, content: list[JSON]) -> JSON:
    item: JSON = dict(head) if head is not None else {"type": "message"}
    wire_role = item.get("role")
    if role == "system":
        if wire_role not in ("system", "developer"):
            item["role"] = "developer"
    else:
        item["role"] = role
    item["content"] = content
    return item


def _render_tool_output(part: ir.ToolResultPart, entry: JSON) -> JSON:
    item: JSON = dict(entry.get("item") or {})
    item["type"] = "function_call_output"
    item["call_id"] = part.tool_call_id
    if entry.get("named") and part.name is not None:
        item["name"] = part.name
    content = part.content
    if (not entry.get("list") and len(content) == 1 and isinstance(content[0], ir.TextPart)
            and _ours(content[0].extra) is None):
        item["output"] = content[0].text
    elif not content and not entry.get("list"):
        item["output"] = ""
    else:
        leftovers = entry.get("parts")
        rendered = (_render_part(p, _INPUT_TEXT, False, leftovers.get(j) if leftovers else None)
                    for j, p in enumerate(content))
        item["output"] = [r for r in rendered if r is not None]
    return item


# --------------------------------------------------------------------- request: tools & options


def _parse_tool(raw: Any, where: str) -> ir.Tool:
    tool = _dict(raw, where)
    kind = tool.get("type")
    if kind == "function":
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ir.bad_request(f"{where}.parameters must be an object", f"{where}.parameters")
        strict = tool.get("strict")
        if strict is not None:
            strict = _bool(strict, f"{where}.strict")
        return ir.Tool(
            name=_str(tool.get("name"), f"{where}.name"),
            description=_opt_str(tool.get("description"), f"{where}.description"),
            parameters=parameters,
            strict=strict,
            raw=tool if any(k not in _FUNCTION_TOOL_KEYS for k in tool) else None,
        )
    if not isinstance(kind, str):
        raise ir.bad_request(f"{where}.type must be a string", f"{where}.type")
    name = tool.get("name")
    return ir.Tool(name=name if isinstance(name, str) else kind, kind=_KIND_PREFIX + kind, raw=tool)


def _render_tool(tool: ir.Tool) -> JSON | None:
    if tool.kind == "function":
        out: JSON = {k: v for k, v in tool.raw.items() if k not in _FUNCTION_TOOL_KEYS} if tool.raw else {}
        out["type"] = "function"
        out["name"] = tool.name
        if tool.description is not None:
            out["description"] = tool.description
        out["parameters"] = tool.parameters
        out["strict"] = tool.strict if tool.strict is not None else False
        return out
    if tool.kind.startswith(_KIND_PREFIX) and tool.raw is not None:
        return tool.raw
    return None  # another dialect's provider tool


def _parse_tool_choice(value: Any) -> ir.ToolChoice | None:
    if value in ("auto", "none", "required"):
        return ir.ToolChoice(mode=value)
    if (isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str)
            and len(value) == 2):
        return ir.ToolChoice(mode="tool", name=value["name"])
    if isinstance(value, str):
        raise ir.bad_request("tool_choice must be auto, none, required or an object", "tool_choice")
    return None  # allowed_tools, hosted tool types, mcp, custom: kept verbatim in extra


def _render_tool_choice(choice: ir.ToolChoice) -> str | JSON:
    if choice.mode == "tool":
        return {"type": "function", "name": choice.name or ""}
    return choice.mode


def _parse_reasoning(value: JSON) -> ir.Reasoning:
    effort = _opt_str(value.get("effort"), "reasoning.effort")
    if effort is not None:
        reasoning.budget_for_level(effort)  # validates the level name
    return ir.Reasoning(effort=effort, summary=_opt_str(value.get("summary"), "reasoning.summary"))


def _wire_effort(setting: ir.Reasoning) -> str | None:
    if setting.effort is not None and setting.effort.lower() in _WIRE_EFFORTS:
        return setting.effort.lower()
    level = reasoning.effective_level(setting)
    return reasoning.OPENAI_EFFORTS.get(level) if level is not None else None


def _parse_format(value: JSON) -> ir.ResponseFormat:
    kind = value.get("type")
    if kind == "text" or kind == "json_object":
        return ir.ResponseFormat(type=kind)
    if kind == "json_schema":
        schema = value.get("schema")
        if not isinstance(schema, dict):
            raise ir.bad_request("text.format.schema must be an object", "text.format.schema")
        strict = value.get("strict")
        return ir.ResponseFormat(
            type="json_schema", schema=schema,
            name=_opt_str(value.get("name"), "text.format.name"),
            strict=_bool(strict, "text.format.strict") if strict is not None else None)
    raise ir.bad_request("text.format.type must be text, json_object or json_schema", "text.format.type")


def _render_format(fmt: ir.ResponseFormat, leftover: Any) -> JSON:
    out: JSON = dict(leftover) if isinstance(leftover, dict) and leftover.get("type") == fmt.type else {}
    out["type"] = fmt.type
    if fmt.type == "json_schema":
        out["name"] = fmt.name or "response"
        out["schema"] = fmt.schema if fmt.schema is not None else {}
        if fmt.strict is not None:
            out["strict"] = fmt.strict
    return out


# --------------------------------------------------------------------- responses


def _parse_usage(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    inp = raw.get("input_tokens_details")
    out = raw.get("output_tokens_details")
    inp = inp if isinstance(inp, dict) else {}
    out = out if isinstance(out, dict) else {}
    return ir.Usage(
        input_tokens=_count(raw.get("input_tokens")),
        output_tokens=_count(raw.get("output_tokens")),
        cache_read_tokens=_count(inp.get("cached_tokens")),
        cache_write_tokens=_count(inp.get("cache_write_tokens")),
        reasoning_tokens=_count(out.get("reasoning_tokens")),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _render_usage(usage: ir.Usage) -> JSON:
    # The SDK's ResponseUsage requires every field below: the one place None renders as 0.
    input_tokens = usage.input_tokens or 0
    output_tokens = usage.output_tokens or 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens or 0,
                                 "cache_write_tokens": usage.cache_write_tokens or 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": input_tokens + output_tokens,
    }


_INCOMPLETE_STOPS: dict[str, ir.StopReason] = {
    "max_output_tokens": "max_tokens",
    "content_filter": "content_filter",
}


def _stop_reason(status: Any, incomplete: Any, has_call: bool, has_refusal: bool) -> ir.StopReason | None:
    if status == "completed":
        return "tool_use" if has_call else "refusal" if has_refusal else "end_turn"
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return _INCOMPLETE_STOPS.get(reason) if isinstance(reason, str) else None
    if status == "failed":
        return "error"
    return None


def _status_for(stop: ir.StopReason | None) -> tuple[str, JSON | None]:
    if stop == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    if stop == "error":
        return "failed", None
    return "completed", None


_MODELLED_RESPONSE = frozenset({"id", "object", "created_at", "model", "output", "usage", "status",
                                "incomplete_details"})


def _response_defaults() -> JSON:
    """Fields the SDK's Response model requires that the IR does not carry."""
    return {"error": None, "incomplete_details": None, "instructions": None, "metadata": None,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}


# --------------------------------------------------------------------- errors


_ERROR_TYPES: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "overloaded": "server_error",
    "server_error": "server_error",
    "timeout": "timeout_error",
}
# ResponseError.code (in response.failed) is a closed set in the SDK.
_FAILED_CODES: dict[str, str] = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}
_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "insufficient_quota", "usage_limit_reached",
                               "usage_not_included"})
_RETRY_IN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PIECE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _retry_after(error: JSON) -> float | None:
    """Retry hints OpenAI puts inside bodies: resets_in_seconds / resets_at (Codex usage
    limits) and "Please try again in 1m3.5s" in messages."""
    seconds = error.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    resets_at = error.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        return max(0.0, float(resets_at) - time.time())
    message = error.get("message")
    if isinstance(message, str):
        match = _RETRY_IN.search(message)
        if match:
            return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PIECE.findall(match.group(1)))
    return None


def _error_from_code(code: Any, message: str, param: Any = None, retry_after: float | None = None) -> ir.Error:
    """A mid-stream / response.failed error (which carries a code but no HTTP status)."""
    code_str = code if isinstance(code, str) else None
    if code_str in _RATE_LIMIT_CODES:
        status = 429
    elif code_str and (code_str.startswith(("invalid", "image", "context_length", "unsupported"))
                       or "image" in code_str):
        status = 400
    elif code_str in ("server_is_overloaded", "slow_down"):
        status = 503
    else:
        status = 500
    return ir.Error(status, ir.kind_for_status(status), message or "upstream error",
                    retry_after=retry_after, param=param if isinstance(param, str) else None, code=code_str)


def _failed_error(error: ir.Error) -> JSON:
    return {"code": error.code or _FAILED_CODES.get(error.kind, "server_error"), "message": error.message}


# --------------------------------------------------------------------- the dialect


class OpenAIResponsesDialect:
    stream_terminators: tuple[bytes, ...] = (b"response.completed", b"response.incomplete", b"response.failed")
    needs_inline_images = False
    name = NAME

    # ---- requests

    def parse_request(self, body: dict[str, Any], *, model: str | None = None,
                      stream: bool | None = None) -> ir.Request:
        if not isinstance(body, dict):
            raise ir.bad_request("request body must be a JSON object")
        model_name = model if model is not None else _str(body.get("model"), "model")
        reader = _InputReader()
        instructions = body.get("instructions")
        if instructions is not None:
            reader.system.append(ir.TextPart(_str(instructions, "instructions")))
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            reader.messages.append(ir.Message("user", [ir.TextPart(raw_input)],
                                              extra={NAME: {"input_string": True}}))
        elif raw_input is not None:
            reader.read(_list(raw_input, "input"))
        request = ir.Request(model=model_name, messages=reader.messages, system=reader.system)
        extra = {k: v for k, v in body.items() if k not in _MODELLED_TOP or v is None}
        if isinstance(raw_input, list) and not raw_input:
            extra["input"] = []
        self._parse_options(body, request, extra)
        if stream is not None:
            request.stream = stream
        if extra:
            request.extra[NAME] = extra
        return request

    def _parse_options(self, body: JSON, request: ir.Request, extra: JSON) -> None:
        tools = body.get("tools")
        if tools is not None:
            request.tools = [_parse_tool(t, f"tools[{i}]") for i, t in enumerate(_list(tools, "tools"))]
        choice = body.get("tool_choice")
        if choice is not None:
            request.tool_choice = _parse_tool_choice(choice)
            if request.tool_choice is None:
                extra["tool_choice"] = choice
        if body.get("parallel_tool_calls") is not None:
            request.parallel_tool_calls = _bool(body["parallel_tool_calls"], "parallel_tool_calls")
        if body.get("max_output_tokens") is not None:
            request.max_tokens = _int(body["max_output_tokens"], "max_output_tokens")
        if body.get("temperature") is not None:
            request.temperature = _number(body["temperature"], "temperature")
        if body.get("top_p") is not None:
            request.top_p = _number(body["top_p"], "top_p")
        stream = body.get("stream")
        if stream is not None:
            request.stream = _bool(stream, "stream")
            if not stream:
                extra["stream"] = False
        if body.get("reasoning") is not None:
            value = _dict(body["reasoning"], "reasoning")
            request.reasoning = _parse_reasoning(value)
            rest = _leftover(value, frozenset({"effort", "summary"}))
            if rest:
                extra["reasoning"] = rest
        if body.get("text") is not None:
            value = _dict(body["text"], "text")
            rest = _leftover(value, frozenset({"format"}))
            fmt = value.get("format")
            if fmt is not None:
                fmt = _dict(fmt, "text.format")
                request.response_format = _parse_format(fmt)
                rest["format"] = _leftover(fmt, frozenset({"name", "schema", "strict"}))
            if rest:
                extra["text"] = rest
        if body.get("user") is not None:
            request.user = _str(body["user"], "user")
        if body.get("metadata") is not None:
            request.metadata = _dict(body["metadata"], "metadata")

    def render_request(self, request: ir.Request) -> dict[str, Any]:
        extra = request.extra.get(NAME)
        body: JSON = dict(extra) if extra else {}
        body["model"] = request.model
        instructions, items = _render_system(request.system)
        if instructions is not None:
            body["instructions"] = instructions
        items.extend(_render_messages(request.messages))
        text_input = _input_string(request, items)
        if text_input is not None:
            body["input"] = text_input
        elif items:
            body["input"] = items
        tools = [t for t in map(_render_tool, request.tools) if t is not None]
        if tools:
            body["tools"] = tools
        if request.tool_choice is not None and (tools or request.tool_choice.mode in ("auto", "none")):
            body["tool_choice"] = _render_tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stream:
            body["stream"] = True
        self._render_reasoning(request, body)
        self._render_text(request, body)
        if request.user is not None:
            body["user"] = request.user
        if request.metadata is not None:
            body["metadata"] = request.metadata
        return body

    @staticmethod
    def _render_reasoning(request: ir.Request, body: JSON) -> None:
        setting = request.reasoning
        if setting is None:
            if isinstance(body.get("reasoning"), dict):
                del body["reasoning"]
            return
        leftover = body.get("reasoning")
        out: JSON = dict(leftover) if isinstance(leftover, dict) else {}
        effort = _wire_effort(setting)
        if effort is not None:
            out["effort"] = effort
        summary = setting.summary or ("auto" if setting.include_thoughts else None)
        if summary is not None:
            out["summary"] = summary
        body["reasoning"] = out

    @staticmethod
    def _render_text(request: ir.Request, body: JSON) -> None:
        leftover = body.get("text")
        text: JSON = dict(leftover) if isinstance(leftover, dict) else {}
        old_format = text.pop("format", None)
        if request.response_format is not None:
            text["format"] = _render_format(request.response_format, old_format)
        if text:
            body["text"] = text
        elif isinstance(leftover, dict):
            del body["text"]

    # ---- responses

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        if not isinstance(body, dict):
            raise ir.Error(502, "server_error", "upstream response is not a JSON object")
        output = body.get("output")
        try:
            parts, raw, has_call, has_refusal = _output_parts(output if isinstance(output, list) else [],
                                                              "output")
        except ir.Error as error:
            raise ir.Error(502, "server_error", f"malformed upstream response: {error.message}") from None
        status, incomplete = body.get("status"), body.get("incomplete_details")
        stop = _stop_reason(status, incomplete, has_call, has_refusal)
        created, response_id, model = body.get("created_at"), body.get("id"), body.get("model")
        response = ir.Response(
            id=response_id if isinstance(response_id, str) else "",
            model=model if isinstance(model, str) else "",
            parts=parts,
            stop_reason=stop,
            usage=_parse_usage(body.get("usage")),
            created=int(created) if isinstance(created, int | float) and not isinstance(created, bool) else None,
        )
        extra = {k: v for k, v in body.items() if k not in _MODELLED_RESPONSE}
        if extra:
            response.extra[NAME] = extra
        meta: JSON = {}
        if raw:
            meta["raw"] = raw
        if _status_for(stop) != (status, incomplete):
            meta["status"] = {"for": stop, "status": status, "incomplete_details": incomplete}
        if "usage" in body and response.usage is None:
            meta["usage"] = body["usage"]
        if meta:
            response.extra[_META] = meta
        return response

    def render_response(self, response: ir.Response) -> dict[str, Any]:
        meta = response.extra.get(_META) or {}
        body = _response_defaults()
        extra = response.extra.get(NAME)
        if extra:
            body.update(extra)
        status, incomplete = _status_for(response.stop_reason)
        kept = meta.get("status")
        if kept and kept.get("for") == response.stop_reason:
            status, incomplete = kept["status"], kept["incomplete_details"]
        body["id"] = response.id or ids.new_id("resp_")
        body["object"] = "response"
        body["created_at"] = response.created if response.created is not None else int(time.time())
        body["status"] = status
        body["incomplete_details"] = incomplete
        body["model"] = response.model
        body["output"] = _assistant_items(response.parts, meta.get("raw"), for_request=False)
        if response.usage is not None:
            body["usage"] = _render_usage(response.usage)
        else:
            body["usage"] = meta.get("usage")
        if status == "failed" and body.get("error") is None:
            body["error"] = {"code": "server_error", "message": "the upstream model reported an error"}
        return body

    # ---- streams

    def stream_decoder(self) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder()

    def stream_encoder(self, *, model: str, request: ir.Request | None = None,
                       sse: bool = True) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(model=model, request=request)

    # ---- errors

    def parse_error(self, status: int, body: bytes) -> ir.Error:
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        kind = ir.kind_for_status(status)
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            return ir.Error(
                status, kind,
                message if isinstance(message, str) and message else f"upstream returned HTTP {status}",
                retry_after=_retry_after(error),
                param=error.get("param") if isinstance(error.get("param"), str) else None,
                code=code if isinstance(code, str) else (error.get("type") if isinstance(error.get("type"), str)
                                                         and status == 429 else None),
            )
        if isinstance(error, str) and error:
            return ir.Error(status, kind, error)
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
            return ir.Error(status, kind, payload["detail"])
        text = body.decode("utf-8", "replace").strip()[:500] if body else ""
        return ir.Error(status, kind, text or f"upstream returned HTTP {status}")

    def render_error(self, error: ir.Error) -> tuple[int, dict[str, Any]]:
        code = error.code
        if code is None and error.kind == "rate_limit":
            code = "rate_limit_exceeded"
        return error.status, {"error": {"message": error.message, "type": _ERROR_TYPES.get(error.kind, "server_error"),
                                        "param": error.param, "code": code}}


def _input_string(request: ir.Request, items: list[JSON]) -> str | None:
    """``input`` was a plain string and still is a lone user text."""
    if len(request.messages) != 1 or len(items) != 1:
        return None
    message = request.messages[0]
    info = _ours(message.extra)
    if not info or not info.get("input_string") or message.role != "user" or len(message.parts) != 1:
        return None
    part = message.parts[0]
    if not isinstance(part, ir.TextPart) or _ours(part.extra) is not None:
        return None
    if items[0].get("role") != "user":
        return None
    return part.text


# --------------------------------------------------------------------- stream decoder


class _Reasoning:
    __slots__ = ("content", "summary")

    def __init__(self) -> None:
        self.summary: dict[int, str] = {}
        self.content: dict[int, str] = {}

    def text(self) -> str:
        if self.summary:
            return "\n\n".join(self.summary[i] for i in sorted(self.summary))
        return "".join(self.content[i] for i in sorted(self.content))


class ResponsesStreamDecoder:
    """Responses SSE events -> IR events (see the module docstring on reasoning)."""

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: set[int] = set()
        self._streamed: set[int] = set()  # IR indices that received a delta
        self._texts: dict[tuple[int, int], int] = {}  # (output_index, content_index) -> IR index
        self._calls: dict[int, int] = {}  # output_index -> IR index
        self._messages: dict[int, JSON] = {}  # output_index -> message item head
        self._reasoning: dict[int, _Reasoning] = {}
        self._has_call = False
        self._has_refusal = False

    def feed(self, event: str | None, data: str) -> list[ir.Event]:
        if self._done or not data or data == "[DONE]":
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or event
        out: list[ir.Event] = []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(payload.get("response"), out)
            return out
        if kind in ("response.completed", "response.incomplete"):
            self._finish(payload.get("response"), "completed" if kind == "response.completed" else "incomplete",
                         out)
            return out
        if kind == "response.failed":
            return self._fail(payload.get("response"))
        if kind == "error":
            return self._error(payload)
        handler = _DECODE_HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            self._start(None, out)
            handler(self, payload, out)
        return out

    def close(self) -> list[ir.Event]:
        if self._done:
            return []
        self._done = True
        return [ir.ErrorEvent(ir.Error(502, "server_error", "upstream stream ended before completion"))]

    # ---- lifecycle

    def _start(self, response: Any, out: list[ir.Event]) -> None:
        if self._started:
            return
        self._started = True
        response = response if isinstance(response, dict) else {}
        response_id = response.get("id")
        model = response.get("model")
        out.append(ir.Start(id=response_id if isinstance(response_id, str) else ids.new_id("resp_"),
                            model=model if isinstance(model, str) else ""))

    def _finish(self, response: Any, status: str, out: list[ir.Event]) -> None:
        self._start(response, out)
        response = response if isinstance(response, dict) else {}
        for output_index in sorted(self._reasoning):
            self._emit_reasoning(output_index, {}, out)
        for index in sorted(self._open):
            out.append(ir.PartStop(index))
        self._open.clear()
        output = response.get("output")
        if self._next_index == 0 and isinstance(output, list) and output:
            self._replay_output(output, out)  # a server that sent only the final response
        stop = _stop_reason(response.get("status", status), response.get("incomplete_details"),
                            self._has_call, self._has_refusal)
        out.append(ir.Finish(stop_reason=stop, usage=_parse_usage(response.get("usage"))))
        self._done = True

    def _replay_output(self, output: list[Any], out: list[ir.Event]) -> None:
        try:
            parts, _, has_call, has_refusal = _output_parts(output, "output")
        except ir.Error:
            return
        self._has_call, self._has_refusal = has_call, has_refusal
        # only called before any part was emitted, so events_for's indices (from 0) fit
        out.extend(e for e in events_for(ir.Response(id="", model="", parts=parts))
                   if isinstance(e, ir.PartStart | ir.PartDelta | ir.PartStop))
        self._next_index = len(parts)

    def _fail(self, response: Any) -> list[ir.Event]:
        self._done = True
        error = response.get("error") if isinstance(response, dict) else None
        if not isinstance(error, dict):
            return [ir.ErrorEvent(ir.Error(502, "server_error", "upstream response failed"))]
        message = error.get("message")
        return [ir.ErrorEvent(_error_from_code(error.get("code"), message if isinstance(message, str) else "",
                                               error.get("param"), _retry_after(error)))]

    def _error(self, payload: JSON) -> list[ir.Event]:
        self._done = True
        nested = payload.get("error")
        source = nested if isinstance(nested, dict) else payload
        message = source.get("message")
        return [ir.ErrorEvent(_error_from_code(source.get("code") or source.get("type"),
                                               message if isinstance(message, str) else "",
                                               source.get("param"), _retry_after(source)))]

    # ---- parts

    def _begin(self, part: StreamPart, out: list[ir.Event]) -> int:
        index = self._next_index
        self._next_index += 1
        self._open.add(index)
        out.append(ir.PartStart(index, part))
        return index

    def _delta(self, index: int | None, text: str, out: list[ir.Event]) -> None:
        if index is not None and index in self._open and text:
            self._streamed.add(index)
            out.append(ir.PartDelta(index, text=text))

    def _stop(self, index: int | None, out: list[ir.Event]) -> None:
        if index is not None and index in self._open:
            self._open.discard(index)
            out.append(ir.PartStop(index))

    def _on_item_added(self, payload: JSON, out: list[ir.Event]) -> None:
        item, output_index = payload.get("item"), payload.get("output_index")
        if not isinstance(item, dict) or not isinstance(output_index, int):
            return
        kind = item.get("type")
        if kind == "message":
            self._messages[output_index] = {k: v for k, v in item.items() if k not in ("content", "status")}
        elif kind == "reasoning":
            self._reasoning[output_index] = _Reasoning()
        elif kind == "function_call":
            self._begin_call(output_index, item, out)

    def _begin_call(self, output_index: int, item: JSON, out: list[ir.Event]) -> int:
        rest = {k: v for k, v in item.items() if k not in ("type", "call_id", "name", "arguments", "status")}
        call_id, name = item.get("call_id"), item.get("name")
        part = ir.ToolCallPart(id=call_id if isinstance(call_id, str) else "",
                               name=name if isinstance(name, str) else "",
                               extra={NAME: rest} if rest else None)
        index = self._begin(part, out)
        self._calls[output_index] = index
        self._has_call = True
        arguments = item.get("arguments")
        if isinstance(arguments, str):
            self._delta(index, arguments, out)
        return index

    def _text_index(self, payload: JSON, out: list[ir.Event], refusal: bool = False) -> int | None:
        output_index, content_index = payload.get("output_index"), payload.get("content_index", 0)
        if not isinstance(output_index, int) or not isinstance(content_index, int):
            return None
        key = (output_index, content_index)
        index = self._texts.get(key)
        if index is None:  # a server that skipped content_part.added
            index = self._begin_text(key, {"type": "refusal"} if refusal else None, out)
        return index

    def _begin_text(self, key: tuple[int, int], shape: JSON | None, out: list[ir.Event]) -> int:
        info: JSON = {}
        head = self._messages.get(key[0])
        if head is not None and key[1] == 0:
            info["item"] = head
        if shape is not None and shape != _OUTPUT_TEXT:
            info["part"] = shape
            self._has_refusal = self._has_refusal or shape.get("type") == "refusal"
        index = self._begin(ir.TextPart("", extra={NAME: info} if info else None), out)
        self._texts[key] = index
        return index

    def _on_content_part_added(self, payload: JSON, out: list[ir.Event]) -> None:
        part, output_index = payload.get("part"), payload.get("output_index")
        content_index = payload.get("content_index", 0)
        if not isinstance(part, dict) or not isinstance(output_index, int) or not isinstance(content_index, int):
            return
        kind = part.get("type")
        if kind not in ("output_text", "refusal") or (output_index, content_index) in self._texts:
            return
        text_key = "text" if kind == "output_text" else "refusal"
        shape = {k: v for k, v in part.items() if k != text_key}
        index = self._begin_text((output_index, content_index), shape, out)
        initial = part.get(text_key)
        if isinstance(initial, str):
            self._delta(index, initial, out)

    def _on_text_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, str):
            self._delta(self._text_index(payload, out), delta, out)

    def _on_refusal_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, str):
            self._delta(self._text_index(payload, out, refusal=True), delta, out)

    def _on_text_done(self, payload: JSON, out: list[ir.Event]) -> None:
        text = payload.get("text", payload.get("refusal"))
        index = self._text_index(payload, out, refusal="refusal" in payload)
        if isinstance(text, str) and index is not None and index not in self._streamed:
            self._delta(index, text, out)

    def _on_content_part_done(self, payload: JSON, out: list[ir.Event]) -> None:
        output_index, content_index = payload.get("output_index"), payload.get("content_index", 0)
        if isinstance(output_index, int) and isinstance(content_index, int):
            index = self._texts.get((output_index, content_index))
            part = payload.get("part")
            if index is not None and index not in self._streamed and isinstance(part, dict):
                text = part.get("text", part.get("refusal"))
                if isinstance(text, str):
                    self._delta(index, text, out)
            self._stop(index, out)

    def _on_arguments_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        delta, output_index = payload.get("delta"), payload.get("output_index")
        if isinstance(delta, str) and isinstance(output_index, int):
            self._delta(self._calls.get(output_index), delta, out)

    def _on_arguments_done(self, payload: JSON, out: list[ir.Event]) -> None:
        arguments, output_index = payload.get("arguments"), payload.get("output_index")
        if isinstance(arguments, str) and isinstance(output_index, int):
            index = self._calls.get(output_index)
            if index is not None and index not in self._streamed:
                self._delta(index, arguments, out)

    def _reasoning_state(self, payload: JSON) -> _Reasoning | None:
        output_index = payload.get("output_index")
        if not isinstance(output_index, int):
            return None
        return self._reasoning.setdefault(output_index, _Reasoning())

    def _on_summary_part_added(self, payload: JSON, out: list[ir.Event]) -> None:
        state, summary_index = self._reasoning_state(payload), payload.get("summary_index", 0)
        if state is not None and isinstance(summary_index, int):
            state.summary.setdefault(summary_index, "")

    def _on_summary_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        state, summary_index, delta = (self._reasoning_state(payload), payload.get("summary_index", 0),
                                       payload.get("delta"))
        if state is not None and isinstance(summary_index, int) and isinstance(delta, str):
            state.summary[summary_index] = state.summary.get(summary_index, "") + delta

    def _on_reasoning_text_delta(self, payload: JSON, out: list[ir.Event]) -> None:
        state, content_index, delta = (self._reasoning_state(payload), payload.get("content_index", 0),
                                       payload.get("delta"))
        if state is not None and isinstance(content_index, int) and isinstance(delta, str):
            state.content[content_index] = state.content.get(content_index, "") + delta

    def _on_item_done(self, payload: JSON, out: list[ir.Event]) -> None:
        item, output_index = payload.get("item"), payload.get("output_index")
        if not isinstance(item, dict) or not isinstance(output_index, int):
            return
        kind = item.get("type")
        if kind == "reasoning":
            self._emit_reasoning(output_index, item, out)
        elif kind == "function_call":
            index = self._calls.get(output_index)
            if index is None:
                index = self._begin_call(output_index, item, out)
            elif index not in self._streamed:
                arguments = item.get("arguments")
                if isinstance(arguments, str):
                    self._delta(index, arguments, out)
            self._stop(index, out)
        elif kind == "message":
            self._finish_message(output_index, item, out)

    def _finish_message(self, output_index: int, item: JSON, out: list[ir.Event]) -> None:
        content = item.get("content")
        if isinstance(content, list):
            self._messages.setdefault(output_index, {k: v for k, v in item.items()
                                                     if k not in ("content", "status")})
            for content_index, part in enumerate(content):
                key = (output_index, content_index)
                if key in self._texts or not isinstance(part, dict):
                    continue
                # a server that sent the finished message only
                self._on_content_part_added({"part": part, "output_index": output_index,
                                             "content_index": content_index}, out)
        for (item_index, _), index in list(self._texts.items()):
            if item_index == output_index:
                self._stop(index, out)

    def _emit_reasoning(self, output_index: int, item: JSON, out: list[ir.Event]) -> None:
        state = self._reasoning.pop(output_index, None)
        try:
            part = _thinking_part(item, "item") if item else ir.ThinkingPart(extra={NAME: {}})
        except ir.Error:
            part = ir.ThinkingPart(extra={NAME: {}})
        text = part.text or (state.text() if state is not None else "")
        index = self._begin(ir.ThinkingPart(encrypted=part.encrypted, extra=part.extra), out)
        self._delta(index, text, out)
        self._stop(index, out)


_DECODE_HANDLERS: dict[str, Callable[[ResponsesStreamDecoder, JSON, list[ir.Event]], None]] = {
    "response.output_item.added": ResponsesStreamDecoder._on_item_added,
    "response.content_part.added": ResponsesStreamDecoder._on_content_part_added,
    "response.output_text.delta": ResponsesStreamDecoder._on_text_delta,
    "response.refusal.delta": ResponsesStreamDecoder._on_refusal_delta,
    "response.output_text.done": ResponsesStreamDecoder._on_text_done,
    "response.refusal.done": ResponsesStreamDecoder._on_text_done,
    "response.content_part.done": ResponsesStreamDecoder._on_content_part_done,
    "response.function_call_arguments.delta": ResponsesStreamDecoder._on_arguments_delta,
    "response.function_call_arguments.done": ResponsesStreamDecoder._on_arguments_done,
    "response.reasoning_summary_part.added": ResponsesStreamDecoder._on_summary_part_added,
    "response.reasoning_summary_text.delta": ResponsesStreamDecoder._on_summary_delta,
    "response.reasoning_text.delta": ResponsesStreamDecoder._on_reasoning_text_delta,
    "response.output_item.done": ResponsesStreamDecoder._on_item_done,
}


# --------------------------------------------------------------------- stream encoder


class _Item:
    """An output item the encoder has opened for one IR part."""

    __slots__ = ("call_id", "item_id", "kind", "output_index", "refusal", "summary_open")

    def __init__(self, kind: str, output_index: int, item_id: str) -> None:
        self.kind = kind
        self.output_index = output_index
        self.item_id = item_id
        self.call_id = ""
        self.refusal = False
        self.summary_open = False


class ResponsesStreamEncoder:
    """IR events -> Responses SSE, in the order the SDK and Codex expect."""

    def __init__(self, *, model: str, request: ir.Request | None = None) -> None:
        self._model = model
        self._request = request
        self._id = ""
        self._created = int(time.time())
        self._seq = 0
        self._started = False
        self._finished = False
        self._assembler = Assembler()
        self._items: dict[int, _Item] = {}  # IR index -> open item
        self._skipped: set[int] = set()
        self._output: list[JSON | None] = []  # finished items by output_index
        self._used_ids: set[str] = set()
        self._echo: JSON | None = None

    # ---- framing

    def _frame(self, payload: JSON) -> bytes:
        payload["sequence_number"] = self._seq
        self._seq += 1
        return sse.frame(orjson.dumps(payload), event=payload["type"])

    def _envelope(self, status: str, **fields: Any) -> JSON:
        if self._echo is None:
            self._echo = _request_echo(self._request)
        body: JSON = {"id": self._id, "object": "response", "created_at": self._created, "status": status,
                      "error": None, "incomplete_details": None, "model": self._model, "output": [],
                      "usage": None}
        body.update(self._echo)
        body.update(fields)
        return body

    def _unique(self, wanted: Any, prefix: str) -> str:
        item_id = wanted if isinstance(wanted, str) and wanted and wanted not in self._used_ids else _synth_id(prefix)
        self._used_ids.add(item_id)
        return item_id

    # ---- events

    def encode(self, event: ir.Event) -> bytes:
        if self._finished:
            return b""
        if isinstance(event, ir.PartDelta):
            self._assembler.feed(event)
            return self._on_delta(event)
        if isinstance(event, ir.Start):
            self._assembler.feed(event)
            return self._on_start(event.id)
        prefix = b"" if self._started else self._on_start("")
        self._assembler.feed(event)
        if isinstance(event, ir.PartStart):
            return prefix + self._on_part_start(event)
        if isinstance(event, ir.PartStop):
            return prefix + self._on_part_stop(event.index)
        if isinstance(event, ir.Finish):
            return prefix + self._on_finish(event.stop_reason)
        if isinstance(event, ir.ErrorEvent):
            return prefix + self._on_error(event.error)
        return prefix  # UsageEvent: folded into the final usage by the assembler

    def close(self) -> bytes:
        if self._finished or not self._started:
            return b""
        return self._on_error(ir.Error(502, "server_error", "upstream stream ended before completion"))

    def _on_start(self, response_id: str) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._id = response_id or ids.new_id("resp_")
        return (self._frame({"type": "response.created", "response": self._envelope("in_progress")})
                + self._frame({"type": "response.in_progress", "response": self._envelope("in_progress")}))

    def _on_part_start(self, event: ir.PartStart) -> bytes:
        part = event.part
        info = _ours(part.extra)
        output_index = len(self._output)
        if isinstance(part, ir.TextPart):
            head = info.get("item") if info else None
            item = _Item("message", output_index, self._unique(head.get("id") if head else None, "msg_"))
            shape = info.get("part") if info else None
            item.refusal = isinstance(shape, dict) and shape.get("type") == "refusal"
            wire = {k: v for k, v in head.items() if k not in ("id", "status", "content")} if head else {}
            wire.update(id=item.item_id, type="message", status="in_progress", content=[], role="assistant")
            empty = {"type": "refusal", "refusal": ""} if item.refusal else {**_OUTPUT_TEXT, "text": ""}
            frames = (self._frame({"type": "response.output_item.added", "output_index": output_index,
                                   "item": wire})
                      + self._frame({"type": "response.content_part.added", "item_id": item.item_id,
                                     "output_index": output_index, "content_index": 0, "part": empty}))
        elif isinstance(part, ir.ThinkingPart):
            if part.encrypted is None and part.redacted is not None:
                self._skipped.add(event.index)  # Anthropic redacted thinking: nothing to show
                return b""
            item = _Item("reasoning", output_index, self._unique(info.get("id") if info else None, "rs_"))
            frames = self._frame({"type": "response.output_item.added", "output_index": output_index,
                                  "item": {"id": item.item_id, "type": "reasoning", "summary": []}})
        else:
            item = _Item("function_call", output_index, self._unique(info.get("id") if info else None, "fc_"))
            item.call_id = part.id or _synth_id("call_")
            wire = {k: v for k, v in info.items() if k not in ("id", "status")} if info else {}
            wire.update(id=item.item_id, type="function_call", status="in_progress", arguments="",
                        call_id=item.call_id, name=part.name)
            frames = self._frame({"type": "response.output_item.added", "output_index": output_index,
                                  "item": wire})
        self._items[event.index] = item
        self._output.append(None)
        return frames

    def _on_delta(self, event: ir.PartDelta) -> bytes:
        item = self._items.get(event.index)
        if item is None or not event.text:
            return b""  # unknown/skipped part, or a thinking signature (no home in this API)
        base = {"item_id": item.item_id, "output_index": item.output_index}
        if item.kind == "message":
            if item.refusal:
                return self._frame({"type": "response.refusal.delta", **base, "content_index": 0,
                                    "delta": event.text})
            return self._frame({"type": "response.output_text.delta", **base, "content_index": 0,
                                "delta": event.text, "logprobs": []})
        if item.kind == "function_call":
            return self._frame({"type": "response.function_call_arguments.delta", **base, "delta": event.text})
        frames = b""
        if not item.summary_open:
            item.summary_open = True
            frames = self._frame({"type": "response.reasoning_summary_part.added", **base, "summary_index": 0,
                                  "part": {"type": "summary_text", "text": ""}})
        return frames + self._frame({"type": "response.reasoning_summary_text.delta", **base,
                                     "summary_index": 0, "delta": event.text})

    def _on_part_stop(self, index: int) -> bytes:
        item = self._items.pop(index, None)
        part = self._assembler.parts.get(index)
        if item is None or part is None:
            return b""
        base = {"item_id": item.item_id, "output_index": item.output_index}
        frames = b""
        if isinstance(part, ir.TextPart):
            info = _ours(part.extra)
            head = info.get("item") if info else None
            if item.refusal:
                done_part: JSON = {"type": "refusal", "refusal": part.text}
                frames += self._frame({"type": "response.refusal.done", **base, "content_index": 0,
                                       "refusal": part.text})
            else:
                done_part = {**_OUTPUT_TEXT, "text": part.text}
                frames += self._frame({"type": "response.output_text.done", **base, "content_index": 0,
                                       "text": part.text, "logprobs": []})
            frames += self._frame({"type": "response.content_part.done", **base, "content_index": 0,
                                   "part": done_part})
            wire = {k: v for k, v in head.items() if k not in ("id", "status", "content")} if head else {}
            wire.update(id=item.item_id, type="message", status="completed", content=[done_part],
                        role="assistant")
        elif isinstance(part, ir.ThinkingPart):
            summary: list[JSON] = []
            if item.summary_open:
                summary = [{"type": "summary_text", "text": part.text}]
                frames += self._frame({"type": "response.reasoning_summary_text.done", **base, "summary_index": 0,
                                       "text": part.text})
                frames += self._frame({"type": "response.reasoning_summary_part.done", **base,
                                       "summary_index": 0, "part": summary[0]})
            wire = {"id": item.item_id, "type": "reasoning", "summary": summary}
            if part.encrypted is not None:
                wire["encrypted_content"] = part.encrypted
        else:
            frames += self._frame({"type": "response.function_call_arguments.done", **base,
                                   "arguments": part.arguments})
            info = _ours(part.extra)
            wire = {k: v for k, v in info.items() if k not in ("id", "status")} if info else {}
            wire.update(id=item.item_id, type="function_call", status="completed", arguments=part.arguments,
                        call_id=item.call_id, name=part.name)
        self._output[item.output_index] = wire
        return frames + self._frame({"type": "response.output_item.done", "output_index": item.output_index,
                                     "item": wire})

    def _close_open_items(self) -> bytes:
        return b"".join(self._on_part_stop(index) for index in sorted(self._items))

    def _finished_output(self) -> list[JSON]:
        return [item for item in self._output if item is not None]

    def _on_finish(self, stop: ir.StopReason | None) -> bytes:
        frames = self._close_open_items()
        self._finished = True
        status, incomplete = _status_for(stop)
        usage = self._assembler.usage
        fields: JSON = {"output": self._finished_output(),
                        "usage": _render_usage(usage) if usage is not None else None,
                        "incomplete_details": incomplete}
        if status == "failed":
            fields["error"] = {"code": "server_error", "message": "the upstream model reported an error"}
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status,
                                                                                              "response.failed")
        return frames + self._frame({"type": kind, "response": self._envelope(status, **fields)})

    def _on_error(self, error: ir.Error) -> bytes:
        self._finished = True
        self._items.clear()
        failed = _failed_error(error)
        return (self._frame({"type": "error", "code": failed["code"], "message": error.message,
                             "param": error.param})
                + self._frame({"type": "response.failed",
                               "response": self._envelope("failed", error=failed, output=self._finished_output())}))


def _request_echo(request: ir.Request | None) -> JSON:
    """The request settings a Response object repeats (the SDK requires some of them)."""
    if request is None:
        return {"parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
    tools = [t for t in map(_render_tool, request.tools) if t is not None]
    echo: JSON = {
        "parallel_tool_calls": request.parallel_tool_calls if request.parallel_tool_calls is not None else True,
        "tool_choice": _render_tool_choice(request.tool_choice) if request.tool_choice is not None else "auto",
        "tools": tools,
    }
    if request.temperature is not None:
        echo["temperature"] = request.temperature
    if request.top_p is not None:
        echo["top_p"] = request.top_p
    if request.max_tokens is not None:
        echo["max_output_tokens"] = request.max_tokens
    return echo


DIALECT: Dialect = OpenAIResponsesDialect()
