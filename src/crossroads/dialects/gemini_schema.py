"""JSON Schema <-> Gemini's OpenAPI-subset ``Schema``.

Clients describe tool parameters and structured output with full JSON Schema
($ref/$defs, ``additionalProperties``, ``const``, type arrays, ``oneOf``...).
Gemini's ``parameters`` / ``responseSchema`` accept only a subset (see
``google.genai.types.Schema``) and reject the whole request on any unknown
keyword, so :func:`clean_schema` rewrites a schema into that subset:

* local ``$ref`` (``#/$defs/X``, ``#/definitions/X``, any JSON pointer) are
  inlined; a reference that recurses into itself is cut to a bare node of the
  target's type (Gemini's subset cannot express recursion);
* ``allOf`` members are merged (properties and required united);
* ``anyOf``/``oneOf`` become ``anyOf``; ``{"type": "null"}`` branches, ``null``
  in a type array or in ``enum`` become ``nullable``; a type array with several
  real types becomes an ``anyOf`` with one branch per type;
* ``const`` becomes a one-value ``enum``; enums are kept only on strings
  (values stringified) — Gemini rejects ``enum`` on other types, so there the
  allowed values move into the description instead;
* ``format`` is kept only where Gemini supports it (string: enum, date-time;
  number: float, double; integer: int32, int64);
* ``properties``/``required`` survive only on objects, ``items`` only on
  arrays; ``required`` names missing from ``properties`` are dropped; an empty
  ``properties`` map is dropped (Gemini: "should be non-empty for OBJECT type");
  an array without ``items`` gets string items (Gemini: "items: missing field");
* everything else (``$schema``, ``additionalProperties``, ``examples``,
  ``exclusiveMinimum``, ``uniqueItems``, ``patternProperties``...) is dropped.

Type names are rendered upper-case, the proto enum spelling the SDK sends
(the REST API also accepts lower case).

:func:`to_json_schema` goes the other way, for a Gemini client's
``parameters``/``responseSchema`` that must reach a JSON-Schema upstream.
"""

from __future__ import annotations

from typing import Any

import orjson

_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"})
_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
_INT_KEYWORDS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_NUMBER_KEYWORDS = ("minimum", "maximum")
# Keywords whose value is copied verbatim (after a type check).
_ANNOTATIONS = ("title", "description")
_MAX_DEPTH = 64
# Inlining references can multiply a schema's size; past this many nodes,
# further references are cut like cycles.
_NODE_BUDGET = 5000


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a JSON schema into Gemini's ``Schema`` subset (never mutates the input)."""
    if not isinstance(schema, dict):
        return {}
    return _Cleaner(schema).clean(schema, 0)


class _Cleaner:
    __slots__ = ("budget", "expanding", "root")

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.expanding: list[str] = ["#"]  # the root is being expanded from the start
        self.budget = _NODE_BUDGET

    # ------------------------------------------------------------- dispatch

    def clean(self, node: Any, depth: int, filter_required: bool = True) -> dict[str, Any]:
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            return {}
        self.budget -= 1
        if "$ref" in node:
            return self._clean_ref(node, depth, filter_required)
        if isinstance(node.get("allOf"), list):
            return self._clean_all_of(node, depth, filter_required)
        branches = node.get("anyOf") if isinstance(node.get("anyOf"), list) else node.get("oneOf")
        if isinstance(branches, list):
            return self._clean_any_of(node, branches, depth, filter_required)
        if isinstance(node.get("type"), list):
            return self._clean_type_list(node, node["type"], depth, filter_required)
        return self._clean_plain(node, depth, filter_required)

    # ------------------------------------------------------------- $ref

    def _resolve(self, ref: str) -> dict[str, Any] | None:
        if not ref.startswith("#"):
            return None  # remote references cannot be fetched
        target: Any = self.root
        for token in ref[1:].split("/"):
            if not token:
                continue
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return None
        return target if isinstance(target, dict) else None

    def _clean_ref(self, node: dict[str, Any], depth: int, filter_required: bool) -> dict[str, Any]:
        ref = node["$ref"]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = self._resolve(ref) if isinstance(ref, str) else None
        if target is None:
            return self.clean(siblings, depth + 1, filter_required)
        if ref in self.expanding or self.budget <= 0:
            return self._cycle_stub(target, siblings)
        self.expanding.append(ref)
        try:
            # Keywords next to $ref (description, default...) win over the target's.
            return self.clean({**target, **siblings}, depth + 1, filter_required)
        finally:
            self.expanding.pop()

    @staticmethod
    def _cycle_stub(target: dict[str, Any], siblings: dict[str, Any]) -> dict[str, Any]:
        stub: dict[str, Any] = {}
        kind = target.get("type")
        if isinstance(kind, str) and kind.upper() in _TYPES:
            stub["type"] = kind.upper()
        elif "properties" in target:
            stub["type"] = "OBJECT"
        description = siblings.get("description", target.get("description"))
        if isinstance(description, str):
            stub["description"] = description
        if stub.get("type") == "ARRAY":
            stub["items"] = {"type": "STRING"}
        return stub

    # ------------------------------------------------------------- combinators

    def _clean_all_of(self, node: dict[str, Any], depth: int, filter_required: bool) -> dict[str, Any]:
        own = {k: v for k, v in node.items() if k != "allOf"}
        pieces = [self.clean(own, depth + 1, filter_required=False)] if own else []
        pieces += [self.clean(member, depth + 1, filter_required=False) for member in node["allOf"]]
        merged = _merge(pieces)
        return _finish(merged) if filter_required else merged

    def _clean_any_of(self, node: dict[str, Any], branches: list[Any], depth: int,
                      filter_required: bool) -> dict[str, Any]:
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        nullable = False
        real: list[dict[str, Any]] = []
        for branch in branches:
            if _is_null_schema(branch):
                nullable = True
            else:
                real.append(self.clean(branch, depth + 1))
        base = self.clean(rest, depth + 1, filter_required=False) if rest else {}
        if any(not branch for branch in real):
            real = []  # one branch accepts anything, so the union constrains nothing
        if len(real) == 1:
            result = _merge([base, real[0]])
        elif real and (enum := _merged_string_enum(real)) is not None:
            result = _merge([base, enum])
        else:
            result = dict(base)
            if real:
                result["anyOf"] = real
        if nullable:
            result["nullable"] = True
        return _finish(result) if filter_required else result

    def _clean_type_list(self, node: dict[str, Any], kinds: list[Any], depth: int,
                         filter_required: bool) -> dict[str, Any]:
        names = [k.upper() for k in kinds if isinstance(k, str)]
        real = [k for k in dict.fromkeys(names) if k in _TYPES]
        nullable = "NULL" in names
        if len(real) <= 1:
            single = {**node, "type": real[0] if real else None}
            if not real:
                single.pop("type")
            result = self.clean(single, depth + 1, filter_required)
        else:
            annotations = {k: node[k] for k in (*_ANNOTATIONS, "default") if k in node}
            body = {k: v for k, v in node.items() if k not in annotations and k != "type"}
            result = self._clean_plain(annotations, depth, filter_required)
            result["anyOf"] = [self.clean({**body, "type": kind}, depth + 1) for kind in real]
        if nullable:
            result["nullable"] = True
        return result

    # ------------------------------------------------------------- one node

    def _clean_plain(self, node: dict[str, Any], depth: int, filter_required: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        enum_values = _enum_values(node)
        kind = _node_type(node, enum_values)
        notes: list[str] = []
        if kind == "NULL":
            kind = None
            out["nullable"] = True
        if kind is not None:
            out["type"] = kind
        for key in _ANNOTATIONS:
            if isinstance(node.get(key), str):
                out[key] = node[key]
        if node.get("nullable") is True:
            out["nullable"] = True
        if enum_values is not None:
            values = [v for v in enum_values if v is not None]
            if len(values) < len(enum_values):
                out["nullable"] = True
            if kind == "STRING" and values:
                out["enum"] = [_enum_text(v) for v in values]
            elif values:
                notes.append("Allowed values: " + ", ".join(_enum_text(v) for v in values) + ".")
        fmt = node.get("format")
        supported = isinstance(fmt, str) and kind in _FORMATS and fmt in _FORMATS[kind]
        if supported and (fmt != "enum" or "enum" in out):
            out["format"] = fmt
        if "default" in node:
            out["default"] = node["default"]
        if "example" in node:
            out["example"] = node["example"]
        if kind == "STRING" and isinstance(node.get("pattern"), str):
            out["pattern"] = node["pattern"]
        for key in _INT_KEYWORDS:
            value = node.get(key)
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
                out[key] = int(value)
        for key in _NUMBER_KEYWORDS:
            value = node.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = value
        if kind == "OBJECT" or (kind is None and not filter_required):
            self._object_keywords(node, out, depth)
        if kind == "ARRAY":
            out["items"] = self._items(node, depth)
        if notes:
            out["description"] = (out["description"] + " " if "description" in out else "") + " ".join(notes)
        return _finish(out) if filter_required else out

    def _object_keywords(self, node: dict[str, Any], out: dict[str, Any], depth: int) -> None:
        properties = node.get("properties")
        if isinstance(properties, dict):
            cleaned: dict[str, Any] = {}
            for name, sub in properties.items():
                if sub is False:
                    continue  # JSON Schema "never": the property cannot appear
                cleaned[name] = self.clean(sub if isinstance(sub, dict) else {}, depth + 1)
            if cleaned:
                out["properties"] = cleaned
        required = node.get("required")
        if isinstance(required, list):
            out["required"] = [name for name in dict.fromkeys(required) if isinstance(name, str)]
        ordering = node.get("propertyOrdering")
        if isinstance(ordering, list):
            out["propertyOrdering"] = [name for name in ordering if isinstance(name, str)]

    def _items(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        items = node.get("items")
        if isinstance(items, list):  # draft-4 tuple form
            items = {"anyOf": items} if len(items) > 1 else (items[0] if items else None)
        if items is None and isinstance(node.get("prefixItems"), list) and node["prefixItems"]:
            prefix = node["prefixItems"]
            items = {"anyOf": prefix} if len(prefix) > 1 else prefix[0]
        cleaned = self.clean(items, depth + 1) if isinstance(items, dict) else {}
        if "type" not in cleaned and "anyOf" not in cleaned:
            cleaned["type"] = "STRING"  # Gemini requires typed items on every array
        return cleaned


# ----------------------------------------------------------------- helpers


def _is_null_schema(branch: Any) -> bool:
    if not isinstance(branch, dict):
        return False
    kind = branch.get("type")
    if isinstance(kind, str) and kind.lower() == "null":
        return True
    if "const" in branch and branch["const"] is None:
        return True
    return branch.get("enum") == [None]


def _enum_values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) and enum else None


def _node_type(node: dict[str, Any], enum_values: list[Any] | None) -> str | None:
    kind = node.get("type")
    if isinstance(kind, str):
        upper = kind.upper()
        if upper in _TYPES or upper == "NULL":
            return upper
        return None
    if "properties" in node or "additionalProperties" in node:
        return "OBJECT"
    if "items" in node or "prefixItems" in node:
        return "ARRAY"
    if enum_values:
        values = [v for v in enum_values if v is not None]
        if not values:
            return "NULL"
        if all(isinstance(v, bool) for v in values):
            return "BOOLEAN"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "INTEGER"
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "NUMBER"
        return "STRING"
    return None


def _enum_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _merged_string_enum(branches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``oneOf: [{const: a}, {const: b}]`` -> one string enum, which Gemini handles best."""
    values: list[str] = []
    for branch in branches:
        if branch.get("type") != "STRING" or "enum" not in branch:
            return None
        if set(branch) - {"type", "enum", "format", "description", "title"}:
            return None
        values.extend(v for v in branch["enum"] if v not in values)
    return {"type": "STRING", "enum": values} if values else None


def _merge(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge cleaned schemas: properties and required are united, other keys first-wins."""
    merged: dict[str, Any] = {}
    for piece in pieces:
        for key, value in piece.items():
            if key == "properties":
                props = merged.setdefault("properties", {})
                for name, sub in value.items():
                    props.setdefault(name, sub)
            elif key == "required":
                names = merged.setdefault("required", [])
                names.extend(n for n in value if n not in names)
            elif key not in merged:
                merged[key] = value
    if ("properties" in merged or "required" in merged) and "type" not in merged and "anyOf" not in merged:
        merged["type"] = "OBJECT"
    return merged


_KEYWORDS_BY_TYPE = {
    "OBJECT": ("properties", "required", "propertyOrdering", "minProperties", "maxProperties"),
    "ARRAY": ("items", "minItems", "maxItems"),
    "STRING": ("enum", "pattern", "minLength", "maxLength"),
    "NUMBER": ("minimum", "maximum"),
    "INTEGER": ("minimum", "maximum"),
}
_TYPED_KEYWORDS = frozenset(k for keys in _KEYWORDS_BY_TYPE.values() for k in keys)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    """Final per-node fixes once the node's type and full property set are known:
    keywords that do not belong to the type go (Gemini rejects e.g. properties
    on a STRING), required/ordering must name real properties, arrays need items."""
    kind = node.get("type")
    allowed = _KEYWORDS_BY_TYPE.get(kind or "", ())
    for key in _TYPED_KEYWORDS.difference(allowed):
        node.pop(key, None)
    if "format" in node and node["format"] not in _FORMATS.get(kind or "", ()):
        del node["format"]
    if kind == "ARRAY" and "items" not in node:
        node["items"] = {"type": "STRING"}
    if kind != "OBJECT":
        return node
    properties = node.get("properties") or {}
    if not properties:
        node.pop("properties", None)
    for key in ("required", "propertyOrdering"):
        if key in node:
            kept = [name for name in node[key] if name in properties]
            if kept:
                node[key] = kept
            else:
                del node[key]
    return node


# ----------------------------------------------------------------- reverse


_SNAKE_TO_CAMEL = {
    "any_of": "anyOf", "min_items": "minItems", "max_items": "maxItems",
    "min_length": "minLength", "max_length": "maxLength", "min_properties": "minProperties",
    "max_properties": "maxProperties", "property_ordering": "propertyOrdering",
}


def to_json_schema(schema: Any) -> Any:
    """A Gemini ``Schema`` (upper-case types, ``nullable``) as standard JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for raw_key, value in schema.items():
        key = _SNAKE_TO_CAMEL.get(raw_key, raw_key) if isinstance(raw_key, str) else str(raw_key)
        if key == "type":
            if isinstance(value, str) and value.upper() != "TYPE_UNSPECIFIED":
                out["type"] = value.lower()
        elif key in ("nullable", "propertyOrdering") or (key == "format" and value == "enum"):
            continue
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = to_json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [to_json_schema(sub) for sub in value]
        elif key == "example":
            out["examples"] = [value]
        else:
            out[key] = value
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out
