"""CLIProxyAPI's ``payload`` rules: edits to the body sent upstream, chosen
by model (wildcards), the upstream's protocol, the client's protocol, the
client's headers and conditions on the body::

    payload:
      default:      # set when missing
        - models: [{name: "gemini-*", protocol: gemini}]
          params: {"generationConfig.thinkingConfig.thinkingBudget": 32768}
      default-raw:  # the same, each value a JSON text
      override:     # always set
        - models: [{name: "gpt-*", protocol: codex, from-protocol: openai}]
          params: {"reasoning.effort": high}
      override-raw:
      filter:       # removed
        - models: [{name: "*"}]
          params: ["metadata.user_id"]

A model entry may add ``headers`` (wildcard values, all must match),
``match``/``not-match`` (paths equal, or not, to values), ``exist``/
``not-exist`` (paths present and not null, or not). Paths are dotted
(``a.b.0.c``, ``\\.`` for a literal dot); gjson queries (``#(...)``,
wildcards in paths) are not supported: a rule using one is never applied and
``check-config`` names it. Protocols are CLIProxyAPI's names: ``openai``,
``codex`` (Responses), ``claude``, ``gemini``, ``gemini-cli``; clients:
``openai``, ``responses``, ``claude``, ``gemini``.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("default", "default-raw", "override", "override-raw", "filter")
# Crossroads dialect name -> CLIProxyAPI protocol name, upstream and client side
PROTOCOLS = {"openai-chat": "openai", "openai-responses": "codex", "anthropic": "claude", "gemini": "gemini",
             "cloudcode": "gemini-cli", "openai-completions": "openai"}
FROM_PROTOCOLS = {"openai-chat": "openai", "openai-responses": "responses", "anthropic": "claude",
                  "gemini": "gemini", "openai-completions": "openai"}
_QUERY = set("#()*?|@")
_MISSING = object()


class Unsupported(ValueError):
    """A path this implementation cannot follow (a gjson query)."""


def split_path(path: str) -> tuple[str, ...]:
    if not path or _QUERY & set(path.replace("\\.", "")):
        raise Unsupported(f"{path!r} is a gjson query")
    parts, current, escaped = [], "", False
    for char in path:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class ModelMatch:
    name: str
    protocol: str = ""
    from_protocol: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    match: tuple[tuple[tuple[str, ...], Any], ...] = ()
    not_match: tuple[tuple[tuple[str, ...], Any], ...] = ()
    exist: tuple[tuple[str, ...], ...] = ()
    not_exist: tuple[tuple[str, ...], ...] = ()

    def applies(self, models: tuple[str, ...], protocol: str, from_protocol: str,
                headers: Mapping[str, str], body: Any) -> bool:
        if self.protocol and self.protocol != protocol:
            return False
        if self.from_protocol and self.from_protocol != from_protocol:
            return False
        if not any(fnmatch.fnmatchcase(m, self.name) for m in models):
            return False
        for name, pattern in self.headers:
            value = headers.get(name)
            if value is None or not fnmatch.fnmatchcase(value, pattern):
                return False
        return (all(_get(body, p) == v for p, v in self.match)
                and not any(_get(body, p) == v for p, v in self.not_match)
                and all(_get(body, p) not in (None, _MISSING) for p in self.exist)
                and all(_get(body, p) in (None, _MISSING) for p in self.not_exist))


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    models: tuple[ModelMatch, ...]
    params: tuple[tuple[tuple[str, ...], Any], ...]  # filter: values unused


@dataclass(frozen=True, slots=True)
class Rules:
    rules: tuple[Rule, ...] = ()
    ignored: tuple[str, ...] = field(default=())  # "payload.override[2]: why", for check-config

    def apply(self, body: dict[str, Any], models: tuple[str, ...], upstream: str, client: str,
              headers: Mapping[str, str]) -> dict[str, Any] | None:
        """The edited body (``body`` itself is left as it was), or None when no rule applies."""
        protocol, from_protocol = PROTOCOLS.get(upstream, upstream), FROM_PROTOCOLS.get(client, client)
        chosen = [r for r in self.rules if any(m.applies(models, protocol, from_protocol, headers, body)
                                               for m in r.models)]
        if not chosen:
            return None
        out = dict(body)  # edits copy what they change, nothing else
        defaulted: set[tuple[str, ...]] = set()
        for rule in chosen:
            for path, value in rule.params:
                if rule.kind == "filter":
                    _delete(out, path)
                elif rule.kind.startswith("default"):
                    if path not in defaulted and _get(out, path) is _MISSING:
                        _set(out, path, value)
                        defaulted.add(path)
                else:
                    _set(out, path, value)
        return out


def parse(section: Any) -> Rules:
    """``payload:`` (raise ValueError naming the place at fault); rules with
    paths this implementation cannot follow are kept out and listed."""
    if section is None:
        return Rules()
    if not isinstance(section, dict):
        raise ValueError("'payload' must be a mapping of default, default-raw, override, override-raw, filter")
    rules: list[Rule] = []
    ignored: list[str] = []
    for kind in KINDS:
        entries = section.get(kind) or []
        if not isinstance(entries, list):
            raise ValueError(f"payload.{kind} must be a list of rules")
        for index, entry in enumerate(entries):
            where = f"payload.{kind}[{index}]"
            try:
                rules.append(_rule(kind, entry, where))
            except Unsupported as exc:
                ignored.append(f"{where}: {exc}")
    # defaults, then overrides, then filters, each in the file's order
    rules.sort(key=lambda r: 0 if r.kind.startswith("default") else 1 if r.kind.startswith("override") else 2)
    return Rules(tuple(rules), tuple(ignored))


def _rule(kind: str, entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping with models and params")
    models = entry.get("models") or []
    if not isinstance(models, list) or not models:
        raise ValueError(f"{where}.models must be a non-empty list of {{name: ...}}")
    matches = tuple(_model(m, f"{where}.models[{i}]") for i, m in enumerate(models))
    params = entry.get("params")
    if kind == "filter":
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise ValueError(f"{where}.params must be a list of paths")
        pairs = tuple((split_path(p), None) for p in params)
    else:
        if not isinstance(params, dict):
            raise ValueError(f"{where}.params must map paths to values")
        pairs = tuple((split_path(str(p)), _raw(v, f"{where}.params.{p}") if kind.endswith("-raw") else v)
                      for p, v in params.items())
    return Rule(kind, matches, pairs)


def _model(entry: Any, where: str) -> ModelMatch:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise ValueError(f"{where} needs a 'name' (wildcards allowed)")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError(f"{where}.headers must map header names to patterns")
    return ModelMatch(
        name=entry["name"], protocol=str(entry.get("protocol") or "").lower(),
        from_protocol={"openai-response": "responses", "openai-responses": "responses", "response": "responses"}.get(
            str(entry.get("from-protocol") or "").lower(), str(entry.get("from-protocol") or "").lower()),
        headers=tuple((str(k).lower(), str(v)) for k, v in headers.items()),
        match=_conditions(entry.get("match"), f"{where}.match"),
        not_match=_conditions(entry.get("not-match"), f"{where}.not-match"),
        exist=tuple(split_path(p) for p in _paths(entry.get("exist"), f"{where}.exist")),
        not_exist=tuple(split_path(p) for p in _paths(entry.get("not-exist"), f"{where}.not-exist")))


def _conditions(value: Any, where: str) -> tuple[tuple[tuple[str, ...], Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise ValueError(f"{where} must be a list of {{path: value}}")
    return tuple((split_path(str(p)), v) for c in value for p, v in c.items())


def _paths(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError(f"{where} must be a list of paths")
    return value


def _raw(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None


def _step(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        return node.get(key, _MISSING)
    if isinstance(node, list) and key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node):
        return node[int(key)]
    return _MISSING


def _get(body: Any, path: tuple[str, ...]) -> Any:
    node = body
    for key in path:
        node = _step(node, key)
        if node is _MISSING:
            return _MISSING
    return node


def _descend(node: Any, key: str, create: bool) -> Any:
    """The child at ``key``, copied (shallowly) into ``node`` first so the
    client's body is never edited; a missing mapping is created when asked."""
    child = _step(node, key)
    if isinstance(child, dict | list):
        child = dict(child) if isinstance(child, dict) else list(child)
    elif create and isinstance(node, dict):
        child = {}
    else:
        return _MISSING
    if isinstance(node, dict):
        node[key] = child
    else:
        node[int(key)] = child
    return child


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = body
    for key in path[:-1]:
        node = _descend(node, key, create=True)
        if node is _MISSING:
            return  # a list index that does not exist: nothing to set
    last = path[-1]
    if isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = copy.deepcopy(value)


def _delete(body: dict[str, Any], path: tuple[str, ...]) -> None:
    if _get(body, path) is _MISSING:
        return
    node: Any = body
    for key in path[:-1]:
        node = _descend(node, key, create=False)
    last = path[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list):
        del node[int(last)]
