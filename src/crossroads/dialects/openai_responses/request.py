"""OpenAI Responses requests <-> ir.Request (top-level fields, tools, options)."""

from __future__ import annotations

from typing import Any

from crossroads import ir, reasoning
from crossroads.dialects.kit.extras import claim, own
from crossroads.dialects.kit.fields import (
    optional_str,
    require_bool,
    require_dict,
    require_int,
    require_list,
    require_number,
    require_str,
)
from crossroads.dialects.openai_responses.parts import (
    assistant_items,
    leftover,
    message_texts,
    parse_content,
    render_part,
    render_text,
    thinking_part,
    tool_call_part,
)
from crossroads.dialects.openai_responses.tables import (
    FUNCTION_TOOL_KEYS,
    INPUT_TEXT,
    JSON,
    KIND_PREFIX,
    MODELLED_TOP,
    NAME,
    OUTPUT_TEXT,
    TEXT_TYPES,
    WIRE_EFFORTS,
    ContentPart,
)


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
            self._item(require_dict(raw_item, f"input[{i}]"), f"input[{i}]")
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
                texts = message_texts(item, where, OUTPUT_TEXT)
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
            call = tool_call_part(item, where)
            self.call_names[call.id] = call.name
            self._assistant().parts.append(call)
        elif kind == "reasoning":
            self._assistant().parts.append(thinking_part(item, where))
        elif kind == "function_call_output":
            self._tool_output(item, where)
        elif isinstance(kind, str) or "id" in item:
            self._raw(item)
        else:
            raise ir.bad_request(f"{where}.type must be a string", f"{where}.type")

    def _new_message(self, role: ir.Role, kind: str, extra: JSON | None = None) -> ir.Message:
        message = ir.Message(role=role, extra={NAME: extra} if extra is not None else None)
        if self.pending_raw:
            info = claim(message, NAME)
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
        claim(message, NAME).setdefault("raw", []).append([len(message.parts), item])

    def _system_item(self, item: JSON, where: str) -> None:
        content = item.get("content")
        all_text = isinstance(content, str) or (
            isinstance(content, list) and bool(content)
            and all(isinstance(p, dict) and p.get("type") in TEXT_TYPES for p in content))
        if self.leading and not self.messages and not self.pending_raw and all_text:
            texts = message_texts(item, where, INPUT_TEXT)
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
            parts, leftovers = parse_content(require_list(content, f"{where}.content"), f"{where}.content",
                                              INPUT_TEXT)
            if leftovers:
                info["parts"] = leftovers
        message = self._new_message(role, kind, info)
        message.parts.extend(parts)

    def _tool_output(self, item: JSON, where: str) -> None:
        call_id = require_str(item.get("call_id"), f"{where}.call_id")
        output = item.get("output")
        entry: JSON = {}
        if isinstance(output, str):
            content: list[ContentPart] = [ir.TextPart(output)]
        else:
            content, leftovers = parse_content(require_list(output, f"{where}.output"), f"{where}.output",
                                                INPUT_TEXT)
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
        claim(message, NAME).setdefault("outputs", {})[call_id] = entry
        message.parts.append(ir.ToolResultPart(tool_call_id=call_id, content=list(content), name=name))


def _render_system(system: list[ir.TextPart]) -> tuple[str | None, list[JSON]]:
    """Request.system -> (instructions, leading system/developer items)."""
    loose: list[str] = []
    items: list[JSON] = []
    open_content: list[JSON] | None = None
    remaining = 0
    for part in system:
        info = own(part.extra, NAME)
        head = info.get("item") if info else None
        if head is None and remaining > 0 and open_content is not None:
            open_content.append(render_text(part, INPUT_TEXT))
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
            open_content = [render_text(part, INPUT_TEXT)]
            item["content"] = open_content
            remaining = (info.get("n", 1) - 1) if head is not None and info else 0
        items.append(item)
    return ("\n\n".join(loose) if loose else None), items


def _render_messages(messages: list[ir.Message]) -> list[JSON]:
    items: list[JSON] = []
    for message in messages:
        info = own(message.extra, NAME)
        raw = info.get("raw") if info else None
        if message.role == "assistant":
            items.extend(assistant_items(message.parts, raw, for_request=True))
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
        rendered = render_part(part, INPUT_TEXT, True, leftovers.get(index) if leftovers else None)
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
        if len(parts) == 1 and isinstance(parts[0], ir.TextPart) and NAME not in (parts[0].extra or {}):
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
            and NAME not in (content[0].extra or {})):
        item["output"] = content[0].text
    elif not content and not entry.get("list"):
        item["output"] = ""
    else:
        leftovers = entry.get("parts")
        rendered = (render_part(p, INPUT_TEXT, False, leftovers.get(j) if leftovers else None)
                    for j, p in enumerate(content))
        item["output"] = [r for r in rendered if r is not None]
    return item


def _parse_tool(raw: Any, where: str) -> ir.Tool:
    tool = require_dict(raw, where)
    kind = tool.get("type")
    if kind == "function":
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ir.bad_request(f"{where}.parameters must be an object", f"{where}.parameters")
        strict = tool.get("strict")
        if strict is not None:
            strict = require_bool(strict, f"{where}.strict")
        return ir.Tool(
            name=require_str(tool.get("name"), f"{where}.name"),
            description=optional_str(tool.get("description"), f"{where}.description"),
            parameters=parameters,
            strict=strict,
            raw=tool if any(k not in FUNCTION_TOOL_KEYS for k in tool) else None,
        )
    if not isinstance(kind, str):
        raise ir.bad_request(f"{where}.type must be a string", f"{where}.type")
    name = tool.get("name")
    return ir.Tool(name=name if isinstance(name, str) else kind, kind=KIND_PREFIX + kind, raw=tool)


def render_tool(tool: ir.Tool) -> JSON | None:
    if tool.kind == "function":
        out: JSON = {k: v for k, v in tool.raw.items() if k not in FUNCTION_TOOL_KEYS} if tool.raw else {}
        out["type"] = "function"
        out["name"] = tool.name
        if tool.description is not None:
            out["description"] = tool.description
        out["parameters"] = tool.parameters
        out["strict"] = tool.strict if tool.strict is not None else False
        return out
    if tool.kind.startswith(KIND_PREFIX) and tool.raw is not None:
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


def render_tool_choice(choice: ir.ToolChoice) -> str | JSON:
    if choice.mode == "tool":
        return {"type": "function", "name": choice.name or ""}
    return choice.mode


def _parse_reasoning(value: JSON) -> ir.Reasoning:
    effort = optional_str(value.get("effort"), "reasoning.effort")
    if effort is not None:
        try:
            reasoning.budget_for_level(effort)  # validates the level name
        except ir.Error as error:
            error.param = "reasoning.effort"
            raise
    return ir.Reasoning(effort=effort, summary=optional_str(value.get("summary"), "reasoning.summary"))


def _wire_effort(setting: ir.Reasoning) -> str | None:
    if setting.effort is not None and setting.effort.lower() in WIRE_EFFORTS:
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
            name=optional_str(value.get("name"), "text.format.name"),
            strict=require_bool(strict, "text.format.strict") if strict is not None else None)
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


def parse_request(body: dict[str, Any], model: str | None = None,
                  stream: bool | None = None) -> ir.Request:
    if not isinstance(body, dict):
        raise ir.bad_request("request body must be a JSON object")
    model_name = model if model is not None else require_str(body.get("model"), "model")
    reader = _InputReader()
    instructions = body.get("instructions")
    if instructions is not None:
        reader.system.append(ir.TextPart(require_str(instructions, "instructions")))
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        reader.messages.append(ir.Message("user", [ir.TextPart(raw_input)],
                                          extra={NAME: {"input_string": True}}))
    elif raw_input is not None:
        reader.read(require_list(raw_input, "input"))
    request = ir.Request(model=model_name, messages=reader.messages, system=reader.system)
    extra = {k: v for k, v in body.items() if k not in MODELLED_TOP or v is None}
    if isinstance(raw_input, list) and not raw_input:
        extra["input"] = []
    _parse_options(body, request, extra)
    if stream is not None:
        request.stream = stream
    if extra:
        request.extra[NAME] = extra
    return request


def _parse_options(body: JSON, request: ir.Request, extra: JSON) -> None:
    tools = body.get("tools")
    if tools is not None:
        request.tools = [_parse_tool(t, f"tools[{i}]") for i, t in enumerate(require_list(tools, "tools"))]
    choice = body.get("tool_choice")
    if choice is not None:
        request.tool_choice = _parse_tool_choice(choice)
        if request.tool_choice is None:
            extra["tool_choice"] = choice
    if body.get("parallel_tool_calls") is not None:
        request.parallel_tool_calls = require_bool(body["parallel_tool_calls"], "parallel_tool_calls")
    if body.get("max_output_tokens") is not None:
        request.max_tokens = require_int(body["max_output_tokens"], "max_output_tokens")
    if body.get("temperature") is not None:
        request.temperature = require_number(body["temperature"], "temperature")
    if body.get("top_p") is not None:
        request.top_p = require_number(body["top_p"], "top_p")
    stream = body.get("stream")
    if stream is not None:
        request.stream = require_bool(stream, "stream")
        if not stream:
            extra["stream"] = False
    if body.get("reasoning") is not None:
        value = require_dict(body["reasoning"], "reasoning")
        request.reasoning = _parse_reasoning(value)
        rest = leftover(value, frozenset({"effort", "summary"}))
        if rest:
            extra["reasoning"] = rest
    if body.get("text") is not None:
        value = require_dict(body["text"], "text")
        rest = leftover(value, frozenset({"format"}))
        fmt = value.get("format")
        if fmt is not None:
            fmt = require_dict(fmt, "text.format")
            request.response_format = _parse_format(fmt)
            rest["format"] = leftover(fmt, frozenset({"name", "schema", "strict"}))
        if rest:
            extra["text"] = rest
    if body.get("user") is not None:
        request.user = require_str(body["user"], "user")
    if body.get("metadata") is not None:
        request.metadata = require_dict(body["metadata"], "metadata")


def render_request(request: ir.Request) -> dict[str, Any]:
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
    tools = [t for t in map(render_tool, request.tools) if t is not None]
    if tools:
        body["tools"] = tools
    if request.tool_choice is not None and (tools or request.tool_choice.mode in ("auto", "none")):
        body["tool_choice"] = render_tool_choice(request.tool_choice)
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
    _render_reasoning(request, body)
    _render_text_options(request, body)
    if request.user is not None:
        body["user"] = request.user
    if request.metadata is not None:
        body["metadata"] = request.metadata
    return body


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


def _render_text_options(request: ir.Request, body: JSON) -> None:
    leftover = body.get("text")
    text: JSON = dict(leftover) if isinstance(leftover, dict) else {}
    old_format = text.pop("format", None)
    if request.response_format is not None:
        text["format"] = _render_format(request.response_format, old_format)
    if text:
        body["text"] = text
    elif isinstance(leftover, dict):
        del body["text"]


def _input_string(request: ir.Request, items: list[JSON]) -> str | None:
    """``input`` was a plain string and still is a lone user text."""
    if len(request.messages) != 1 or len(items) != 1:
        return None
    message = request.messages[0]
    info = own(message.extra, NAME)
    if not info or not info.get("input_string") or message.role != "user" or len(message.parts) != 1:
        return None
    part = message.parts[0]
    if not isinstance(part, ir.TextPart) or NAME in (part.extra or {}):
        return None
    if items[0].get("role") != "user":
        return None
    return part.text
