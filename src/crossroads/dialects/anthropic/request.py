"""Anthropic Messages requests <-> ir.Request (top-level fields, tools, options)."""

from __future__ import annotations

from typing import Any

from crossroads import ir, reasoning
from crossroads.dialects.anthropic.parts import (
    cache_control,
    compact,
    parse_message,
    parse_text_block,
    render_messages,
    system_blocks,
)
from crossroads.dialects.anthropic.tables import (
    DEFAULT_MAX_TOKENS,
    DISPLAY_FROM_INCLUDE,
    INCLUDE_FROM_DISPLAY,
    JSON,
    MIN_THINKING_BUDGET,
    MIN_TOP_P_WITH_THINKING,
    NAME,
    NATIVE_EFFORTS,
    REQUEST_KEYS,
    TOOL_KEYS,
    TOOL_KIND_PREFIX,
)
from crossroads.dialects.kit.extras import leftovers, merged, wrap
from crossroads.dialects.kit.fields import (
    optional_dict,
    optional_int,
    optional_number,
    optional_str,
    require_dict,
    require_list,
    require_str,
)


def _parse_system(system: Any) -> list[ir.TextPart]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.TextPart(text=system)] if system else []
    parts = []
    for index, block in enumerate(require_list(system, "system")):
        param = f"system.{index}"
        block = require_dict(block, param)
        if block.get("type") != "text":
            raise ir.bad_request(f"{param}.type: system blocks must be text", f"{param}.type")
        parts.append(parse_text_block(block, param))
    return parts


def _parse_tool(tool: Any, param: str) -> ir.Tool:
    tool = require_dict(tool, param)
    kind = tool.get("type")
    if kind is None or kind == "custom":
        if "input_schema" not in tool:
            raise ir.bad_request(f"{param}.input_schema: field required", f"{param}.input_schema")
        strict = tool.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise ir.bad_request(f"{param}.strict: expected a boolean", f"{param}.strict")
        return ir.Tool(
            name=require_str(tool.get("name"), f"{param}.name"),
            description=optional_str(tool.get("description"), f"{param}.description"),
            parameters=require_dict(tool["input_schema"], f"{param}.input_schema"),
            strict=strict,
            cache_control=cache_control(tool, param),
            extra=wrap(NAME, leftovers(tool, TOOL_KEYS)),
        )
    kind = require_str(kind, f"{param}.type")
    name = tool.get("name")
    return ir.Tool(
        name=name if isinstance(name, str) else kind,
        kind=TOOL_KIND_PREFIX + kind,
        raw=tool,
        cache_control=optional_dict(tool.get("cache_control"), f"{param}.cache_control"),
    )


def _parse_tool_choice(choice: Any) -> tuple[ir.ToolChoice, bool | None]:
    choice = require_dict(choice, "tool_choice")
    kind = choice.get("type")
    disable_parallel = choice.get("disable_parallel_tool_use")
    if disable_parallel is not None and not isinstance(disable_parallel, bool):
        raise ir.bad_request("tool_choice.disable_parallel_tool_use: expected a boolean",
                             "tool_choice.disable_parallel_tool_use")
    parallel = None if disable_parallel is None else not disable_parallel
    if kind == "auto":
        return ir.ToolChoice("auto"), parallel
    if kind == "any":
        return ir.ToolChoice("required"), parallel
    if kind == "none":
        return ir.ToolChoice("none"), parallel
    if kind == "tool":
        return ir.ToolChoice("tool", require_str(choice.get("name"), "tool_choice.name")), parallel
    raise ir.bad_request(f"tool_choice.type: expected auto, any, tool or none, got {kind!r}", "tool_choice.type")


def _parse_reasoning(thinking: Any, output_config: JSON) -> tuple[ir.Reasoning | None, bool]:
    """-> (reasoning, whether output_config.effort was used up by it)."""
    thinking = require_dict(thinking, "thinking")
    kind = thinking.get("type")
    display = thinking.get("display")
    include = INCLUDE_FROM_DISPLAY.get(display) if isinstance(display, str) else None
    if kind == "enabled":
        budget = optional_int(thinking.get("budget_tokens"), "thinking.budget_tokens")
        if budget is None:
            raise ir.bad_request("thinking.budget_tokens: field required", "thinking.budget_tokens")
        return ir.Reasoning(budget=budget, include_thoughts=include), False
    if kind == "disabled":
        return ir.Reasoning(effort="none"), False
    if kind == "adaptive":
        effort = optional_str(output_config.get("effort"), "output_config.effort")
        return ir.Reasoning(effort=effort, adaptive=True, include_thoughts=include), True
    raise ir.bad_request(f"thinking.type: unsupported value {kind!r}", "thinking.type")


def _parse_output_format(value: Any, param: str) -> ir.ResponseFormat | None:
    if value is None:
        return None
    value = require_dict(value, param)
    if value.get("type") != "json_schema":
        raise ir.bad_request(f"{param}.type: expected json_schema", f"{param}.type")
    return ir.ResponseFormat(type="json_schema", schema=require_dict(value.get("schema"), f"{param}.schema"))


def parse_request(body: Any, model: str | None, stream: bool | None) -> ir.Request:
    body = require_dict(body, "body")
    model_name = model if model is not None else body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("model: field required", "model")
    tool_names: dict[str, str] = {}
    messages = [
        parse_message(message, f"messages.{index}", tool_names)
        for index, message in enumerate(require_list(body.get("messages"), "messages"))
    ]
    request = ir.Request(model=model_name, messages=messages, system=_parse_system(body.get("system")))
    extra = leftovers(body, REQUEST_KEYS) or {}

    request.max_tokens = optional_int(body.get("max_tokens"), "max_tokens")
    request.temperature = optional_number(body.get("temperature"), "temperature")
    request.top_p = optional_number(body.get("top_p"), "top_p")
    request.top_k = optional_int(body.get("top_k"), "top_k")
    stops = body.get("stop_sequences")
    if stops is not None:
        request.stop = [require_str(stop, f"stop_sequences.{i}") for i, stop in enumerate(require_list(stops, "stop_sequences"))]
    request.stream = bool(body.get("stream")) if stream is None else stream

    tools = body.get("tools")
    if tools is not None:
        request.tools = [_parse_tool(tool, f"tools.{i}") for i, tool in enumerate(require_list(tools, "tools"))]
    if body.get("tool_choice") is not None:
        request.tool_choice, request.parallel_tool_calls = _parse_tool_choice(body["tool_choice"])

    output_config = dict(optional_dict(body.get("output_config"), "output_config") or {})
    if body.get("thinking") is not None:
        request.reasoning, effort_used = _parse_reasoning(body["thinking"], output_config)
        if effort_used:
            output_config.pop("effort", None)
    if "format" in output_config:
        request.response_format = _parse_output_format(output_config.pop("format"), "output_config.format")
    elif body.get("output_format") is not None:  # the structured-outputs beta's spelling
        request.response_format = _parse_output_format(body["output_format"], "output_format")
    if output_config:
        extra["output_config"] = output_config

    metadata = optional_dict(body.get("metadata"), "metadata")
    if metadata:
        request.user = optional_str(metadata.get("user_id"), "metadata.user_id")
        other = {key: value for key, value in metadata.items() if key != "user_id"}
        if other:
            extra["metadata"] = other
    if extra:
        request.extra[NAME] = extra
    return request


def _tool_to_wire(tool: ir.Tool) -> JSON | None:
    if tool.kind == "function":
        block: JSON = {"name": tool.name,
                       "input_schema": tool.parameters if tool.parameters is not None
                       else {"type": "object", "properties": {}}}
        if tool.description is not None:
            block["description"] = tool.description
        if tool.cache_control is not None:
            block["cache_control"] = tool.cache_control
        if tool.strict is not None:
            block["strict"] = tool.strict
        return merged(block, tool.extra, NAME)
    if tool.kind.startswith(TOOL_KIND_PREFIX) and tool.raw is not None:
        return tool.raw
    return None  # another dialect's server tool: nothing equivalent here


def _tool_choice_to_wire(choice: ir.ToolChoice | None, parallel: bool | None) -> JSON | None:
    mode = choice.mode if choice is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    if choice is None and parallel is None:
        return None
    if mode == "required":
        wire: JSON = {"type": "any"}
    elif mode == "tool" and choice is not None and choice.name:
        wire = {"type": "tool", "name": choice.name}
    else:
        wire = {"type": "auto"}
    if parallel is not None:
        wire["disable_parallel_tool_use"] = not parallel
    return wire


def anthropic_effort(effort: str | None) -> str | None:
    if effort is None:
        return None
    effort = effort.lower()
    if effort in NATIVE_EFFORTS:
        return effort
    return reasoning.ANTHROPIC_EFFORTS.get(effort)


def _thinking_display(setting: ir.Reasoning, thinking: JSON) -> JSON:
    if setting.include_thoughts is not None:
        thinking["display"] = DISPLAY_FROM_INCLUDE[setting.include_thoughts]
    return thinking


def _render_reasoning(request: ir.Request, body: JSON, output_config: JSON) -> bool:
    """Sets ``thinking`` (and maybe ``output_config.effort`` / ``max_tokens``).
    Returns whether thinking is on."""
    setting = request.reasoning
    if setting is None:
        return False
    if setting.adaptive:
        body["thinking"] = _thinking_display(setting, {"type": "adaptive"})
        level = reasoning.effective_level(setting)
        effort = anthropic_effort(level) if level != "none" else None
        if effort is not None:
            output_config["effort"] = effort
        return True
    budget = reasoning.effective_budget(setting)
    if budget is None:
        return False
    if budget == 0:
        body["thinking"] = {"type": "disabled"}
        return False
    choice = request.tool_choice
    if choice is not None and choice.mode in ("required", "tool"):
        return False  # forced tool use and a thinking budget are mutually exclusive
    if budget < 0:  # "auto": let the table's Anthropic equivalent decide
        budget = reasoning.budget_for_level(reasoning.ANTHROPIC_EFFORTS["auto"])
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget >= body["max_tokens"]:
        body["max_tokens"] = budget + body["max_tokens"]
    body["thinking"] = _thinking_display(setting, {"type": "enabled", "budget_tokens": budget})
    return True


def _render_output_format(response_format: ir.ResponseFormat | None) -> JSON | None:
    if response_format is None or response_format.type == "text":
        return None
    schema = response_format.schema if response_format.schema is not None else {"type": "object"}
    return {"type": "json_schema", "schema": schema}


def _render_sampling(request: ir.Request, body: JSON, thinking_on: bool) -> None:
    if request.temperature is not None and not thinking_on:
        body["temperature"] = request.temperature
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k
    if request.top_p is not None and (not thinking_on or request.top_p >= MIN_TOP_P_WITH_THINKING):
        body["top_p"] = request.top_p


def render_request(request: ir.Request, *, keep_system: bool, sampling_params: bool) -> JSON:
    extra = dict(request.extra.get(NAME) or {})
    output_config: JSON = dict(extra.pop("output_config", None) or {})
    metadata: JSON = dict(extra.pop("metadata", None) or {})
    body: JSON = extra
    body["model"] = request.model
    body["max_tokens"] = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS

    leading_system, messages = render_messages(request.messages, keep_system=keep_system)
    system = system_blocks(list(request.system)) + leading_system
    if system:
        body["system"] = compact(system)
    body["messages"] = messages

    tools = [wire for wire in map(_tool_to_wire, request.tools) if wire is not None]
    if tools:
        body["tools"] = tools
        choice = _tool_choice_to_wire(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice

    thinking_on = _render_reasoning(request, body, output_config)
    if sampling_params:
        _render_sampling(request, body, thinking_on)
    output_format = _render_output_format(request.response_format)
    if output_format is not None:
        output_config["format"] = output_format
    if output_config:
        body["output_config"] = output_config
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        metadata["user_id"] = request.user
    if metadata:
        body["metadata"] = metadata
    if request.stream:
        body["stream"] = True
    return body
