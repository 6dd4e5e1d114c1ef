"""The top-level shape of each request kind, checked at the door.

A same-dialect request passes through to its upstream unparsed, so without
this a body such as ``{"messages": "hello"}`` would reach the upstream, and a
self-hosted server that answers it with a 500 would count against the account
every client shares. The check is shallow on purpose (the fields, and the
type of each message's role and content): cheap on the hot path, and enough
that what passes is well-formed at the level upstreams crash on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crossroads import ir

_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
          bool: "a boolean", type(None): "null"}


def _describe(types: tuple[type, ...]) -> str:
    return " or ".join(_NAMES.get(t, t.__name__) for t in types if t is not int or float not in types)


@dataclass(frozen=True, slots=True)
class Shape:
    required: tuple[tuple[str, tuple[type, ...]], ...] = ()
    optional: tuple[tuple[str, tuple[type, ...]], ...] = ()
    items: str | None = None  # the list field whose elements are checked
    item_fields: tuple[tuple[str, tuple[type, ...], bool], ...] = ()  # (name, types, required)

    def check(self, body: dict[str, Any]) -> None:
        for name, types in self.required:
            value = body.get(name)
            if value is None:
                raise ir.bad_request(f"'{name}' is required", param=name)
            _expect(value, types, name)
        for name, types in self.optional:
            value = body.get(name)
            if value is not None:
                _expect(value, types, name)
        if self.items is None:
            return
        entries = body.get(self.items)
        if type(entries) is not list:
            return
        fields = self.item_fields
        for entry in entries:  # the hot loop: a long conversation has hundreds of messages
            if type(entry) is not dict:
                self._fault(entries)
            for name, types, required in fields:
                value = entry.get(name)
                if value is None:
                    if required:
                        self._fault(entries)
                elif not isinstance(value, types):  # item field types never include int, so bool cannot slip in
                    self._fault(entries)

    def _fault(self, entries: list[Any]) -> None:
        """Name the first bad entry precisely (the error path only)."""
        for index, entry in enumerate(entries):
            where = f"{self.items}[{index}]"
            if not isinstance(entry, dict):
                raise ir.bad_request(f"'{where}' must be an object", param=where)
            for name, types, required in self.item_fields:
                value = entry.get(name)
                if value is None:
                    if required:
                        raise ir.bad_request(f"'{where}.{name}' is required", param=f"{where}.{name}")
                    continue
                _expect(value, types, f"{where}.{name}")


def _expect(value: Any, types: tuple[type, ...], where: str) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ir.bad_request(f"'{where}' must be {_describe(types)}, got {_NAMES.get(type(value), 'another type')}",
                             param=where)


_NUMBER = (int, float)
_COMMON = (("temperature", _NUMBER), ("top_p", _NUMBER), ("stream", (bool,)), ("tools", (list,)),
           ("metadata", (dict,)))

OPENAI_CHAT = Shape(
    required=(("messages", (list,)),),
    optional=(*_COMMON, ("max_tokens", (int,)), ("max_completion_tokens", (int,)), ("n", (int,)),
              ("stop", (str, list)), ("stream_options", (dict,)), ("response_format", (dict,)),
              ("seed", (int,)), ("tool_choice", (str, dict)), ("user", (str,))),
    items="messages",
    item_fields=(("role", (str,), True), ("content", (str, list), False), ("tool_calls", (list,), False)),
)
OPENAI_COMPLETIONS = Shape(
    required=(("prompt", (str, list)),),
    optional=(*_COMMON, ("max_tokens", (int,)), ("n", (int,)), ("stop", (str, list)), ("seed", (int,))),
)
OPENAI_RESPONSES = Shape(
    optional=(*_COMMON, ("input", (str, list)), ("instructions", (str,)), ("max_output_tokens", (int,)),
              ("reasoning", (dict,)), ("text", (dict,)), ("tool_choice", (str, dict)), ("include", (list,)),
              ("previous_response_id", (str,)), ("store", (bool,))),
    items="input",
    item_fields=(("type", (str,), False), ("role", (str,), False), ("content", (str, list), False)),
)
ANTHROPIC_MESSAGES = Shape(
    required=(("messages", (list,)), ("max_tokens", (int,))),
    optional=(*_COMMON, ("system", (str, list)), ("stop_sequences", (list,)), ("top_k", (int,)),
              ("thinking", (dict,)), ("tool_choice", (dict,))),
    items="messages",
    item_fields=(("role", (str,), True), ("content", (str, list), True)),
)
ANTHROPIC_COUNT = Shape(
    required=(("messages", (list,)),),
    optional=(("system", (str, list)), ("tools", (list,)), ("thinking", (dict,))),
    items="messages",
    item_fields=(("role", (str,), True), ("content", (str, list), True)),
)
GEMINI_GENERATE = Shape(
    required=(("contents", (list, dict)),),
    optional=(("systemInstruction", (dict, str)), ("system_instruction", (dict, str)),
              ("generationConfig", (dict,)), ("generation_config", (dict,)), ("tools", (list,)),
              ("toolConfig", (dict,)), ("safetySettings", (list,)), ("cachedContent", (str,))),
    items="contents",
    item_fields=(("role", (str,), False), ("parts", (list,), True)),
)
GEMINI_COUNT = Shape(
    optional=(("contents", (list, dict)), ("generateContentRequest", (dict,))),
)
