"""Which keys of a config file the router acts on, at every depth.

A *shape* says what a part of the file may hold:

- ``None``: a value the router reads as a whole (a number, a list of names);
- a mapping ``{key: shape}``: a section whose keys are checked one by one;
  the key ``"*"`` admits any key (a section another module validates);
- a one-item list ``[shape]``: a list whose items have that shape;
- a string: a key CLIProxyAPI knows that Crossroads does not act on, and why;
- ``OnlyAs(value, reason)``: a key whose meaning with ``value`` is what the
  router does anyway; any other value is reported with the reason.

:func:`report` walks the file's YAML nodes against a shape and returns every
key that is unknown or not acted on, with its line, so ``serve`` and
``check-config`` say the same thing and nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

Shape = Any  # None | Mapping[str, Shape] | list[Shape] | str (see the module docstring)
ANY_KEYS: Mapping[str, Shape] = {"*": None}


@dataclass(frozen=True, slots=True)
class OnlyAs:
    value: Any
    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    path: str  # e.g. gemini-api-key[0].models[1].thinking
    line: int | None
    reason: str | None  # None: a key nobody knows

    @property
    def unknown(self) -> bool:
        return self.reason is None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        what = "unknown key, ignored" if self.reason is None else f"not acted on: {self.reason}"
        return f"{where}{self.path} ({what})"


def report(text: str, shape: Mapping[str, Shape], extra: Sequence[tuple[str, str]] = ()) -> list[Finding]:
    """The keys of the YAML ``text`` that ``shape`` does not act on, in file
    order; ``extra`` adds (path, reason) pairs found by the modules that read
    a value as a whole (a payload rule that cannot be applied)."""
    try:
        root = yaml.compose(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError:
        return []
    found: list[Finding] = []
    if isinstance(root, yaml.MappingNode):
        _mapping(root, shape, "", found)
    for path, reason in extra:
        found.append(Finding(path, _line(root, path), reason))
    found.sort(key=lambda f: f.line or 0)
    return found


def _line(root: yaml.Node | None, path: str) -> int | None:
    node = root
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if isinstance(node, yaml.MappingNode) and key:
            node = next((value for k, value in node.value if str(k.value) == key), None)
        elif isinstance(node, yaml.SequenceNode) and index and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            return None
    return node.start_mark.line + 1 if node is not None else None


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(node: yaml.Node, shape: Shape, path: str, found: list[Finding]) -> None:
    if isinstance(shape, Mapping) and isinstance(node, yaml.MappingNode):
        _mapping(node, shape, path, found)
    elif isinstance(shape, list) and shape and isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, shape[0], f"{path}[{index}]", found)


def _mapping(node: yaml.MappingNode, shape: Mapping[str, Shape], path: str, found: list[Finding]) -> None:
    for key_node, value_node in node.value:
        key = str(key_node.value)
        here = f"{path}.{key}" if path else key
        line = key_node.start_mark.line + 1
        if key in shape:
            sub = shape[key]
        elif "*" in shape:
            sub = shape["*"]
        else:
            found.append(Finding(here, line, None))
            continue
        if isinstance(sub, OnlyAs):
            if not (isinstance(value_node, yaml.ScalarNode) and yaml.safe_load(value_node.value) == sub.value):
                found.append(Finding(here, line, sub.reason))
            continue
        if isinstance(sub, str):
            if not _switched_off(value_node):
                found.append(Finding(here, line, sub))
            continue
        _walk(value_node, sub, here, found)


def _switched_off(node: yaml.Node) -> bool:
    """``false``, ``0``, ``""``, ``[]`` or ``{}``: a setting left at its
    default asks nothing of the router, so not acting on it loses nothing."""
    if isinstance(node, yaml.ScalarNode):
        return node.tag.endswith((":bool", ":int", ":null", ":str")) and str(node.value).lower() in (
            "false", "0", "", "null", "~")
    if isinstance(node, yaml.MappingNode):
        enable = next((value for key, value in node.value if str(key.value) in ("enable", "enabled")), None)
        if enable is not None:
            return _switched_off(enable)
        return all(_switched_off(value) for _, value in node.value)
    return isinstance(node, yaml.SequenceNode) and not node.value
