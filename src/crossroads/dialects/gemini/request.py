"""Gemini requests <-> ir.Request (top-level fields, tools, options)."""

from __future__ import annotations

from typing import Any

from crossroads import ir, reasoning
from crossroads.dialects.gemini.parts import (
    PartReader,
    is_gemini_3,
    leftover,
    merge_under,
    parse_content,
    render_contents,
)
from crossroads.dialects.gemini.tables import (
    CHOICE_TO_MODE,
    DECLARATION_KEYS,
    GENERATION_KEYS,
    META,
    MODE_TO_CHOICE,
    NAME,
    REQUEST_KEYS,
    THINKING_KEYS,
    camel,
    get,
    known,
    proto_int,
)
from crossroads.dialects.gemini_schema import clean_schema, to_json_schema
from crossroads.dialects.kit.fields import optional_int, optional_number, require_dict, require_list


def parse_request(body: Any, model: str | None, stream: bool | None) -> ir.Request:
    body = require_dict(body, "request body")
    model_name = model or body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("model is required (Gemini takes it from the URL path)", "model")
    if model_name.startswith("models/"):
        model_name = model_name[len("models/"):]
    request = ir.Request(model=model_name, stream=bool(stream))
    extra: dict[str, Any] = leftover(body, REQUEST_KEYS)
    meta: dict[str, Any] = {}

    reader = PartReader()
    contents = body.get("contents")
    if contents is None:
        raise ir.bad_request("contents is required", "contents")
    for i, content in enumerate(require_list(contents, "contents")):
        request.messages.append(parse_content(content, f"contents[{i}]", reader))
    if reader.orphans:
        meta["orphan_ids"] = reader.orphans

    system = get(body, "systemInstruction")
    if system is not None:
        _parse_system(system, request, extra)
    tools = body.get("tools")
    if tools is not None:
        request.tools = _parse_tools(require_list(tools, "tools"), meta)
    tool_config = get(body, "toolConfig")
    if tool_config is not None:
        _parse_tool_config(require_dict(tool_config, "toolConfig"), request, extra, meta)
    generation = get(body, "generationConfig")
    if generation is not None:
        _parse_generation_config(require_dict(generation, "generationConfig"), request, extra, meta)

    if meta:
        extra[META] = meta
    if extra:
        request.extra[NAME] = extra
    return request


def _parse_system(system: Any, request: ir.Request, extra: dict[str, Any]) -> None:
    if isinstance(system, str):
        request.system = [ir.TextPart(text=system)]
        return
    system = require_dict(system, "systemInstruction")
    parts = system.get("parts") or []
    for j, part in enumerate(require_list(parts, "systemInstruction.parts")):
        part = require_dict(part, f"systemInstruction.parts[{j}]")
        if isinstance(part.get("text"), str):
            request.system.append(ir.TextPart(text=part["text"]))
    if system.get("role") is not None:
        extra["systemInstruction"] = {"role": system["role"]}


def _parse_tools(tools: list[Any], meta: dict[str, Any]) -> list[ir.Tool]:
    out: list[ir.Tool] = []
    for i, entry in enumerate(tools):
        for key, value in require_dict(entry, f"tools[{i}]").items():
            key = camel(key)
            if key != "functionDeclarations":
                out.append(ir.Tool(name=key, kind=f"{NAME}:{key}", raw={key: value}))
                continue
            for j, declaration in enumerate(require_list(value, f"tools[{i}].functionDeclarations")):
                out.append(_parse_declaration(declaration, f"tools[{i}].functionDeclarations[{j}]", meta))
    return out


def _parse_declaration(raw: Any, where: str, meta: dict[str, Any]) -> ir.Tool:
    declaration = require_dict(raw, where)
    name = declaration.get("name")
    if not isinstance(name, str) or not name:
        raise ir.bad_request(f"{where}.name is required", f"{where}.name")
    description = declaration.get("description")
    if description is not None and not isinstance(description, str):
        raise ir.bad_request(f"{where}.description must be a string", f"{where}.description")
    parameters: dict[str, Any] | None = None
    json_schema = get(declaration, "parametersJsonSchema")
    openapi = declaration.get("parameters")
    if json_schema is not None:
        parameters = require_dict(json_schema, f"{where}.parametersJsonSchema")
        meta.setdefault("json_schema_functions", []).append(name)
    elif openapi is not None:
        parameters = to_json_schema(require_dict(openapi, f"{where}.parameters"))
        meta.setdefault("parameters", {})[name] = openapi
    others = leftover(declaration, DECLARATION_KEYS)
    if others:
        meta.setdefault("function_fields", {})[name] = others
    return ir.Tool(name=name, description=description, parameters=parameters)


def _parse_tool_config(config: dict[str, Any], request: ir.Request, extra: dict[str, Any],
                       meta: dict[str, Any]) -> None:
    partial = leftover(config, known("functionCallingConfig"))
    calling = get(config, "functionCallingConfig")
    if calling is not None:
        calling = require_dict(calling, "toolConfig.functionCallingConfig")
        mode = calling.get("mode")
        allowed = get(calling, "allowedFunctionNames")
        if mode is not None and not isinstance(mode, str):
            raise ir.bad_request("toolConfig.functionCallingConfig.mode must be a string",
                                 "toolConfig.functionCallingConfig.mode")
        choice = MODE_TO_CHOICE.get((mode or "AUTO").upper())
        if choice is None:
            raise ir.bad_request(f"unknown functionCallingConfig.mode {mode!r}", "toolConfig.functionCallingConfig.mode")
        calling_partial = leftover(calling, known("mode", "allowedFunctionNames"))
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
    partial = leftover(config, GENERATION_KEYS)
    request.temperature = optional_number(get(config, "temperature"), f"{where}.temperature")
    request.top_p = optional_number(get(config, "topP"), f"{where}.topP")
    request.top_k = optional_int(proto_int(get(config, "topK")), f"{where}.topK")
    request.max_tokens = optional_int(proto_int(get(config, "maxOutputTokens")), f"{where}.maxOutputTokens")
    request.n = optional_int(proto_int(get(config, "candidateCount")), f"{where}.candidateCount")
    request.seed = optional_int(proto_int(get(config, "seed")), f"{where}.seed")
    request.presence_penalty = optional_number(get(config, "presencePenalty"), f"{where}.presencePenalty")
    request.frequency_penalty = optional_number(get(config, "frequencyPenalty"), f"{where}.frequencyPenalty")
    stop = get(config, "stopSequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ir.bad_request(f"{where}.stopSequences must be an array of strings", f"{where}.stopSequences")
        request.stop = list(stop)
    _parse_response_format(config, request, partial, meta)
    thinking = get(config, "thinkingConfig")
    if thinking is not None:
        _parse_thinking(require_dict(thinking, f"{where}.thinkingConfig"), request, partial)
    if partial:
        extra["generationConfig"] = partial


def _parse_response_format(config: dict[str, Any], request: ir.Request, partial: dict[str, Any],
                           meta: dict[str, Any]) -> None:
    mime = get(config, "responseMimeType")
    schema = get(config, "responseSchema")
    json_schema = get(config, "responseJsonSchema")
    if mime == "application/json":
        if json_schema is not None:
            request.response_format = ir.ResponseFormat(type="json_schema", schema=json_schema)
            meta["response_json_schema"] = True
        elif schema is not None:
            request.response_format = ir.ResponseFormat(
                type="json_schema", schema=to_json_schema(require_dict(schema, "generationConfig.responseSchema")))
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
    budget = optional_int(proto_int(get(thinking, "thinkingBudget")), f"{where}.thinkingBudget")
    level = get(thinking, "thinkingLevel")
    effort: str | None = None
    if level is not None:
        if not isinstance(level, str):
            raise ir.bad_request(f"{where}.thinkingLevel must be a string", f"{where}.thinkingLevel")
        effort = level.lower()
        if effort == "thinking_level_unspecified":
            effort = None
        elif effort not in reasoning.LEVEL_BUDGETS:
            raise ir.bad_request(f"unknown thinkingLevel {level!r}", f"{where}.thinkingLevel")
    include = get(thinking, "includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise ir.bad_request(f"{where}.includeThoughts must be a boolean", f"{where}.includeThoughts")
    others = leftover(thinking, THINKING_KEYS)
    if budget is None and effort is None and include is None:
        partial["thinkingConfig"] = thinking
        return
    request.reasoning = ir.Reasoning(effort=effort, budget=budget, include_thoughts=include)
    if others:
        partial["thinkingConfig"] = others


def render_request(request: ir.Request) -> dict[str, Any]:
    extra = dict(request.extra.get(NAME) or {})
    meta: dict[str, Any] = extra.pop(META, None) or {}
    contents, leading_system = render_contents(request, meta)
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
    merge_under(body, extra)
    return body


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
        merge_under(declaration, extra_fields)
    return declaration


def _render_tool_choice(choice: ir.ToolChoice, meta: dict[str, Any]) -> dict[str, Any]:
    mode = CHOICE_TO_MODE[choice.mode]
    original = meta.get("fc_mode")
    if isinstance(original, str) and CHOICE_TO_MODE.get(MODE_TO_CHOICE.get(original.upper(), "")) == mode:
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
        elif is_gemini_3(model) and effort in reasoning.GEMINI_LEVELS:
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
