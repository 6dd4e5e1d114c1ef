"""Tool calls for services that have none: the tools are described in the
system prompt, earlier calls and results are written into the conversation
as text, and the model's call is read back out of its reply.

The model is asked to answer a call with nothing but
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; a reply that is
only such a JSON object (bare or in a code fence) is accepted too. A reply
that names no offered tool, or whose arguments are not a JSON object, stays
text. :class:`CallDetector` holds a streamed reply only while it may still
turn out to be a call: text before a ``<tool_call>`` passes at once.
"""

from __future__ import annotations

import dataclasses
import json
import re

import orjson

from crossroads import ir

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def wants_tools(request: ir.Request) -> bool:
    return bool(request.tools) and (request.tool_choice is None or request.tool_choice.mode != "none")


def emulate(request: ir.Request) -> tuple[ir.Request, set[str] | None]:
    """``request`` for a service without tools, and the names of the tools a
    reply may call (None: no tools were offered, nothing to look for)."""
    if not wants_tools(request):
        return request, None
    return emulated(request), {tool.name for tool in request.tools if tool.kind == "function"}


def emulated(request: ir.Request) -> ir.Request:
    """``request`` for a service without tools."""
    choice = request.tool_choice
    offered = [] if choice is not None and choice.mode == "none" else [t for t in request.tools
                                                                        if t.kind == "function"]
    system = list(request.system)
    if offered:
        system.append(ir.TextPart(describe(offered, choice)))
    return dataclasses.replace(request, tools=[], tool_choice=None, parallel_tool_calls=None, system=system,
                               messages=[_written(m) for m in request.messages])


def describe(tools: list[ir.Tool], choice: ir.ToolChoice | None) -> str:
    lines = ["You can call the tools listed below. To call a tool, reply with nothing else than",
             f'{OPEN}{{"name": "<tool name>", "arguments": {{<the arguments as a JSON object>}}}}{CLOSE}',
             "(one block per call). The results come back in <tool_result> blocks. When no tool is needed, "
             "answer normally and do not write any tool_call block."]
    if choice is not None and choice.mode == "required":
        lines.append("You must call at least one tool now.")
    elif choice is not None and choice.mode == "tool" and choice.name:
        lines.append(f"You must call the tool {choice.name!r} now.")
    lines.append("Tools:")
    for tool in tools:
        schema = orjson.dumps(tool.parameters or {"type": "object", "properties": {}}).decode()
        lines.append(f"- {tool.name}: {tool.description or '(no description)'}\n  arguments schema: {schema}")
    return "\n".join(lines)


def _written(message: ir.Message) -> ir.Message:
    if not any(isinstance(p, ir.ToolCallPart | ir.ToolResultPart) for p in message.parts):
        return message
    parts: list[ir.Part] = []
    for part in message.parts:
        if isinstance(part, ir.ToolCallPart):
            arguments = _object(part.arguments) or {}
            parts.append(ir.TextPart(f"{OPEN}{json.dumps({'name': part.name, 'arguments': arguments})}{CLOSE}"))
        elif isinstance(part, ir.ToolResultPart):
            text = "".join(p.text for p in part.content if isinstance(p, ir.TextPart))
            status = ' status="error"' if part.is_error else ""
            parts.append(ir.TextPart(f'<tool_result name="{part.name or ""}" id="{part.tool_call_id}"{status}>'
                                     f"{text}</tool_result>"))
        else:
            parts.append(part)
    return dataclasses.replace(message, parts=parts)


def _object(text: str) -> dict[str, object] | None:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_calls(text: str, names: set[str]) -> list[tuple[str, str]]:
    """The calls in a held reply as (name, arguments JSON), or [] for a plain answer."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    candidates = [m.group(1) for m in _BLOCK.finditer(stripped)] if OPEN in stripped else [
        fenced.group(1) if fenced else stripped]
    calls = []
    for candidate in candidates:
        body = _FENCE.match(candidate)
        value = _object(body.group(1) if body else candidate)
        if value is None:
            return []
        name, arguments = value.get("name"), value.get("arguments", value.get("parameters", {}))
        if not isinstance(name, str) or name not in names or not isinstance(arguments, dict):
            return []
        calls.append((name, orjson.dumps(arguments).decode()))
    return calls


class CallDetector:
    """Streamed reply text in, the text that is certainly not a call out;
    ``finish`` decides what was held."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.held = ""
        self.holding_all = False  # a call block (or a bare JSON reply) began: hold to the end
        self.started = False  # saw the first non-blank character

    def feed(self, text: str) -> str:
        self.held += text
        if self.holding_all:
            return ""
        if not self.started:
            stripped = self.held.lstrip()
            if not stripped:
                return ""
            self.started = True
            if stripped.startswith(("{", "`")):
                self.holding_all = True
                return ""
        at = self.held.find(OPEN)
        if at >= 0:
            self.holding_all = True
            out, self.held = self.held[:at], self.held[at:]
            return out
        keep = _partial_marker(self.held)
        out, self.held = self.held[:len(self.held) - keep], self.held[len(self.held) - keep:]
        return out

    def finish(self) -> tuple[str, list[tuple[str, str]]]:
        """(text still to send, calls)."""
        held, self.held = self.held, ""
        calls = parse_calls(held, self.names) if self.holding_all else []
        return ("", calls) if calls else (held, [])


def _partial_marker(text: str) -> int:
    """How many trailing characters could be the start of ``OPEN``."""
    for size in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-size:]):
            return size
    return 0
