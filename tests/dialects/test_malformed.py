"""Malformed client requests: every field of a rich request of each dialect,
replaced by a wrong value (wrong type, null, huge number, invalid base64, bad
data URL), is either accepted or refused with a 400 in that dialect's error
shape; nothing raises anything else, and what was accepted translates into
every other dialect and serialises."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossroads import dialects, ir

PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(200, 256))).decode()
DATA_URL = f"data:image/png;base64,{PNG_B64}"
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}

# values a JSON body can hold (orjson reads integers beyond 64 bits as floats)
BAD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 1e29, 2**63, -(2**63), 18446744073709551615, 1.7e308, "", "x", "%%%",
    "data:image/png;base64", "data:image/png;base64,%%%", "data:png;base64,aGk=", "data:;base64,abc!",
    [], [None], [1, "a"], {}, {"x": None}, {"type": None}, {"type": "image"}, {"type": 7},
]

REQUESTS: dict[str, dict[str, Any]] = {
    "openai-chat": {
        "model": "m", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 100,
        "temperature": 0.5, "top_p": 0.9, "n": 1, "seed": 7, "stop": ["x"], "user": "u",
        "presence_penalty": 0.1, "frequency_penalty": 0.1, "reasoning_effort": "high", "parallel_tool_calls": True,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA, "strict": True}},
        "metadata": {"k": "v"},
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": SCHEMA}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"},
                                         {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "low"}},
                                         {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PNG_B64}",
                                                                   "filename": "a.pdf"}}]},
            {"role": "assistant", "content": None, "reasoning_content": "hmm",
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"q":"x"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "result"},
        ],
    },
    "openai-responses": {
        "model": "m", "stream": True, "instructions": "be brief", "max_output_tokens": 100, "temperature": 0.5,
        "top_p": 0.9, "user": "u", "metadata": {"k": "v"}, "parallel_tool_calls": True,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": SCHEMA, "strict": True}},
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": SCHEMA, "strict": False}],
        "tool_choice": {"type": "function", "name": "f"},
        "input": [
            {"type": "message", "role": "developer", "content": "rules"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": DATA_URL, "detail": "auto"},
                {"type": "input_file", "file_data": f"data:application/pdf;base64,{PNG_B64}", "filename": "a.pdf"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}],
             "encrypted_content": "enc"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"q":"x"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "result"},
        ],
    },
    "anthropic": {
        "model": "m", "max_tokens": 2000, "stream": True, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
        "stop_sequences": ["x"], "metadata": {"user_id": "u"}, "system": [{"type": "text", "text": "be brief"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"effort": "high"},
        "tools": [{"name": "f", "description": "d", "input_schema": SCHEMA}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": DATA_URL}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PNG_B64},
                 "title": "a"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "c2ln"},
                {"type": "tool_use", "id": "c1", "name": "f", "input": {"q": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "result",
                                          "is_error": False}]},
        ],
    },
    "gemini": {
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.5, "topP": 0.9, "topK": 5, "maxOutputTokens": 100, "seed": 3,
                             "candidateCount": 1, "stopSequences": ["x"], "responseMimeType": "application/json",
                             "responseSchema": SCHEMA, "thinkingConfig": {"thinkingBudget": 1024,
                                                                         "includeThoughts": True}},
        "tools": [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                                       {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}}]},
            {"role": "model", "parts": [{"text": "hmm", "thought": True, "thoughtSignature": "c2ln"},
                                        {"functionCall": {"name": "f", "args": {"q": "x"}, "id": "c1"}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "id": "c1", "response": {"result": "r"}}}]},
        ],
    },
}
REQUESTS["openai-completions"] = {"model": "m", "prompt": ["a"], "max_tokens": 5, "temperature": 0.5,
                                  "stop": "x", "stream": True, "stream_options": {"include_usage": True},
                                  "echo": False, "n": 1, "seed": 1, "user": "u"}
INGRESS = sorted(REQUESTS)
TARGETS = ["openai-chat", "openai-responses", "anthropic", "gemini", "openai-completions", "cloudcode"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


PATHS = {name: list(_paths(body)) for name, body in REQUESTS.items()}


def _replaced(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _error_shape(dialect: str, status: int, payload: dict[str, Any]) -> None:
    assert status == 400, (status, payload)
    if dialect == "anthropic":
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    elif dialect == "gemini":
        assert payload["error"]["status"] == "INVALID_ARGUMENT" and payload["error"]["code"] == 400
    else:
        assert payload["error"]["type"] == "invalid_request_error" and payload["error"]["message"]


def _check(dialect_name: str, body: dict[str, Any]) -> None:
    dialect = dialects.get(dialect_name)
    model = "m" if dialect_name == "gemini" else None
    try:
        request = dialect.parse_request(body, model=model)
    except ir.Error as error:
        assert error.param, f"a 400 names the field: {error}"
        _error_shape(dialect_name, *dialect.render_error(error))
        return
    for target in TARGETS:
        try:
            rendered = dialects.get(target).render_request(request)
        except ir.Error as error:
            assert error.status == 400, (target, error)
            continue
        orjson.dumps(rendered)


@pytest.mark.parametrize("dialect", INGRESS)
def test_every_field_with_every_bad_value(dialect: str) -> None:
    for path in PATHS[dialect]:
        for value in BAD_VALUES:
            _check(dialect, _replaced(REQUESTS[dialect], path, value))


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    dialect = draw(st.sampled_from(INGRESS))
    body = REQUESTS[dialect]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)  # what orjson reads as integers | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=8) | st.sampled_from(["%%%", "data:x", "data:image/png;base64,@@", PNG_B64[:7]]),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "text", "data", "x"]),
                                                                     inner, max_size=3),
        max_leaves=6)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(body))
        body = _replaced(body, draw(st.sampled_from(paths)), draw(json_values))
    return dialect, body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_random_malformed_requests_never_fault(case: tuple[str, dict[str, Any]]) -> None:
    _check(*case)


@pytest.mark.parametrize("dialect", INGRESS)
def test_the_rich_requests_are_valid(dialect: str) -> None:
    request = dialects.get(dialect).parse_request(REQUESTS[dialect], model="m" if dialect == "gemini" else None)
    assert request.messages

