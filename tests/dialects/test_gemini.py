"""Gemini generateContent dialect: requests, responses, streams and errors, both directions."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from crossroads import ir
from crossroads.assemble import Assembler, events_for
from crossroads.dialects.gemini import DIALECT, JSON_ARRAY, NAME

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 8).decode()
PDF = base64.b64encode(b"%PDF-1.7 fake").decode()
SIG = base64.b64encode(b"opaque-thought-signature").decode()
SIG2 = base64.b64encode(b"second-signature").decode()

# The wire request is not one SDK type; each top-level field is (the fake upstream checks the same way).
REQUEST_FIELDS: dict[str, Any] = {
    "contents": list[genai_types.Content],
    "systemInstruction": genai_types.Content,
    "tools": list[genai_types.Tool],
    "toolConfig": genai_types.ToolConfig,
    "generationConfig": genai_types.GenerationConfig,
    "safetySettings": list[genai_types.SafetySetting],
    "cachedContent": str,
    "labels": dict[str, str],
}


def validate_wire_request(body: dict[str, Any]) -> None:
    assert "model" not in body
    for key, value in body.items():
        assert key in REQUEST_FIELDS, f"unknown request field {key}"
        TypeAdapter(REQUEST_FIELDS[key]).validate_json(orjson.dumps(value))


def validate_wire_response(body: dict[str, Any]) -> genai_types.GenerateContentResponse:
    return genai_types.GenerateContentResponse.model_validate_json(orjson.dumps(body))


def parse(body: dict[str, Any], model: str = "gemini-2.5-pro", stream: bool = False) -> ir.Request:
    return DIALECT.parse_request(body, model=model, stream=stream)


def roundtrip(body: dict[str, Any], model: str = "gemini-3-pro-preview") -> dict[str, Any]:
    return DIALECT.render_request(parse(body, model=model))


def user(*parts: Any) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def model_turn(*parts: Any) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


# =================================================================== requests: wire -> IR


def test_basic_request_maps_roles_system_and_url_fields() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
        "contents": [user({"text": "Hi"}), model_turn({"text": "Salut"}), user({"text": "Again"})],
    }
    request = parse(body, model="gemini-2.5-flash", stream=True)
    assert request.model == "gemini-2.5-flash"
    assert request.stream is True
    assert [t.text for t in request.system] == ["Be brief.", "Answer in French."]
    assert [(m.role, m.parts) for m in request.messages] == [
        ("user", [ir.TextPart("Hi")]),
        ("assistant", [ir.TextPart("Salut")]),
        ("user", [ir.TextPart("Again")]),
    ]
    assert request.extra == {}


def test_model_may_come_from_the_body_when_the_url_has_none() -> None:
    request = DIALECT.parse_request({"model": "models/gemini-2.5-pro", "contents": []})
    assert request.model == "gemini-2.5-pro"
    assert request.stream is False
    assert "model" not in DIALECT.render_request(request)


def test_snake_case_fields_parse_like_camel_case() -> None:
    camel = {
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [
            user({"inlineData": {"mimeType": "image/png", "data": PNG}}, {"text": "what?"}),
            model_turn({"functionCall": {"id": "c1", "name": "look", "args": {"x": 1}}, "thoughtSignature": SIG}),
            user({"functionResponse": {"id": "c1", "name": "look", "response": {"result": "ok"}}}),
        ],
        "tools": [{"functionDeclarations": [{"name": "look", "parametersJsonSchema": {"type": "object"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["look"]}},
        "generationConfig": {"maxOutputTokens": 50, "topP": 0.5, "stopSequences": ["END"],
                             "thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True}},
    }
    snake = {
        "system_instruction": {"parts": [{"text": "sys"}]},
        "contents": [
            user({"inline_data": {"mime_type": "image/png", "data": PNG}}, {"text": "what?"}),
            model_turn({"function_call": {"id": "c1", "name": "look", "args": {"x": 1}}, "thought_signature": SIG}),
            user({"function_response": {"id": "c1", "name": "look", "response": {"result": "ok"}}}),
        ],
        "tools": [{"function_declarations": [{"name": "look", "parameters_json_schema": {"type": "object"}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["look"]}},
        "generation_config": {"max_output_tokens": 50, "top_p": 0.5, "stop_sequences": ["END"],
                              "thinking_config": {"thinking_budget": 128, "include_thoughts": True}},
    }
    assert parse(snake) == parse(camel)
    assert DIALECT.render_request(parse(snake)) == camel  # rendered in camelCase


def test_images_and_documents() -> None:
    request = parse({"contents": [user(
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"fileData": {"mimeType": "video/mp4", "fileUri": "https://www.youtube.com/watch?v=abc"}},
    )]})
    assert request.messages[0].parts == [
        ir.ImagePart(media_type="image/png", data=PNG),
        ir.ImagePart(media_type="image/jpeg", url="https://example.com/cat.jpg"),
        ir.DocumentPart(media_type="application/pdf", data=PDF),
        ir.DocumentPart(media_type="video/mp4", url="https://www.youtube.com/watch?v=abc"),
    ]


def test_thoughts_and_signatures() -> None:
    request = parse({"contents": [user({"text": "q"}), model_turn(
        {"text": "thinking...", "thought": True, "thoughtSignature": SIG},
        {"text": "answer", "thoughtSignature": SIG2},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SIG},
    )]})
    thought, text, call = request.messages[1].parts
    assert thought == ir.ThinkingPart(text="thinking...", signature=SIG, extra={NAME: {}})
    assert text == ir.TextPart("answer", extra={NAME: {"thoughtSignature": SIG2}})
    assert isinstance(call, ir.ToolCallPart)
    assert call.extra is not None and call.extra[NAME]["thoughtSignature"] == SIG


def test_missing_tool_ids_are_synthesised_and_matched_by_name_in_order() -> None:
    body = {"contents": [
        user({"text": "weather in Paris and Rome, then time"}),
        model_turn(
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ),
        user(
            {"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "rainy"}}},
        ),
    ]}
    request = parse(body)
    calls = request.messages[1].parts
    results = request.messages[2].parts
    assert [c.id for c in calls if isinstance(c, ir.ToolCallPart)] == [
        "call_get_weather_0", "call_get_weather_1", "call_get_time_2"]
    assert [(r.tool_call_id, r.content[0].text) for r in results
            if isinstance(r, ir.ToolResultPart) and isinstance(r.content[0], ir.TextPart)] == [
        ("call_get_time_2", "noon"), ("call_get_weather_0", "sunny"), ("call_get_weather_1", "rainy")]
    assert parse(body) == request  # stable across parses
    rendered = DIALECT.render_request(request)
    assert rendered == body  # synthesised ids are not sent back


def test_tool_ids_with_unsafe_characters_are_sanitised() -> None:
    request = parse({"contents": [user({"text": "x"}), model_turn({"functionCall": {"name": "mcp.fs:read", "args": {}}})]})
    call = request.messages[1].parts[0]
    assert isinstance(call, ir.ToolCallPart)
    assert call.id == "call_mcp_fs_read_0"
    assert call.name == "mcp.fs:read"


def test_function_response_payload_shapes() -> None:
    body = {"contents": [
        user({"text": "go"}),
        model_turn(*({"functionCall": {"id": f"c{i}", "name": "t", "args": {}}} for i in range(4))),
        user(
            {"functionResponse": {"id": "c0", "name": "t", "response": {"result": "plain"}}},
            {"functionResponse": {"id": "c1", "name": "t", "response": {"error": "boom"}}},
            {"functionResponse": {"id": "c2", "name": "t", "response": {"output": "from gemini cli"}}},
            {"functionResponse": {"id": "c3", "name": "t", "response": {"temp": 21, "unit": "C"}}},
        ),
    ]}
    results = parse(body).messages[2].parts
    assert all(isinstance(r, ir.ToolResultPart) and r.name == "t" for r in results)
    summary = [(r.is_error, r.content[0].text) for r in results
               if isinstance(r, ir.ToolResultPart) and isinstance(r.content[0], ir.TextPart)]
    assert summary == [(False, "plain"), (True, "boom"), (False, "from gemini cli"),
                       (False, '{"temp":21,"unit":"C"}')]
    assert roundtrip(body) == body


def test_multimodal_function_response_parts() -> None:
    body = {"contents": [
        user({"text": "screenshot"}),
        model_turn({"functionCall": {"id": "s1", "name": "shot", "args": {}}}),
        user({"functionResponse": {"id": "s1", "name": "shot", "response": {"result": "here"},
                                   "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}]}}),
    ]}
    result = parse(body).messages[2].parts[0]
    assert isinstance(result, ir.ToolResultPart)
    assert result.content == [ir.TextPart("here"), ir.ImagePart(media_type="image/png", data=PNG)]
    assert roundtrip(body, model="gemini-3-pro-preview") == body


def test_code_execution_parts_are_readable_and_round_trip() -> None:
    code = {"executableCode": {"language": "PYTHON", "code": "print(1+1)"}}
    result = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "2\n"}}
    body = {"contents": [user({"text": "compute"}), model_turn(code, result, {"text": "It is 2."})]}
    parts = parse(body).messages[1].parts
    assert [p.text for p in parts if isinstance(p, ir.TextPart)] == ["```python\nprint(1+1)\n```", "2\n", "It is 2."]
    assert roundtrip(body) == body


def test_tools_function_declarations_and_provider_tools() -> None:
    body = {
        "contents": [user({"text": "x"})],
        "tools": [
            {"functionDeclarations": [
                {"name": "weather", "description": "Get weather",
                 "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "nullable": True}},
                                "required": ["city"]}},
                {"name": "read", "parametersJsonSchema": {"type": "object", "additionalProperties": False,
                                                          "properties": {"path": {"type": "string"}}}},
                {"name": "ping"},
            ]},
            {"googleSearch": {}},
            {"codeExecution": {}},
            {"url_context": {}},
        ],
    }
    tools = parse(body).tools
    assert tools[0] == ir.Tool(name="weather", description="Get weather", parameters={
        "type": "object", "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"]})
    assert tools[1].parameters == {"type": "object", "additionalProperties": False,
                                   "properties": {"path": {"type": "string"}}}
    assert tools[2] == ir.Tool(name="ping")
    assert [(t.kind, t.raw) for t in tools[3:]] == [
        ("gemini:googleSearch", {"googleSearch": {}}), ("gemini:codeExecution", {"codeExecution": {}}),
        ("gemini:urlContext", {"urlContext": {}})]
    rendered = roundtrip(body)
    expected = dict(body)
    expected["tools"] = [*body["tools"][:3], {"urlContext": {}}]
    assert rendered == expected


@pytest.mark.parametrize(("config", "choice"), [
    ({"mode": "AUTO"}, ir.ToolChoice("auto")),
    ({"mode": "VALIDATED"}, ir.ToolChoice("auto")),
    ({"mode": "NONE"}, ir.ToolChoice("none")),
    ({"mode": "ANY"}, ir.ToolChoice("required")),
    ({"mode": "ANY", "allowedFunctionNames": ["a"]}, ir.ToolChoice("tool", "a")),
    ({"mode": "ANY", "allowedFunctionNames": ["a", "b"]}, ir.ToolChoice("required")),
])
def test_function_calling_config_modes(config: dict[str, Any], choice: ir.ToolChoice) -> None:
    body = {"contents": [user({"text": "x"})],
            "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}],
            "toolConfig": {"functionCallingConfig": config}}
    assert parse(body).tool_choice == choice
    assert roundtrip(body) == body


def test_generation_config_fields() -> None:
    body = {"contents": [user({"text": "x"})], "generationConfig": {
        "temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 1000, "stopSequences": ["STOP!"],
        "candidateCount": 2, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": -0.2,
        "responseModalities": ["TEXT"],
    }}
    request = parse(body)
    assert (request.temperature, request.top_p, request.top_k, request.max_tokens, request.stop, request.n,
            request.seed, request.presence_penalty, request.frequency_penalty) == (
        0.3, 0.9, 40, 1000, ["STOP!"], 2, 7, 0.1, -0.2)
    assert request.extra[NAME]["generationConfig"] == {"responseModalities": ["TEXT"]}
    assert roundtrip(body) == body


@pytest.mark.parametrize(("config", "expected"), [
    ({"responseMimeType": "application/json"}, ir.ResponseFormat("json_object")),
    ({"responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "const": 1}},
     ir.ResponseFormat("json_schema", schema={"type": "object", "const": 1})),
    ({"responseMimeType": "application/json",
      "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}},
     ir.ResponseFormat("json_schema", schema={"type": "object", "properties": {"a": {"type": "integer"}}})),
    ({"responseMimeType": "text/plain"}, ir.ResponseFormat("text")),
    ({"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["a", "b"]}}, None),
])
def test_structured_output(config: dict[str, Any], expected: ir.ResponseFormat | None) -> None:
    body = {"contents": [user({"text": "x"})], "generationConfig": config}
    assert parse(body).response_format == expected
    assert roundtrip(body) == body


@pytest.mark.parametrize(("thinking", "expected"), [
    ({"thinkingBudget": 1024, "includeThoughts": True}, ir.Reasoning(budget=1024, include_thoughts=True)),
    ({"thinkingBudget": -1}, ir.Reasoning(budget=-1)),
    ({"thinkingBudget": 0}, ir.Reasoning(budget=0)),
    ({"thinkingLevel": "LOW"}, ir.Reasoning(effort="low")),
    ({"thinkingLevel": "high", "includeThoughts": False}, ir.Reasoning(effort="high", include_thoughts=False)),
    ({"includeThoughts": True}, ir.Reasoning(include_thoughts=True)),
])
def test_thinking_config_parses(thinking: dict[str, Any], expected: ir.Reasoning) -> None:
    body = {"contents": [user({"text": "x"})], "generationConfig": {"thinkingConfig": thinking}}
    assert parse(body).reasoning == expected


def test_unknown_fields_are_kept_and_merged_back() -> None:
    body = {
        "contents": [user({"text": "x"})],
        "systemInstruction": {"role": "user", "parts": [{"text": "sys"}]},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "cachedContent": "cachedContents/abc123",
        "labels": {"team": "x"},
        "toolConfig": {"retrievalConfig": {"latLng": {"latitude": 1.5, "longitude": 2.5}}},
        "futureField": {"nested": [1, 2]},
    }
    request = parse({**body, "future_snake_field": 1})
    assert request.extra[NAME].pop("futureSnakeField") == 1
    assert set(request.extra[NAME]) == {"systemInstruction", "safetySettings", "cachedContent", "labels",
                                        "toolConfig", "futureField"}
    assert DIALECT.render_request(request) == body


@pytest.mark.parametrize(("body", "param"), [
    ([], "body"),
    ({}, "contents"),
    ({"contents": {"role": "user"}}, "contents"),
    ({"contents": ["hi"]}, "contents[0]"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [{"role": "user", "parts": {"text": "x"}}]}, "contents[0].parts"),
    ({"contents": [user({"text": 5})]}, "contents[0].parts[0].text"),
    ({"contents": [user("hi")]}, "contents[0].parts[0]"),
    ({"contents": [model_turn({"functionCall": {"args": {}}})]}, "contents[0].parts[0].functionCall.name"),
    ({"contents": [model_turn({"functionCall": {"name": "f", "args": [1]}})]},
     "contents[0].parts[0].functionCall.args"),
    ({"contents": [user({"functionResponse": {"response": {}}})]}, "contents[0].parts[0].functionResponse.name"),
    ({"contents": [user({"functionResponse": {"name": "f", "response": "text"}})]},
     "contents[0].parts[0].functionResponse.response"),
    ({"contents": [user({"inlineData": {"mimeType": "image/png"}})]}, "contents[0].parts[0].inlineData.data"),
    ({"contents": [user({"fileData": {"mimeType": "image/png"}})]}, "contents[0].parts[0].fileData.fileUri"),
    ({"contents": [], "tools": {"functionDeclarations": []}}, "tools"),
    ({"contents": [], "tools": [{"functionDeclarations": [{"description": "x"}]}]},
     "tools[0].functionDeclarations[0].name"),
    ({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "toolConfig.functionCallingConfig.mode"),
    ({"contents": [], "generationConfig": {"temperature": "hot"}}, "generationConfig.temperature"),
    ({"contents": [], "generationConfig": {"maxOutputTokens": 1.5}}, "generationConfig.maxOutputTokens"),
    ({"contents": [], "generationConfig": {"stopSequences": "END"}}, "generationConfig.stopSequences"),
    ({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingLevel": "ULTRA"}}},
     "generationConfig.thinkingConfig.thinkingLevel"),
    ({"contents": [], "generationConfig": {"thinkingConfig": {"includeThoughts": "yes"}}},
     "generationConfig.thinkingConfig.includeThoughts"),
])
def test_bad_requests_raise_400(body: Any, param: str) -> None:
    with pytest.raises(ir.Error) as caught:
        parse(body)
    assert caught.value.status == 400
    assert caught.value.kind == "invalid_request"
    assert caught.value.param == param


def test_missing_model_is_a_bad_request() -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_request({"contents": []})
    assert caught.value.param == "model"


# =================================================================== requests: IR -> wire


def openai_style_request(model: str = "gemini-2.5-pro", **fields: Any) -> ir.Request:
    """What another dialect's parser hands over: no Gemini extras, OpenAI-style ids."""
    return ir.Request(
        model=model,
        system=[ir.TextPart("You are terse.")],
        messages=[
            ir.Message("user", [ir.TextPart("Weather in Paris?"),
                                ir.ImagePart(media_type="image/png", data=PNG)]),
            ir.Message("assistant", [
                ir.ThinkingPart(text="need the tool", signature=SIG),
                ir.ToolCallPart(id="call_abc", name="get_weather", arguments='{"city":"Paris"}'),
                ir.ToolCallPart(id="call_def", name="get_time", arguments=""),
            ]),
            ir.Message("user", [ir.ToolResultPart(tool_call_id="call_abc", content=[ir.TextPart("18C")])]),
            ir.Message("user", [ir.ToolResultPart(tool_call_id="call_def", content=[ir.TextPart("no clock")],
                                                  is_error=True)]),
            ir.Message("system", [ir.TextPart("Reminder: be terse.")]),
            ir.Message("user", [ir.TextPart("Thanks")]),
        ],
        **fields,
    )


def test_render_cross_dialect_conversation() -> None:
    body = DIALECT.render_request(openai_style_request())
    validate_wire_request(body)
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]},
        {"role": "model", "parts": [
            {"text": "need the tool", "thought": True},  # another provider's signature is not sent
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_abc"}},
            {"functionCall": {"name": "get_time", "args": {}, "id": "call_def"}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "18C"}, "id": "call_abc"}},
            {"functionResponse": {"name": "get_time", "response": {"error": "no clock"}, "id": "call_def"}},
            {"text": "Reminder: be terse."},
            {"text": "Thanks"},
        ]},
    ]


def test_gemini_3_calls_from_other_dialects_get_the_signature_sentinel() -> None:
    request = openai_style_request(model="gemini-3-pro-preview")
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    calls = [p for p in body["contents"][1]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in calls[1]  # only the first call of a step is checked
    assert "thoughtSignature" not in DIALECT.render_request(openai_style_request())["contents"][1]["parts"][1]
    # a real signature is kept, and a Gemini client's own history is left alone
    signed = ir.ToolCallPart(id="c", name="f", arguments="{}", extra={NAME: {"thoughtSignature": SIG}})
    request.messages[1].parts[1:3] = [signed]
    request.messages[2].parts[0] = ir.ToolResultPart(tool_call_id="c", content=[ir.TextPart("r")])
    request.messages[3].parts = []
    assert DIALECT.render_request(request)["contents"][1]["parts"][1]["thoughtSignature"] == SIG
    own = {"contents": [user({"text": "q"}), model_turn({"functionCall": {"name": "f", "args": {}}}),
                        user({"functionResponse": {"name": "f", "response": {"result": "r"}}})]}
    assert roundtrip(own, model="gemini-3-pro-preview") == own


def test_leading_system_messages_join_the_system_instruction() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[
        ir.Message("system", [ir.TextPart("first")]), ir.Message("user", [ir.TextPart("hi")])])
    body = DIALECT.render_request(request)
    assert body == {"systemInstruction": {"parts": [{"text": "first"}]},
                    "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_tool_result_without_a_known_name_is_a_bad_request() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[
        ir.Message("user", [ir.ToolResultPart(tool_call_id="nowhere", content=[ir.TextPart("x")])])])
    with pytest.raises(ir.Error) as caught:
        DIALECT.render_request(request)
    assert caught.value.status == 400
    named = ir.Request(model="gemini-2.5-pro", messages=[
        ir.Message("user", [ir.ToolResultPart(tool_call_id="t1", name="f", content=[ir.TextPart("x")])])])
    assert DIALECT.render_request(named)["contents"][0]["parts"][0]["functionResponse"]["name"] == "f"


@pytest.mark.parametrize(("model", "expected_parts"), [
    ("gemini-3-pro-preview", [{"functionResponse": {
        "name": "shot", "id": "t1", "response": {"result": "done"},
        "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}]}}]),
    ("gemini-2.5-flash", [
        {"functionResponse": {"name": "shot", "id": "t1", "response": {"result": "done"}}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}}]),
])
def test_images_in_tool_results(model: str, expected_parts: list[dict[str, Any]]) -> None:
    request = ir.Request(model=model, messages=[
        ir.Message("assistant", [ir.ToolCallPart(id="t1", name="shot", arguments="{}")]),
        ir.Message("user", [ir.ToolResultPart(tool_call_id="t1", content=[
            ir.TextPart("done"), ir.ImagePart(media_type="image/png", data=PNG)])]),
    ])
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["contents"][1]["parts"] == expected_parts


def test_media_rendering_variants() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[ir.Message("user", [
        ir.ImagePart(url="https://example.com/a/photo.png"),
        ir.ImagePart(url="https://example.com/image"),
        ir.ImagePart(url=f"data:image/jpeg;base64,{JPEG}"),
        ir.ImagePart(data=JPEG),
        ir.DocumentPart(data=PDF, filename="report.pdf"),
        ir.DocumentPart(url="gs://bucket/report.pdf", media_type="application/pdf"),
    ])])
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/photo.png"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/image"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": JPEG}},
        {"inlineData": {"mimeType": "image/jpeg", "data": JPEG}},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
    ]


def test_unusable_parts_are_dropped_not_sent() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[
        ir.Message("user", [ir.TextPart("q")]),
        ir.Message("assistant", [
            ir.ThinkingPart(redacted="opaque-anthropic-data"),
            ir.ThinkingPart(encrypted="opaque-openai-data"),
            ir.TextPart(""),
            ir.TextPart("a"),
            ir.ToolCallPart(id="c", name="f", arguments="{not json"),
        ]),
    ])
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["contents"][1]["parts"] == [
        {"text": "a"}, {"functionCall": {"name": "f", "args": {"arguments": "{not json"}, "id": "c"}}]


def test_cross_dialect_tools_are_cleaned_and_foreign_provider_tools_dropped() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[ir.Message("user", [ir.TextPart("x")])], tools=[
        ir.Tool(name="Bash", description="Run a command", parameters={
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
            "properties": {"command": {"type": "string"}, "timeout": {"type": ["number", "null"]}},
            "required": ["command"]}),
        ir.Tool(name="noargs", parameters={"type": "object", "properties": {}}),
        ir.Tool(name="union", parameters={"anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}},
            {"type": "object", "properties": {"b": {"type": "string"}}}]}),
        ir.Tool(name="web_search", kind="anthropic:web_search_20250305", raw={"type": "web_search_20250305"}),
    ], tool_choice=ir.ToolChoice("tool", "Bash"))
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "Bash", "description": "Run a command", "parameters": {
            "type": "OBJECT", "properties": {"command": {"type": "STRING"}, "timeout": {"type": "NUMBER", "nullable": True}},
            "required": ["command"]}},
        {"name": "noargs"},
        {"name": "union", "parametersJsonSchema": request.tools[2].parameters},
    ]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["Bash"]}}


def test_tool_choice_without_function_tools_is_not_sent() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[ir.Message("user", [ir.TextPart("x")])],
                         tool_choice=ir.ToolChoice("required"))
    assert "toolConfig" not in DIALECT.render_request(request)


@pytest.mark.parametrize(("fmt", "expected"), [
    (ir.ResponseFormat("json_object"), {"responseMimeType": "application/json"}),
    (ir.ResponseFormat("json_schema", name="person", strict=True, schema={
        "type": "object", "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
        "required": ["name", "age"]}),
     {"responseMimeType": "application/json", "responseSchema": {
         "type": "OBJECT", "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER", "nullable": True}},
         "required": ["name", "age"]}}),
    (ir.ResponseFormat("text"), {"responseMimeType": "text/plain"}),
])
def test_render_response_format(fmt: ir.ResponseFormat, expected: dict[str, Any]) -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[ir.Message("user", [ir.TextPart("x")])],
                         response_format=fmt)
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["generationConfig"] == expected


@pytest.mark.parametrize(("model", "setting", "expected"), [
    ("gemini-3-pro-preview", ir.Reasoning(effort="high"), {"thinkingLevel": "HIGH", "includeThoughts": True}),
    ("gemini-3-flash", ir.Reasoning(effort="xhigh"), {"thinkingLevel": "HIGH", "includeThoughts": True}),
    ("gemini-3-flash", ir.Reasoning(effort="minimal"), {"thinkingLevel": "MINIMAL", "includeThoughts": True}),
    ("gemini-2.5-pro", ir.Reasoning(effort="high"), {"thinkingBudget": 24576, "includeThoughts": True}),
    ("gemini-2.5-pro", ir.Reasoning(effort="low", include_thoughts=False),
     {"thinkingBudget": 1024, "includeThoughts": False}),
    ("gemini-2.5-flash", ir.Reasoning(effort="none"), {"thinkingBudget": 0}),
    ("gemini-3-pro-preview", ir.Reasoning(effort="auto"), {"thinkingBudget": -1, "includeThoughts": True}),
    ("gemini-3-pro-preview", ir.Reasoning(budget=5000), {"thinkingBudget": 5000, "includeThoughts": True}),
    ("gemini-2.5-flash", ir.Reasoning(budget=0), {"thinkingBudget": 0}),
    ("gemini-2.5-pro", ir.Reasoning(adaptive=True), {"thinkingBudget": -1, "includeThoughts": True}),
    ("models/gemini-3-pro", ir.Reasoning(effort="medium"), {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
])
def test_render_reasoning(model: str, setting: ir.Reasoning, expected: dict[str, Any]) -> None:
    request = ir.Request(model=model, messages=[ir.Message("user", [ir.TextPart("x")])], reasoning=setting)
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["generationConfig"]["thinkingConfig"] == expected


def test_render_sampling_fields() -> None:
    request = ir.Request(model="gemini-2.5-pro", messages=[ir.Message("user", [ir.TextPart("x")])],
                         max_tokens=256, temperature=0.5, top_p=0.8, top_k=20, stop=["a", "b"], seed=3,
                         presence_penalty=0.5, frequency_penalty=0.25, n=1, user="u1", metadata={"k": "v"},
                         parallel_tool_calls=False)
    body = DIALECT.render_request(request)
    validate_wire_request(body)
    assert body["generationConfig"] == {"temperature": 0.5, "topP": 0.8, "topK": 20, "maxOutputTokens": 256,
                                        "candidateCount": 1, "seed": 3, "presencePenalty": 0.5,
                                        "frequencyPenalty": 0.25, "stopSequences": ["a", "b"]}


# =================================================================== request round trip (property)

b64 = st.binary(min_size=1, max_size=12).map(lambda raw: base64.b64encode(raw).decode())
texts = st.text(min_size=1, max_size=12)
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=6),
                        st.floats(allow_nan=False, allow_infinity=False, width=32))
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=5)
args_objects = st.dictionaries(st.text(min_size=1, max_size=5), json_values, max_size=3)

user_media = st.one_of(
    b64.map(lambda d: {"inlineData": {"mimeType": "image/png", "data": d}}),
    b64.map(lambda d: {"inlineData": {"mimeType": "application/pdf", "data": d}}),
    st.sampled_from([
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/x.jpg"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}},
        {"fileData": {"mimeType": "video/mp4", "fileUri": "https://www.youtube.com/watch?v=1"}},
    ]),
)
user_parts = st.one_of(texts.map(lambda t: {"text": t}), user_media)
response_payloads = st.one_of(
    texts.map(lambda t: {"result": t}), texts.map(lambda t: {"error": t}), texts.map(lambda t: {"output": t}),
    st.dictionaries(st.text(min_size=1, max_size=5), json_values, max_size=3),
)


def with_signature(part: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    return {**part, "thoughtSignature": draw(b64)} if draw(st.booleans()) else part


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    pending: list[tuple[str, str | None]] = []
    call_number = 0
    for _ in range(draw(st.integers(1, 3))):
        parts: list[dict[str, Any]] = []
        for name, call_id in pending:
            response: dict[str, Any] = {"name": name, "response": draw(response_payloads)}
            if call_id is not None:
                response["id"] = call_id
            if draw(st.integers(0, 4)) == 0:
                response["parts"] = [{"inlineData": {"mimeType": "image/png", "data": draw(b64)}}]
            parts.append({"functionResponse": response})
        parts += draw(st.lists(user_parts, min_size=0 if pending else 1, max_size=3))
        contents.append({"role": "user", "parts": parts})
        pending = []
        model_parts: list[dict[str, Any]] = []
        if draw(st.booleans()):
            model_parts.append(with_signature({"text": draw(texts), "thought": True}, draw))
        if draw(st.booleans()):
            model_parts.append(with_signature({"text": draw(texts)}, draw))
        if draw(st.integers(0, 5)) == 0:
            model_parts.append({"executableCode": {"language": "PYTHON", "code": draw(texts)}})
            model_parts.append({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": draw(texts)}})
        for _ in range(draw(st.integers(0, 2))):
            name = draw(st.sampled_from(["get_weather", "read_file", "mcp.search"]))
            call: dict[str, Any] = {"name": name, "args": draw(args_objects)}
            call_id = f"id-{call_number}" if draw(st.booleans()) else None
            call_number += 1
            if call_id is not None:
                call["id"] = call_id
            model_parts.append(with_signature({"functionCall": call}, draw))
            pending.append((name, call_id))
        if not model_parts:
            model_parts.append({"text": draw(texts)})
        contents.append({"role": "model", "parts": model_parts})
    if pending or draw(st.booleans()):
        contents.append({"role": "user", "parts": [
            {"functionResponse": {"name": name, "response": {"result": "r"}, **({"id": i} if i else {})}}
            for name, i in pending] or [{"text": "next"}]})
    return contents


openapi_params = st.dictionaries(names, st.sampled_from([
    {"type": "STRING", "description": "a string"}, {"type": "INTEGER"}, {"type": "BOOLEAN", "nullable": True},
    {"type": "ARRAY", "items": {"type": "NUMBER"}}, {"type": "STRING", "format": "enum", "enum": ["x", "y"]},
]), min_size=1, max_size=3).map(lambda props: {"type": "OBJECT", "properties": props, "required": sorted(props)[:1]})
json_schema_params = st.dictionaries(names, st.sampled_from([
    {"type": "string"}, {"type": ["integer", "null"]}, {"const": "fixed"}, {"$ref": "#/$defs/T"},
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
]), max_size=3).map(lambda props: {"type": "object", "properties": props, "additionalProperties": False,
                                   "$defs": {"T": {"type": "string"}}})


@st.composite
def tool_sections(draw: st.DrawFn) -> dict[str, Any]:
    section: dict[str, Any] = {}
    tools: list[dict[str, Any]] = []
    function_names = draw(st.lists(names, min_size=0, max_size=3, unique=True))
    declarations = []
    for name in function_names:
        declaration: dict[str, Any] = {"name": name}
        if draw(st.booleans()):
            declaration["description"] = draw(texts)
        schema_kind = draw(st.sampled_from(["none", "openapi", "json"]))
        if schema_kind == "openapi":
            declaration["parameters"] = draw(openapi_params)
        elif schema_kind == "json":
            declaration["parametersJsonSchema"] = draw(json_schema_params)
        declarations.append(declaration)
    if declarations:
        tools.append({"functionDeclarations": declarations})
    tools += draw(st.lists(st.sampled_from([{"googleSearch": {}}, {"codeExecution": {}}, {"urlContext": {}}]),
                           max_size=2, unique_by=lambda t: next(iter(t))))
    if tools:
        section["tools"] = tools
    if declarations and draw(st.booleans()):
        mode = draw(st.sampled_from(["AUTO", "ANY", "NONE", "VALIDATED"]))
        calling: dict[str, Any] = {"mode": mode}
        if mode == "ANY" and draw(st.booleans()):
            calling["allowedFunctionNames"] = draw(st.lists(st.sampled_from(function_names), min_size=1,
                                                            max_size=2, unique=True))
        section["toolConfig"] = {"functionCallingConfig": calling}
    return section


response_formats = st.one_of(
    st.just({"responseMimeType": "application/json"}),
    st.just({"responseMimeType": "text/plain"}),
    openapi_params.map(lambda s: {"responseMimeType": "application/json", "responseSchema": s}),
    json_schema_params.map(lambda s: {"responseMimeType": "application/json", "responseJsonSchema": s}),
    st.just({"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["a", "b"]}}),
)
thinking_configs = st.one_of(
    st.fixed_dictionaries({"thinkingBudget": st.sampled_from([-1, 128, 1024, 24576]),
                           "includeThoughts": st.booleans()}),
    st.just({"thinkingBudget": 0}),
    st.fixed_dictionaries({"thinkingLevel": st.sampled_from(["MINIMAL", "LOW", "MEDIUM", "HIGH"]),
                           "includeThoughts": st.booleans()}),
    st.just({"includeThoughts": True}),
)
generation_configs = st.fixed_dictionaries({}, optional={
    "temperature": st.floats(0, 2), "topP": st.floats(0, 1), "topK": st.integers(1, 100),
    "maxOutputTokens": st.integers(1, 65536), "stopSequences": st.lists(texts, min_size=1, max_size=3),
    "candidateCount": st.integers(1, 4), "seed": st.integers(0, 2**31 - 1),
    "presencePenalty": st.floats(-2, 2), "frequencyPenalty": st.floats(-2, 2),
    "thinkingConfig": thinking_configs, "responseModalities": st.just(["TEXT"]),
    "responseLogprobs": st.booleans(),
})
generation_configs = st.tuples(generation_configs, st.none() | response_formats).map(
    lambda pair: {**pair[0], **(pair[1] or {})})


@st.composite
def gemini_requests(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    body: dict[str, Any] = {"contents": draw(conversations())}
    if draw(st.booleans()):
        system: dict[str, Any] = {"parts": [{"text": t} for t in draw(st.lists(texts, min_size=1, max_size=2))]}
        if draw(st.booleans()):
            system["role"] = "user"
        body["systemInstruction"] = system
    body.update(draw(tool_sections()))
    config = draw(generation_configs)
    if config:
        body["generationConfig"] = config
    if draw(st.booleans()):
        body["safetySettings"] = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}]
    if draw(st.booleans()):
        body["cachedContent"] = "cachedContents/xyz"
    unknown = draw(st.booleans())
    if unknown:
        body["futureTopLevelField"] = {"keep": draw(json_values)}
    return body, unknown


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=gemini_requests())
def test_request_round_trip(case: tuple[dict[str, Any], bool]) -> None:
    body, has_unknown = case
    if not has_unknown:
        validate_wire_request(body)  # the generator itself speaks valid Gemini
    snapshot = orjson.dumps(body)
    assert roundtrip(body, model="gemini-3-pro-preview") == body
    assert orjson.dumps(body) == snapshot  # parsing does not mutate the client's body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=gemini_requests())
def test_rendered_requests_validate_against_the_sdk_for_any_model(case: tuple[dict[str, Any], bool]) -> None:
    body, _ = case
    body.pop("futureTopLevelField", None)
    request = parse(body, model="gemini-2.5-flash")
    request.extra.pop(NAME, None)  # as if it came from another dialect
    validate_wire_request(DIALECT.render_request(request))


# =================================================================== responses

FULL_RESPONSE = {
    "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "Let me check.", "thought": True, "thoughtSignature": SIG},
            {"text": "Checking the weather."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG2},
        ]},
        "finishReason": "STOP",
        "index": 0,
        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}],
    }],
    "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                      "cachedContentTokenCount": 60, "totalTokenCount": 150,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 100}]},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "resp-123",
}


def test_parse_response() -> None:
    validate_wire_response(FULL_RESPONSE)
    response = DIALECT.parse_response(FULL_RESPONSE)
    assert response.id == "resp-123"
    assert response.model == "gemini-2.5-flash"
    assert response.stop_reason == "tool_use"
    assert response.usage == ir.Usage(input_tokens=100, output_tokens=50, cache_read_tokens=60, reasoning_tokens=30)
    thought, text, call = response.parts
    assert thought == ir.ThinkingPart(text="Let me check.", signature=SIG)
    assert text == ir.TextPart("Checking the weather.")
    assert isinstance(call, ir.ToolCallPart)
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.id.startswith("call_get_weather_")
    assert call.extra == {NAME: {"thoughtSignature": SIG2, "_synthetic_id": True}}
    assert DIALECT.render_response(response) == FULL_RESPONSE


def test_response_tool_ids_do_not_repeat_across_responses() -> None:
    first = DIALECT.parse_response(FULL_RESPONSE).parts[2]
    second = DIALECT.parse_response(FULL_RESPONSE).parts[2]
    assert isinstance(first, ir.ToolCallPart) and isinstance(second, ir.ToolCallPart)
    assert first.id != second.id


@pytest.mark.parametrize(("finish", "stop"), [
    ("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"),
    ("SPII", "content_filter"), ("LANGUAGE", "content_filter"), ("MALFORMED_FUNCTION_CALL", "error"),
    ("OTHER", "end_turn"), ("FINISH_REASON_UNSPECIFIED", None),
])
def test_finish_reasons(finish: str, stop: str | None) -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": finish}],
            "modelVersion": "m", "responseId": "r"}
    response = DIALECT.parse_response(body)
    assert response.stop_reason == stop
    if stop is not None:
        assert DIALECT.render_response(response) == body


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "STOP"), ("tool_use", "STOP"), ("stop_sequence", "STOP"), ("max_tokens", "MAX_TOKENS"),
    ("content_filter", "SAFETY"), ("refusal", "SAFETY"), ("pause_turn", "STOP"), ("error", "OTHER"),
])
def test_render_stop_reasons(stop: ir.StopReason, finish: str) -> None:
    body = DIALECT.render_response(ir.Response(id="r", model="m", parts=[ir.TextPart("x")], stop_reason=stop))
    validate_wire_response(body)
    assert body["candidates"][0]["finishReason"] == finish


def test_blocked_prompt_is_a_content_filter_stop() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "m", "responseId": "r"}
    validate_wire_response(body)
    response = DIALECT.parse_response(body)
    assert response.stop_reason == "content_filter"
    assert response.parts == []
    assert response.usage == ir.Usage(input_tokens=9)
    assert DIALECT.render_response(response) == body


def test_render_response_from_another_dialect() -> None:
    response = ir.Response(
        id="msg_01", model="claude-sonnet-4-5",
        parts=[ir.ThinkingPart(text="hmm", signature="EqQBCkYIBxgCKkA="), ir.ThinkingPart(redacted="xx"),
               ir.ThinkingPart(text="more", signature="not base64!"),
               ir.TextPart("Sure."), ir.ToolCallPart(id="toolu_1", name="Read", arguments='{"path": "a.py"}')],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=50,
                       reasoning_tokens=120),
    )
    body = DIALECT.render_response(response)
    sdk = validate_wire_response(body)
    assert sdk.text == "Sure."
    assert sdk.function_calls is not None and sdk.function_calls[0].id == "toolu_1"
    assert sdk.function_calls[0].args == {"path": "a.py"}
    assert body["usageMetadata"] == {"promptTokenCount": 1200, "candidatesTokenCount": 180,
                                     "thoughtsTokenCount": 120, "cachedContentTokenCount": 1000,
                                     "totalTokenCount": 1500}
    assert body["candidates"][0]["content"]["parts"][:2] == [
        {"text": "hmm", "thought": True, "thoughtSignature": "EqQBCkYIBxgCKkA="},
        {"text": "more", "thought": True},  # a signature Gemini could not decode is left out
    ]
    assert len(body["candidates"][0]["content"]["parts"]) == 4


def test_usage_fields_absent_on_the_wire_stay_none() -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
            "modelVersion": "m", "responseId": "r"}
    usage = DIALECT.parse_response(body).usage
    assert usage == ir.Usage(input_tokens=5, output_tokens=2)
    assert DIALECT.render_response(ir.Response(id="r", model="m", usage=ir.Usage(output_tokens=3)))[
        "usageMetadata"] == {"candidatesTokenCount": 3, "totalTokenCount": 3}


def test_error_body_in_a_200_response_raises() -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_response({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    assert caught.value.kind == "rate_limit"


def test_malformed_upstream_response_is_a_502() -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_response({"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]})
    assert caught.value.status == 502


response_parts = st.one_of(
    st.builds(lambda t, s: {"text": t, "thought": True, **({"thoughtSignature": s} if s else {})},
              texts, st.none() | b64),
    st.builds(lambda t, s: {"text": t, **({"thoughtSignature": s} if s else {})}, texts, st.none() | b64),
    st.builds(lambda n, a, i, s: {"functionCall": {"name": n, "args": a, **({"id": i} if i else {})},
                                  **({"thoughtSignature": s} if s else {})},
              names, args_objects, st.none() | st.just("fc-1"), st.none() | b64),
    st.just({"executableCode": {"language": "PYTHON", "code": "print(2)"}}),
)


@st.composite
def gemini_responses(draw: st.DrawFn) -> dict[str, Any]:
    prompt = draw(st.integers(0, 10**6))
    candidates_tokens = draw(st.integers(0, 10**5))
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates_tokens}
    total = prompt + candidates_tokens
    if draw(st.booleans()):
        usage["thoughtsTokenCount"] = thoughts = draw(st.integers(0, 10**5))
        total += thoughts
    if draw(st.booleans()):
        usage["cachedContentTokenCount"] = draw(st.integers(0, prompt))
    if draw(st.booleans()):
        usage["toolUsePromptTokenCount"] = tool_use = draw(st.integers(0, 1000))
        total += tool_use
    usage["totalTokenCount"] = total
    body: dict[str, Any] = {"usageMetadata": usage, "modelVersion": "gemini-2.5-flash",
                            "responseId": draw(st.from_regex(r"[A-Za-z0-9_-]{4,12}", fullmatch=True))}
    shape = draw(st.sampled_from(["normal", "normal", "normal", "no_content", "blocked"]))
    if shape == "blocked":
        body["promptFeedback"] = {"blockReason": "SAFETY"}
        return body
    candidate: dict[str, Any] = {"finishReason": draw(st.sampled_from(
        ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "MALFORMED_FUNCTION_CALL"]))}
    if shape == "normal":
        candidate["content"] = {"role": "model", "parts": draw(st.lists(response_parts, min_size=1, max_size=4))}
    if draw(st.booleans()):
        candidate["index"] = 0
    if draw(st.booleans()):
        candidate["safetyRatings"] = [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "LOW"}]
    body["candidates"] = [candidate]
    return body


@settings(max_examples=250, deadline=None)
@given(body=gemini_responses())
def test_response_round_trip(body: dict[str, Any]) -> None:
    validate_wire_response(body)
    assert DIALECT.render_response(DIALECT.parse_response(body)) == body


# =================================================================== streams


def sse_chunks(*chunks: dict[str, Any]) -> list[str]:
    return [orjson.dumps(chunk).decode() for chunk in chunks]


def chunk(*parts: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "stream-1"}
    if usage:
        body["usageMetadata"] = usage
    return body


TRANSCRIPT = sse_chunks(
    chunk({"text": "Thinking about ", "thought": True}, usage={"promptTokenCount": 10, "totalTokenCount": 10}),
    chunk({"text": "the weather.", "thought": True, "thoughtSignature": SIG}),
    chunk({"text": "I'll look "}),
    chunk({"text": "it up."}),
    chunk({"functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": 2}},
           "thoughtSignature": SIG2}),
    chunk({"functionCall": {"id": "explicit", "name": "get_time", "args": {}}}, finish="STOP",
          usage={"promptTokenCount": 10, "candidatesTokenCount": 12, "thoughtsTokenCount": 8,
                 "totalTokenCount": 30}),
)


def decode(frames: list[str]) -> tuple[list[ir.Event], ir.Response]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    for data in frames:
        events += decoder.feed(None, data)
    events += decoder.close()
    assembler = Assembler()
    assembler.feed_all(events)
    return events, assembler.response()


def test_decode_realistic_stream() -> None:
    for frame in TRANSCRIPT:
        validate_wire_response(orjson.loads(frame))
    events, response = decode(TRANSCRIPT)
    assert isinstance(events[0], ir.Start) and events[0].id == "stream-1"
    assert not any(isinstance(e, ir.ErrorEvent) for e in events)
    assert isinstance(events[-1], ir.Finish)
    assert response.id == "stream-1"
    assert response.model == "gemini-2.5-flash"
    assert response.stop_reason == "tool_use"
    assert response.usage == ir.Usage(input_tokens=10, output_tokens=20, reasoning_tokens=8)
    thought, text, weather, clock = response.parts
    assert thought == ir.ThinkingPart(text="Thinking about the weather.", signature=SIG)
    assert text == ir.TextPart("I'll look it up.")
    assert isinstance(weather, ir.ToolCallPart) and isinstance(clock, ir.ToolCallPart)
    assert json.loads(weather.arguments) == {"city": "Paris", "days": 2}
    assert weather.extra is not None and weather.extra[NAME]["thoughtSignature"] == SIG2
    assert clock.id == "explicit" and clock.arguments == "{}"


def test_decoder_event_grammar() -> None:
    events, _ = decode(TRANSCRIPT)
    open_parts: set[int] = set()
    seen: list[int] = []
    for event in events[1:-1]:
        if isinstance(event, ir.PartStart):
            assert event.index not in seen
            seen.append(event.index)
            open_parts.add(event.index)
        elif isinstance(event, ir.PartDelta):
            assert event.index in open_parts
        elif isinstance(event, ir.PartStop):
            open_parts.remove(event.index)
    assert seen == [0, 1, 2, 3]
    assert not open_parts


def test_signed_text_chunk_starts_its_own_part() -> None:
    _, response = decode(sse_chunks(chunk({"text": "Hello "}), chunk({"text": "world", "thoughtSignature": SIG}),
                                    chunk({"text": ""}, finish="STOP")))
    assert response.parts == [ir.TextPart("Hello "), ir.TextPart("world", extra={NAME: {"thoughtSignature": SIG}})]
    assert response.stop_reason == "end_turn"


def test_cut_stream_ends_with_an_error() -> None:
    events, response = decode(TRANSCRIPT[:3])
    assert isinstance(events[-1], ir.ErrorEvent)
    assert events[-1].error.status == 502
    assert events[-1].error.message == "upstream stream ended before completion"
    assert response.stop_reason is None


def test_finished_stream_close_is_silent_and_late_chunks_ignored() -> None:
    decoder = DIALECT.stream_decoder()
    for frame in TRANSCRIPT:
        decoder.feed(None, frame)
    assert decoder.feed(None, TRANSCRIPT[0]) == []
    assert decoder.close() == []


def test_mid_stream_error_frame() -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(None, TRANSCRIPT[0])
    events = decoder.feed(None, orjson.dumps({"error": {
        "code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}).decode())
    assert len(events) == 1 and isinstance(events[0], ir.ErrorEvent)
    assert (events[0].error.status, events[0].error.kind) == (503, "overloaded")
    assert decoder.close() == []


def test_invalid_json_in_stream_is_an_error() -> None:
    decoder = DIALECT.stream_decoder()
    events = decoder.feed(None, "{not json")
    assert isinstance(events[0], ir.ErrorEvent) and events[0].error.status == 502
    assert decoder.feed(None, "") == []


def test_blocked_prompt_stream_finishes_with_content_filter() -> None:
    _, response = decode(sse_chunks({"promptFeedback": {"blockReason": "SAFETY"},
                                     "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
                                     "modelVersion": "m", "responseId": "b"}))
    assert response.stop_reason == "content_filter"
    assert response.usage == ir.Usage(input_tokens=4)


def sse_payloads(stream: bytes) -> list[dict[str, Any]]:
    frames = stream.split(b"\n\n")
    assert frames[-1] == b""
    payloads = []
    for frame in frames[:-1]:
        assert frame.startswith(b"data: ") and b"\n" not in frame
        payloads.append(orjson.loads(frame[len(b"data: "):]))
    return payloads


def encode_all(events: list[ir.Event], json_array: bool = False, **kwargs: Any) -> tuple[list[bytes], bytes]:
    dialect = JSON_ARRAY if json_array else DIALECT
    encoder = dialect.stream_encoder(model=kwargs.pop("model", "gemini-client-name"), **kwargs)
    pieces = [encoder.encode(event) for event in events]
    return pieces, encoder.close()


REFERENCE_RESPONSE = ir.Response(
    id="resp-9", model="upstream-model",
    parts=[ir.ThinkingPart(text="Let me think.", signature=SIG), ir.TextPart("Here you go."),
           ir.TextPart("Signed.", extra={NAME: {"thoughtSignature": SIG2}}),
           ir.ToolCallPart(id="toolu_9", name="lookup", arguments='{"q":"x"}')],
    stop_reason="tool_use",
    usage=ir.Usage(input_tokens=40, output_tokens=25, reasoning_tokens=10, cache_read_tokens=5),
)


def test_encode_stream_frames_parse_with_the_sdk() -> None:
    pieces, trailer = encode_all(list(events_for(REFERENCE_RESPONSE)))
    assert trailer == b""
    payloads = sse_payloads(b"".join(pieces))
    chunks = [validate_wire_response(p) for p in payloads]
    assert all(c.response_id == "resp-9" and c.model_version == "gemini-client-name" for c in chunks)
    assert chunks[-1].candidates is not None and chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata.candidates_token_count == 15
    assert chunks[-1].usage_metadata.thoughts_token_count == 10
    assert "".join(c.text or "" for c in chunks) == "Here you go.Signed."
    calls = [call for c in chunks for call in (c.function_calls or [])]
    assert [(call.id, call.name, call.args) for call in calls] == [("toolu_9", "lookup", {"q": "x"})]


def test_encoded_stream_decodes_back_to_the_same_response() -> None:
    pieces, _ = encode_all(list(events_for(REFERENCE_RESPONSE)))
    frames = [orjson.dumps(p).decode() for p in sse_payloads(b"".join(pieces))]
    _, response = decode(frames)
    assert response.parts == REFERENCE_RESPONSE.parts
    assert response.stop_reason == "tool_use"
    assert response.usage == REFERENCE_RESPONSE.usage
    assert response.id == "resp-9"


def test_encoder_is_incremental_and_buffers_only_tool_arguments() -> None:
    encoder = DIALECT.stream_encoder(model="m")
    assert encoder.encode(ir.Start(id="r", model="x")) == b""
    assert encoder.encode(ir.PartStart(0, ir.TextPart(""))) == b""
    first = encoder.encode(ir.PartDelta(0, text="Hel"))
    assert sse_payloads(first)[0]["candidates"][0]["content"]["parts"] == [{"text": "Hel"}]
    assert encoder.encode(ir.PartStop(0)) == b""
    assert encoder.encode(ir.PartStart(1, ir.ToolCallPart(id="c1", name="f"))) == b""
    assert encoder.encode(ir.PartDelta(1, text='{"a":')) == b""
    assert encoder.encode(ir.PartDelta(1, text=" 1}")) == b""
    call = sse_payloads(encoder.encode(ir.PartStop(1)))[0]
    assert call["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"}}]
    final = sse_payloads(encoder.encode(ir.Finish("tool_use", ir.Usage(input_tokens=3, output_tokens=4))))[0]
    assert final["candidates"] == [{"finishReason": "STOP", "index": 0}]
    assert final["usageMetadata"] == {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
    assert encoder.encode(ir.PartDelta(0, text="late")) == b""


def test_encoder_json_array_mode() -> None:
    pieces, trailer = encode_all(list(events_for(REFERENCE_RESPONSE)), json_array=True)
    document = b"".join(pieces) + trailer
    assert document.startswith(b"[{") and b",\r\n{" in document
    array = json.loads(document)
    assert len(array) == len([p for p in pieces if p])
    for item in array:
        validate_wire_response(item)
    _, empty_trailer = encode_all([], json_array=True)
    assert json.loads(empty_trailer) == []


def test_encoder_error_event() -> None:
    error = ir.Error(429, "rate_limit", "Quota exceeded", retry_after=12)
    pieces, _ = encode_all([ir.Start(id="r", model="m"), ir.PartStart(0, ir.TextPart("")),
                            ir.PartDelta(0, text="partial"), ir.ErrorEvent(error)])
    frame = pieces[-1]
    assert frame.startswith(b'data: {"error":')  # what google-genai looks for mid-stream
    payload = sse_payloads(frame)[0]
    with pytest.raises(genai_errors.ClientError) as caught:
        genai_errors.APIError.raise_error(payload["error"]["code"], payload, None)
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    array_pieces, trailer = encode_all([ir.ErrorEvent(error)], json_array=True)
    assert json.loads(b"".join(array_pieces) + trailer)[0]["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_encoder_thinking_signature_only_part() -> None:
    pieces, _ = encode_all([ir.Start(id="r", model="m"), ir.PartStart(0, ir.ThinkingPart()),
                            ir.PartDelta(0, signature=SIG), ir.PartStop(0), ir.Finish("end_turn")])
    payloads = sse_payloads(b"".join(pieces))
    assert payloads[0]["candidates"][0]["content"]["parts"] == [{"text": "", "thought": True, "thoughtSignature": SIG}]
    validate_wire_response(payloads[0])


def test_encoder_raw_parts_are_sent_verbatim() -> None:
    raw = {"executableCode": {"language": "PYTHON", "code": "1+1"}}
    pieces, _ = encode_all([ir.Start(id="r", model="m"),
                            ir.PartStart(0, ir.TextPart("", extra={NAME: {"_part": raw}})),
                            ir.PartDelta(0, text="```python\n1+1\n```"), ir.PartStop(0), ir.Finish("end_turn")])
    payloads = sse_payloads(b"".join(pieces))
    assert payloads[0]["candidates"][0]["content"]["parts"] == [raw]
    assert len(payloads) == 2


# =================================================================== errors


@pytest.mark.parametrize(("kind", "status", "google_status"), [
    ("invalid_request", 400, "INVALID_ARGUMENT"), ("request_too_large", 400, "INVALID_ARGUMENT"),
    ("authentication", 401, "UNAUTHENTICATED"), ("permission", 403, "PERMISSION_DENIED"),
    ("not_found", 404, "NOT_FOUND"), ("rate_limit", 429, "RESOURCE_EXHAUSTED"),
    ("server_error", 500, "INTERNAL"), ("overloaded", 503, "UNAVAILABLE"), ("timeout", 504, "DEADLINE_EXCEEDED"),
])
def test_render_error(kind: ir.ErrorKind, status: int, google_status: str) -> None:
    code, body = DIALECT.render_error(ir.Error(529 if kind == "overloaded" else status, kind, "it broke"))
    assert code == status
    assert body == {"error": {"code": status, "message": "it broke", "status": google_status}}
    sdk_error = genai_errors.APIError(code, body)
    assert (sdk_error.code, sdk_error.status, sdk_error.message) == (status, google_status, "it broke")
    parsed = DIALECT.parse_error(code, orjson.dumps(body))
    assert (parsed.kind, parsed.message, parsed.code) == (
        "invalid_request" if kind == "request_too_large" else kind, "it broke", google_status)


def test_retry_info_round_trips() -> None:
    code, body = DIALECT.render_error(ir.Error(429, "rate_limit", "slow down", retry_after=1.5))
    assert body["error"]["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]
    assert DIALECT.parse_error(code, orjson.dumps(body)).retry_after == 1.5


def test_parse_real_quota_error() -> None:
    body = orjson.dumps({"error": {
        "code": 429,
        "message": "You exceeded your current quota. Please retry in 41.2s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "x"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"},
        ],
    }})
    error = DIALECT.parse_error(429, body)
    assert (error.status, error.kind, error.retry_after, error.code) == (429, "rate_limit", 12.0, "RESOURCE_EXHAUSTED")
    hinted = DIALECT.parse_error(429, orjson.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                                              "message": "Please retry in 3.5s."}}))
    assert hinted.retry_after == 3.5


def test_parse_invalid_api_key_is_authentication() -> None:
    body = orjson.dumps({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                   "status": "INVALID_ARGUMENT", "details": [
                                       {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                        "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}})
    error = DIALECT.parse_error(400, body)
    assert (error.status, error.kind) == (401, "authentication")


@pytest.mark.parametrize(("status", "body", "kind", "message"), [
    (502, b"<html>Bad Gateway</html>", "server_error", "<html>Bad Gateway</html>"),
    (503, b"", "overloaded", "upstream returned HTTP 503"),
    (404, b'[{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]',
     "not_found", "models/x is not found"),
    (500, b'{"error": "not an object"}', "server_error", '{"error": "not an object"}'),
    (400, b'{"error": {"code": 400, "message": "bad", "status": "FAILED_PRECONDITION"}}', "invalid_request", "bad"),
])
def test_parse_error_is_robust(status: int, body: bytes, kind: str, message: str) -> None:
    error = DIALECT.parse_error(status, body)
    assert (error.status, error.kind, error.message) == (status, kind, message)
