"""clean_schema: arbitrary JSON Schema -> Gemini's Schema subset."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from crossroads.dialects.gemini_schema import clean_schema, to_json_schema

SCHEMA = TypeAdapter(genai_types.Schema)
ALLOWED_KEYS = {
    "type", "format", "description", "nullable", "enum", "properties", "required", "items", "anyOf",
    "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern", "propertyOrdering",
    "title", "default", "example", "minProperties", "maxProperties",
}
FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}


def assert_gemini_compatible(node: dict[str, Any], path: str = "$") -> None:
    """What the real API rejects, beyond what the SDK model can see."""
    assert isinstance(node, dict), path
    assert set(node) <= ALLOWED_KEYS, f"{path}: unsupported keys {set(node) - ALLOWED_KEYS}"
    kind = node.get("type")
    assert kind is None or kind in {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}, path
    if "enum" in node:
        assert kind == "STRING", f"{path}: enum only allowed for STRING type"
        assert all(isinstance(v, str) for v in node["enum"]), path
    if "format" in node:
        assert node["format"] in FORMATS.get(kind or "", set()), f"{path}: format {node['format']}"
    if kind != "OBJECT":
        assert "properties" not in node and "required" not in node, f"{path}: properties only for OBJECT"
    if "properties" in node:
        assert node["properties"], f"{path}: properties should be non-empty for OBJECT type"
        for name, sub in node["properties"].items():
            assert_gemini_compatible(sub, f"{path}.properties[{name}]")
    for name in node.get("required", []):
        assert name in node.get("properties", {}), f"{path}: required {name!r} is not a property"
    if kind == "ARRAY":
        items = node.get("items")
        assert isinstance(items, dict) and ("type" in items or "anyOf" in items), f"{path}.items: missing field"
    else:
        assert "items" not in node, path
    if "items" in node:
        assert_gemini_compatible(node["items"], f"{path}.items")
    for index, sub in enumerate(node.get("anyOf", [])):
        assert_gemini_compatible(sub, f"{path}.anyOf[{index}]")


def check(schema: dict[str, Any]) -> dict[str, Any]:
    before = copy.deepcopy(schema)
    cleaned = clean_schema(schema)
    assert schema == before, "clean_schema must not mutate its input"
    SCHEMA.validate_json(orjson.dumps(cleaned))  # what the fake upstream does with a request
    genai_types.Schema.model_validate(cleaned)
    assert_gemini_compatible(cleaned)
    return cleaned


# ------------------------------------------------------------------ a corpus of real-world shapes

DRAFT7 = "http://json-schema.org/draft-07/schema#"

CLAUDE_CODE_TODO_WRITE = {
    "$schema": DRAFT7,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "todos": {
            "type": "array",
            "description": "The updated todo list",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "content": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                    "activeForm": {"type": "string", "minLength": 1},
                },
                "required": ["content", "status", "activeForm"],
            },
        }
    },
    "required": ["todos"],
}

CLAUDE_CODE_BASH = {
    "$schema": DRAFT7,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "command": {"type": "string", "description": "The command to execute"},
        "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)"},
        "description": {"type": "string"},
        "run_in_background": {"type": "boolean"},
        "dangerouslyDisableSandbox": {"type": "boolean"},
    },
    "required": ["command"],
}

CLAUDE_CODE_ASK_USER = {
    "$schema": DRAFT7,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "questions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "question": {"type": "string"},
                    "header": {"type": "string", "maxLength": 12},
                    "options": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 4,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"label": {"type": "string"}, "description": {"type": "string"}},
                            "required": ["label", "description"],
                        },
                    },
                    "multiSelect": {"type": "boolean", "default": False},
                },
                "required": ["question", "header", "options", "multiSelect"],
            },
        },
        "answers": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["questions"],
}

CLAUDE_CODE_READ = {
    "$schema": DRAFT7,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file_path": {"type": "string"},
        "offset": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991},
        "limit": {"type": "integer", "exclusiveMinimum": 0},
    },
    "required": ["file_path"],
}

CODEX_SHELL = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}, "description": "The command to execute"},
        "workdir": {"type": "string"},
        "timeout_ms": {"type": "number"},
        "with_escalated_permissions": {"type": "boolean"},
        "justification": {"type": "string"},
    },
    "required": ["command"],
    "additionalProperties": False,
}

CODEX_UPDATE_PLAN = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string"},
        "plan": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "step": {"type": "string"},
                    "status": {"type": "string", "description": "One of: pending, in_progress, completed"},
                },
                "required": ["step", "status"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["plan"],
    "additionalProperties": False,
}

PYDANTIC_MODEL = {
    "$defs": {
        "Address": {
            "properties": {
                "street": {"title": "Street", "type": "string"},
                "zip": {"anyOf": [{"type": "string", "pattern": "^[0-9]{5}$"}, {"type": "null"}],
                        "default": None, "title": "Zip"},
            },
            "required": ["street"],
            "title": "Address",
            "type": "object",
        },
        "Kind": {"enum": ["home", "work"], "title": "Kind", "type": "string"},
    },
    "properties": {
        "name": {"title": "Name", "type": "string"},
        "kind": {"$ref": "#/$defs/Kind", "default": "home"},
        "address": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default": None},
        "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array", "uniqueItems": True},
        "mode": {"const": "strict", "title": "Mode", "type": "string"},
        "score": {"anyOf": [{"type": "number", "exclusiveMaximum": 1}, {"type": "integer"}], "title": "Score"},
    },
    "required": ["name", "address", "mode"],
    "title": "Person",
    "type": "object",
}

DISCRIMINATED_UNION = {
    "$defs": {
        "Cat": {"properties": {"pet_type": {"const": "cat", "type": "string"}, "meows": {"type": "integer"}},
                "required": ["pet_type", "meows"], "type": "object"},
        "Dog": {"properties": {"pet_type": {"const": "dog", "type": "string"}, "barks": {"type": "number"}},
                "required": ["pet_type", "barks"], "type": "object"},
    },
    "properties": {
        "pet": {
            "discriminator": {"mapping": {"cat": "#/$defs/Cat", "dog": "#/$defs/Dog"}, "propertyName": "pet_type"},
            "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
        }
    },
    "required": ["pet"],
    "type": "object",
}

MCP_SERVER_TOOL = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "format": "uri", "description": "URL to fetch"},
        "email": {"type": "string", "format": "email"},
        "when": {"type": "string", "format": "date-time"},
        "max_length": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 1000000, "default": 5000},
        "ratio": {"type": "number", "format": "float", "multipleOf": 0.5},
        "id": {"type": ["string", "number"]},
        "headers": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"},
                    "patternProperties": {"^x-": {"type": "string"}}},
        "raw": {"type": ["string", "null"], "examples": ["abc"]},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "flag": {"enum": [True, False, None]},
        "mixed": {"enum": ["a", 1, None]},
        "choice": {"if": {"type": "string"}, "then": {"minLength": 1}, "else": {"type": "number"}},
        "never": {"not": {}},
    },
    "required": ["url", "nonexistent"],
    "$id": "https://example.com/tool.json",
    "$comment": "generated",
}

ZOD_TO_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$ref": "#/definitions/Args",
    "definitions": {
        "Args": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "options": {"$ref": "#/definitions/Options"},
                "alias": {"$ref": "#/definitions/Args/properties/path"},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        "Options": {
            "type": "object",
            "properties": {"recursive": {"type": "boolean"}, "depth": {"anyOf": [{"type": "integer"}, {"not": {}}]}},
            "additionalProperties": False,
        },
    },
}

RECURSIVE_TREE = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
            },
            "required": ["name"],
        }
    },
    "type": "object",
    "properties": {"root": {"$ref": "#/$defs/Node"}},
}

MUTUAL_RECURSION = {
    "definitions": {
        "A": {"type": "object", "properties": {"b": {"$ref": "#/definitions/B"}}},
        "B": {"type": "object", "properties": {"a": {"$ref": "#/definitions/A"}, "n": {"type": "integer"}}},
    },
    "type": "object",
    "properties": {"start": {"$ref": "#/definitions/A"}, "self": {"$ref": "#"}},
}

JSON_VALUE = {
    "$defs": {
        "JsonValue": {
            "anyOf": [
                {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
                {"type": "array", "items": {"$ref": "#/$defs/JsonValue"}},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/JsonValue"}},
            ]
        }
    },
    "type": "object",
    "properties": {"value": {"$ref": "#/$defs/JsonValue"}, "list": {"type": "array"}},
    "required": ["value"],
}

BOOLEAN_SUBSCHEMAS = {
    "type": "object",
    "properties": {"anything": True, "nothing": False, "arr": {"type": "array", "items": True}},
    "required": ["anything", "nothing"],
}

ALL_OF = {
    "type": "object",
    "properties": {
        "merged": {
            "allOf": [
                {"$ref": "#/$defs/Base"},
                {"type": "object", "properties": {"extra": {"type": "integer"}}, "required": ["extra"]},
            ],
            "description": "merged object",
        },
        "constrained": {"allOf": [{"type": "string"}, {"maxLength": 5}]},
    },
    "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
}

EMPTY_OBJECTS = {
    "type": "object",
    "properties": {"opts": {"type": "object", "properties": {}}, "map": {"type": "object"}},
    "required": [],
}

SELF_REFERENTIAL_ALL_OF = {"$defs": {"Loop": {"allOf": [{"$ref": "#/$defs/Loop"}]}},
                           "type": "object", "properties": {"x": {"$ref": "#/$defs/Loop"}}}

CORPUS = {
    "claude_code_todo_write": CLAUDE_CODE_TODO_WRITE,
    "claude_code_bash": CLAUDE_CODE_BASH,
    "claude_code_ask_user": CLAUDE_CODE_ASK_USER,
    "claude_code_read": CLAUDE_CODE_READ,
    "codex_shell": CODEX_SHELL,
    "codex_update_plan": CODEX_UPDATE_PLAN,
    "pydantic_model": PYDANTIC_MODEL,
    "discriminated_union": DISCRIMINATED_UNION,
    "mcp_server_tool": MCP_SERVER_TOOL,
    "zod_to_json_schema": ZOD_TO_JSON_SCHEMA,
    "recursive_tree": RECURSIVE_TREE,
    "mutual_recursion": MUTUAL_RECURSION,
    "json_value": JSON_VALUE,
    "boolean_subschemas": BOOLEAN_SUBSCHEMAS,
    "all_of": ALL_OF,
    "empty_objects": EMPTY_OBJECTS,
    "self_referential_all_of": SELF_REFERENTIAL_ALL_OF,
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_schemas_become_valid_gemini_schemas(name: str) -> None:
    check(CORPUS[name])


def test_claude_code_todo_write_keeps_structure() -> None:
    cleaned = check(CLAUDE_CODE_TODO_WRITE)
    assert cleaned == {
        "type": "OBJECT",
        "properties": {
            "todos": {
                "type": "ARRAY",
                "description": "The updated todo list",
                "items": {
                    "type": "OBJECT",
                    "properties": {
                        "content": {"type": "STRING", "minLength": 1},
                        "status": {"type": "STRING", "enum": ["pending", "in_progress", "completed"]},
                        "activeForm": {"type": "STRING", "minLength": 1},
                    },
                    "required": ["content", "status", "activeForm"],
                },
            }
        },
        "required": ["todos"],
    }


def test_refs_are_inlined_and_nullable_unions_collapse() -> None:
    cleaned = check(PYDANTIC_MODEL)
    props = cleaned["properties"]
    assert props["kind"] == {"type": "STRING", "title": "Kind", "enum": ["home", "work"], "default": "home"}
    assert props["address"]["type"] == "OBJECT"
    assert props["address"]["nullable"] is True
    assert props["address"]["properties"]["zip"] == {
        "type": "STRING", "pattern": "^[0-9]{5}$", "nullable": True, "title": "Zip", "default": None,
    }
    assert props["mode"] == {"type": "STRING", "title": "Mode", "enum": ["strict"]}
    assert props["tags"] == {"type": "ARRAY", "title": "Tags", "items": {"type": "STRING"}}
    assert props["score"]["anyOf"] == [{"type": "NUMBER"}, {"type": "INTEGER"}]
    assert cleaned["required"] == ["name", "address", "mode"]


def test_discriminated_union_becomes_any_of_of_objects() -> None:
    pet = check(DISCRIMINATED_UNION)["properties"]["pet"]
    assert [branch["properties"]["pet_type"]["enum"] for branch in pet["anyOf"]] == [["cat"], ["dog"]]
    assert "discriminator" not in pet


def test_type_arrays_split_into_nullable_or_any_of() -> None:
    props = check(MCP_SERVER_TOOL)["properties"]
    assert props["raw"] == {"type": "STRING", "nullable": True}
    assert props["id"] == {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}


def test_unsupported_formats_and_keywords_are_dropped() -> None:
    props = check(MCP_SERVER_TOOL)["properties"]
    assert props["url"] == {"type": "STRING", "description": "URL to fetch"}
    assert props["when"] == {"type": "STRING", "format": "date-time"}
    assert props["ratio"] == {"type": "NUMBER", "format": "float"}
    assert props["max_length"] == {"type": "INTEGER", "default": 5000}
    assert props["headers"] == {"type": "OBJECT"}


def test_non_string_enums_move_to_the_description() -> None:
    props = check(MCP_SERVER_TOOL)["properties"]
    assert props["level"] == {"type": "INTEGER", "description": "Allowed values: 1, 2, 3."}
    assert props["flag"] == {"type": "BOOLEAN", "nullable": True, "description": "Allowed values: true, false."}
    assert props["mixed"] == {"type": "STRING", "enum": ["a", "1"], "nullable": True}


def test_required_names_must_be_properties() -> None:
    assert check(MCP_SERVER_TOOL)["required"] == ["url"]
    cleaned = check(BOOLEAN_SUBSCHEMAS)
    assert "nothing" not in cleaned["properties"]
    assert cleaned["required"] == ["anything"]


def test_recursion_is_cut_at_the_repeat() -> None:
    root = check(RECURSIVE_TREE)["properties"]["root"]
    assert root["properties"]["name"] == {"type": "STRING"}
    assert root["properties"]["children"] == {"type": "ARRAY", "items": {"type": "OBJECT"}}
    assert root["properties"]["parent"] == {"type": "OBJECT", "nullable": True}
    mutual = check(MUTUAL_RECURSION)
    assert mutual["properties"]["start"]["properties"]["b"]["properties"]["a"] == {"type": "OBJECT"}
    assert mutual["properties"]["self"] == {"type": "OBJECT"}


def test_definitions_and_json_pointer_refs() -> None:
    cleaned = check(ZOD_TO_JSON_SCHEMA)
    assert cleaned["properties"]["alias"] == {"type": "STRING"}
    assert cleaned["properties"]["options"]["properties"]["recursive"] == {"type": "BOOLEAN"}
    assert cleaned["required"] == ["path"]


def test_all_of_merges_properties_and_required() -> None:
    props = check(ALL_OF)["properties"]
    assert props["merged"] == {
        "type": "OBJECT",
        "description": "merged object",
        "properties": {"id": {"type": "STRING"}, "extra": {"type": "INTEGER"}},
        "required": ["id", "extra"],
    }
    assert props["constrained"] == {"type": "STRING", "maxLength": 5}


def test_empty_objects_and_untyped_arrays() -> None:
    cleaned = check(EMPTY_OBJECTS)
    assert cleaned == {"type": "OBJECT", "properties": {"opts": {"type": "OBJECT"}, "map": {"type": "OBJECT"}}}
    json_value = check(JSON_VALUE)
    assert json_value["properties"]["list"] == {"type": "ARRAY", "items": {"type": "STRING"}}


def test_one_of_consts_merge_into_one_enum() -> None:
    cleaned = check({"oneOf": [{"const": "a", "description": "A"}, {"const": "b"}], "description": "pick"})
    assert cleaned == {"description": "pick", "type": "STRING", "enum": ["a", "b"]}


def test_wide_ref_fan_out_is_bounded() -> None:
    defs: dict[str, Any] = {"D0": {"type": "string"}}
    for level in range(1, 40):
        below = f"#/$defs/D{level - 1}"
        defs[f"D{level}"] = {"type": "object", "properties": {"l": {"$ref": below}, "r": {"$ref": below}}}
    cleaned = check({"$defs": defs, "$ref": "#/$defs/D39"})
    assert len(orjson.dumps(cleaned)) < 2_000_000


def test_to_json_schema_reverses_the_gemini_spelling() -> None:
    gemini = {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "nullable": True, "example": "Paris"},
            "unit": {"type": "STRING", "format": "enum", "enum": ["c", "f"]},
            "days": {"type": "ARRAY", "items": {"type": "INTEGER"}, "min_items": 1},
        },
        "required": ["city"],
        "propertyOrdering": ["city", "unit", "days"],
    }
    assert to_json_schema(gemini) == {
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"], "examples": ["Paris"]},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
        },
        "required": ["city"],
    }


# ------------------------------------------------------------------ property: anything in, valid out

_leaf_types = st.sampled_from(["string", "number", "integer", "boolean", "null", "array", "object", "STRING",
                               "weird"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
_keywords = st.sampled_from([
    "description", "title", "format", "minimum", "maximum", "exclusiveMinimum", "minLength", "pattern",
    "default", "examples", "const", "$comment", "additionalProperties", "uniqueItems", "minItems",
])


def _schemas() -> st.SearchStrategy[Any]:
    leaf = st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(_leaf_types, st.lists(_leaf_types, max_size=3)),
            "enum": st.lists(_scalars, max_size=3),
            "format": st.sampled_from(["uri", "date-time", "enum", "int64", "float"]),
            "$ref": st.sampled_from(["#/$defs/A", "#/definitions/B", "#", "#/nope", "http://x/y.json"]),
        },
    ).flatmap(lambda base: st.dictionaries(_keywords, _scalars, max_size=3).map(lambda extra: {**extra, **base}))

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        names = st.text("abcdef", min_size=1, max_size=3)
        return st.one_of(
            st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(names, children, max_size=3)},
                                  optional={"required": st.lists(names, max_size=3),
                                            "additionalProperties": st.one_of(st.booleans(), children)}),
            st.fixed_dictionaries({"type": st.just("array")}, optional={"items": children}),
            st.fixed_dictionaries({"anyOf": st.lists(children, max_size=3)}),
            st.fixed_dictionaries({"oneOf": st.lists(children, max_size=3)}),
            st.fixed_dictionaries({"allOf": st.lists(children, max_size=3)}),
            st.booleans(),
        )

    return st.recursive(leaf, extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(body=_schemas(), defs=st.dictionaries(st.sampled_from(["A", "B"]), _schemas(), max_size=2))
def test_any_schema_cleans_into_a_valid_gemini_schema(body: Any, defs: dict[str, Any]) -> None:
    schema = body if isinstance(body, dict) else {"type": "object", "properties": {"x": body}}
    schema = {**schema, "$defs": {"A": defs.get("A", {"type": "string"})}, "definitions": {"B": defs.get("B", {})}}
    check(schema)
