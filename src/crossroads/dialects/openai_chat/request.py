"""OpenAI chat requests <-> ir.Request (top-level fields, tools, options)."""

from __future__ import annotations

from typing import Any

from crossroads import ir, reasoning
from crossroads.dialects.kit.extras import leftovers, own
from crossroads.dialects.kit.fields import (
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
    require_dict,
    require_list,
    require_str,
)
from crossroads.dialects.openai_chat.parts import RequestParser, RequestRenderer
from crossroads.dialects.openai_chat.tables import FORM, JSON, NAME


def parse_stop(value: Any, form: JSON) -> list[str]:
    """``stop`` is a string or a list of strings; remembers which in ``form``."""
    if value is None:
        return []
    if isinstance(value, str):
        form["stop_str"] = True
        return [value]
    items = require_list(value, "stop")
    for i, item in enumerate(items):
        require_str(item, f"stop[{i}]")
    return list(items)


def render_stop(stop: list[str], form: JSON) -> str | list[str]:
    if form.get("stop_str") and len(stop) == 1:
        return stop[0]
    return list(stop)


def parse_sampling(body: JSON, request: ir.Request, form: JSON) -> None:
    """The sampling fields chat and legacy completions share."""
    request.temperature = optional_number(body.get("temperature"), "temperature")
    request.top_p = optional_number(body.get("top_p"), "top_p")
    request.n = optional_int(body.get("n"), "n")
    request.seed = optional_int(body.get("seed"), "seed")
    request.presence_penalty = optional_number(body.get("presence_penalty"), "presence_penalty")
    request.frequency_penalty = optional_number(body.get("frequency_penalty"), "frequency_penalty")
    request.stop = parse_stop(body.get("stop"), form)


def parse_include_usage(body: JSON, form: JSON) -> bool | None:
    options = body.get("stream_options")
    if options is None:
        return None
    options = require_dict(options, "stream_options")
    include = optional_bool(options.get("include_usage"), "stream_options.include_usage")
    rest = {k: v for k, v in options.items() if k != "include_usage"}
    if rest:
        form["stream_options"] = rest
    elif include is None:
        form["stream_options"] = {}
    return include


def render_stop_and_stream(request: ir.Request, form: JSON, body: JSON) -> None:
    """``stop``, ``stream`` and ``stream_options``, as chat and legacy completions both write them."""
    if request.stop:
        body["stop"] = render_stop(request.stop, form)
    if request.stream:
        body["stream"] = True
    elif form.get("stream_false"):
        body["stream"] = False
    stream_options = render_stream_options(request, form)
    if stream_options is not None:
        body["stream_options"] = stream_options


def render_stream_options(request: ir.Request, form: JSON) -> JSON | None:
    rest = form.get("stream_options")
    if request.include_usage is None and rest is None:
        return None
    if not request.stream and rest is None:
        return None  # the API rejects stream_options without stream
    options = dict(rest or {})
    if request.include_usage is not None:
        options["include_usage"] = request.include_usage
    return options


_REQUEST_FIELDS = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call",
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n", "seed",
    "presence_penalty", "frequency_penalty", "stop", "stream", "stream_options", "reasoning_effort",
    "response_format", "user", "metadata",
})


def _parse_tools(raw: Any) -> list[ir.Tool]:
    tools: list[ir.Tool] = []
    for i, item in enumerate(require_list(raw, "tools")):
        param = f"tools[{i}]"
        item = require_dict(item, param)
        kind = item.get("type")
        if kind == "function":
            tools.append(_function_tool(require_dict(item.get("function"), f"{param}.function"),
                                        f"{param}.function", leftovers(item, ("type", "function"))))
        elif isinstance(kind, str) and kind:
            body = item.get(kind)
            name = body.get("name") if isinstance(body, dict) else None
            tools.append(ir.Tool(name=name if isinstance(name, str) else kind, kind=f"{NAME}:{kind}", raw=item))
        else:
            raise ir.bad_request(f"'{param}.type' must be a non-empty string", f"{param}.type")
    return tools


def _function_tool(function: JSON, param: str, outer: JSON | None = None) -> ir.Tool:
    name = require_str(function.get("name"), f"{param}.name")
    description = optional_str(function.get("description"), f"{param}.description")
    parameters = function.get("parameters")
    if parameters is not None:
        parameters = require_dict(parameters, f"{param}.parameters")
    strict = optional_bool(function.get("strict"), f"{param}.strict")
    fields = leftovers(function, ("name", "description", "parameters", "strict"))
    extra: JSON = {}
    if fields:
        extra[NAME] = fields
    if outer:
        extra[FORM] = {"outer": outer}
    return ir.Tool(name=name, description=description, parameters=parameters, strict=strict,
                   extra=extra or None)


def _parse_tool_choice(raw: Any, form: JSON) -> ir.ToolChoice:
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise ir.bad_request(f"'tool_choice' must be auto, none or required, got {raw!r}", "tool_choice")
        return ir.ToolChoice(mode=raw)  # type: ignore[arg-type]
    raw = require_dict(raw, "tool_choice")
    kind = raw.get("type")
    if kind == "function":
        function = require_dict(raw.get("function"), "tool_choice.function")
        return ir.ToolChoice(mode="tool", name=require_str(function.get("name"), "tool_choice.function.name"))
    form["tool_choice"] = raw  # allowed_tools / custom: approximate for others, exact for us
    if kind == "custom":
        custom = require_dict(raw.get("custom"), "tool_choice.custom")
        return ir.ToolChoice(mode="tool", name=require_str(custom.get("name"), "tool_choice.custom.name"))
    if kind == "allowed_tools":
        allowed = require_dict(raw.get("allowed_tools"), "tool_choice.allowed_tools")
        return ir.ToolChoice(mode="required" if allowed.get("mode") == "required" else "auto")
    raise ir.bad_request(f"unknown 'tool_choice.type' {kind!r}", "tool_choice.type")


def _parse_function_call(raw: Any) -> ir.ToolChoice:
    if raw in ("auto", "none"):
        return ir.ToolChoice(mode=raw)
    raw = require_dict(raw, "function_call")
    return ir.ToolChoice(mode="tool", name=require_str(raw.get("name"), "function_call.name"))


def _parse_response_format(raw: Any, form: JSON) -> ir.ResponseFormat:
    raw = require_dict(raw, "response_format")
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ir.ResponseFormat(type=kind)
    if kind != "json_schema":
        raise ir.bad_request(f"'response_format.type' must be text, json_object or json_schema, got {kind!r}",
                             "response_format.type")
    spec = require_dict(raw.get("json_schema"), "response_format.json_schema")
    schema = spec.get("schema")
    if schema is not None:
        schema = require_dict(schema, "response_format.json_schema.schema")
    rest = leftovers(spec, ("name", "schema", "strict"))
    if rest:
        form["json_schema"] = rest
    return ir.ResponseFormat(type="json_schema", schema=schema,
                             name=require_str(spec.get("name"), "response_format.json_schema.name"),
                             strict=optional_bool(spec.get("strict"), "response_format.json_schema.strict"))


def _parse_reasoning(raw: Any, form: JSON) -> ir.Reasoning | None:
    if raw is None:
        return None
    effort = require_str(raw, "reasoning_effort")
    level = effort.lower()
    if level not in reasoning.LEVEL_BUDGETS:
        raise ir.bad_request(
            f"'reasoning_effort' must be one of {', '.join(reasoning.LEVEL_BUDGETS)}; got {effort!r}",
            "reasoning_effort")
    form["reasoning_effort"] = effort
    return ir.Reasoning(effort=level)


def _parse_metadata(raw: Any) -> JSON | None:
    if raw is None:
        return None
    return require_dict(raw, "metadata")


def parse_request(body: JSON, model: str | None = None, stream: bool | None = None) -> ir.Request:
    body = require_dict(body, "body")
    form: JSON = {}
    model_name = body.get("model")
    if model_name is None:
        model_name = model
    if not isinstance(model_name, str) or not model_name:
        raise ir.bad_request("'model' is required and must be a non-empty string", "model")
    parser = RequestParser(form)
    system, messages = parser.messages(body.get("messages"))
    request = ir.Request(model=model_name, messages=messages, system=system)

    tools = body.get("tools")
    if tools is not None:
        request.tools = _parse_tools(tools)
    functions = body.get("functions")
    if functions is not None:
        items = require_list(functions, "functions")
        request.tools.extend(_function_tool(require_dict(f, f"functions[{i}]"), f"functions[{i}]")
                             for i, f in enumerate(items))
        form["functions"] = len(items)
    if body.get("tool_choice") is not None:
        request.tool_choice = _parse_tool_choice(body["tool_choice"], form)
    elif body.get("function_call") is not None:
        request.tool_choice = _parse_function_call(body["function_call"])
        form["function_call"] = True
    request.parallel_tool_calls = optional_bool(body.get("parallel_tool_calls"), "parallel_tool_calls")

    max_completion = optional_int(body.get("max_completion_tokens"), "max_completion_tokens")
    max_tokens = optional_int(body.get("max_tokens"), "max_tokens")
    if max_completion is not None:
        request.max_tokens = max_completion
        form["max_tokens_field"] = "max_completion_tokens"
        if max_tokens is not None:
            form["max_tokens_also"] = max_tokens
    else:
        request.max_tokens = max_tokens

    parse_sampling(body, request, form)
    request.top_k = optional_int(body.get("top_k"), "top_k")
    wire_stream = optional_bool(body.get("stream"), "stream")
    if wire_stream is False:
        form["stream_false"] = True
    request.stream = bool(wire_stream) if stream is None else stream
    request.include_usage = parse_include_usage(body, form)
    request.reasoning = _parse_reasoning(body.get("reasoning_effort"), form)
    if body.get("response_format") is not None:
        request.response_format = _parse_response_format(body["response_format"], form)
    request.user = optional_str(body.get("user"), "user")
    request.metadata = _parse_metadata(body.get("metadata"))

    if not _REQUEST_FIELDS.issuperset(body):
        request.extra[NAME] = {k: v for k, v in body.items() if k not in _REQUEST_FIELDS}
    request.extra[FORM] = form
    return request


def _tool_json(tool: ir.Tool) -> JSON | None:
    if tool.kind == "function":
        function: JSON = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.parameters is not None:
            function["parameters"] = tool.parameters
        if tool.strict is not None:
            function["strict"] = tool.strict
        function.update(own(tool.extra, NAME))
        item: JSON = {"type": "function", "function": function}
        item.update(own(tool.extra, FORM).get("outer") or {})
        return item
    if tool.kind.startswith(NAME + ":") and tool.raw is not None:
        return tool.raw
    return None  # another dialect's provider tool


def _tool_choice_json(choice: ir.ToolChoice, form: JSON) -> Any:
    raw = form.get("tool_choice")
    if raw is not None:
        return raw
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.mode


def _reasoning_effort(request_reasoning: ir.Reasoning, form: JSON) -> str | None:
    raw = form.get("reasoning_effort")
    if isinstance(raw, str) and raw.lower() == request_reasoning.effort:
        return raw
    level = reasoning.effective_level(request_reasoning)
    if level is None:
        return None
    return reasoning.OPENAI_EFFORTS.get(level, "medium")


def _response_format_json(fmt: ir.ResponseFormat, form: JSON) -> JSON:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    spec: JSON = {"name": fmt.name or "response"}
    if fmt.schema is not None:
        spec["schema"] = fmt.schema
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    spec.update(form.get("json_schema") or {})
    return {"type": "json_schema", "json_schema": spec}


def render_request(request: ir.Request, *, send_reasoning: bool = False,
                   max_tokens_field: str = "max_tokens") -> JSON:
    form = request.extra.get(FORM)
    own = isinstance(form, dict)
    form = form if isinstance(form, dict) else {}
    renderer = RequestRenderer(send_reasoning)
    messages = renderer.system(request.system, form.get("system"))
    for message in request.messages:
        messages.extend(renderer.message(message))
    body: JSON = {"model": request.model, "messages": messages}

    legacy_functions = form.get("functions")
    tools = [t for t in map(_tool_json, request.tools) if t is not None]
    if legacy_functions is not None:
        body["functions"] = [t["function"] for t in tools[len(tools) - legacy_functions:]]
        tools = tools[:len(tools) - legacy_functions]
    if tools:
        body["tools"] = tools
    may_steer_tools = bool(tools) or bool(legacy_functions) or own  # the API refuses these without tools
    if request.tool_choice is not None and may_steer_tools:
        if form.get("function_call"):
            choice = request.tool_choice
            body["function_call"] = {"name": choice.name} if choice.mode == "tool" else choice.mode
        else:
            body["tool_choice"] = _tool_choice_json(request.tool_choice, form)
    if request.parallel_tool_calls is not None and may_steer_tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls

    if request.max_tokens is not None:
        body[form.get("max_tokens_field", max_tokens_field)] = request.max_tokens
    if "max_tokens_also" in form:
        body["max_tokens"] = form["max_tokens_also"]
    for key in ("temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty", "user"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.metadata is not None:
        # OpenAI metadata values are strings; other dialects' metadata may not be.
        body["metadata"] = request.metadata if own else {
            k: v for k, v in request.metadata.items() if isinstance(v, str)}
    if request.top_k is not None and own:  # not an OpenAI parameter; only echo it to its own kind
        body["top_k"] = request.top_k
    render_stop_and_stream(request, form, body)
    if request.reasoning is not None:
        effort = _reasoning_effort(request.reasoning, form)
        if effort is not None:
            body["reasoning_effort"] = effort
    if request.response_format is not None:
        body["response_format"] = _response_format_json(request.response_format, form)
    for key, value in (request.extra.get(NAME) or {}).items():
        body.setdefault(key, value)
    return body
