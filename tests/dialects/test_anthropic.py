"""Anthropic Messages dialect: requests, responses, streams and errors, both ways.

Rendered bodies are checked against the installed `anthropic` SDK's types: request TypedDicts
(with unknown top-level keys rejected, as the API does), the `Message` model, the raw stream
event union and the SDK's own stream accumulator, and `ErrorResponse`.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent, message_create_params
from anthropic.types.beta import message_create_params as beta_create_params
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from crossroads import assemble, ir
from crossroads.dialects.anthropic import DIALECT, AnthropicDialect
from crossroads.dialects.anthropic import parts as anth
from tests.dialects.sdk import drain

KEEP = AnthropicDialect(mid_conversation_system="keep", sampling_params=True)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 8).decode()

# --------------------------------------------------------------------- SDK validation helpers

_CREATE = TypeAdapter(message_create_params.MessageCreateParams)
_BETA_CREATE = TypeAdapter(beta_create_params.MessageCreateParams)
_CREATE_KEYS = frozenset(message_create_params.MessageCreateParamsStreaming.__required_keys__
                         | message_create_params.MessageCreateParamsStreaming.__optional_keys__)
_BETA_KEYS = frozenset(beta_create_params.MessageCreateParamsStreaming.__required_keys__
                       | beta_create_params.MessageCreateParamsStreaming.__optional_keys__)
_EVENT = TypeAdapter(RawMessageStreamEvent)




def assert_valid_request(body: dict[str, Any]) -> None:
    beta = not body.keys() <= _CREATE_KEYS
    unknown = set(body) - (_BETA_KEYS if beta else _CREATE_KEYS)
    assert not unknown, f"keys the API would reject: {unknown}"
    drain((_BETA_CREATE if beta else _CREATE).validate_python(body))


def sse_events(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split an SSE byte stream into (event name, JSON data), checking the framing."""
    events = []
    for chunk in stream.decode().split("\n\n"):
        if not chunk:
            continue
        lines = chunk.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), chunk
        name, data = lines[0][7:], orjson.loads(lines[1][6:])
        assert data["type"] == name
        events.append((name, data))
    return events


def sdk_accumulate(stream: bytes) -> Message:
    """Parse every frame with the SDK's event models and fold them with the SDK's accumulator."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, data in sse_events(stream):
        if name in ("ping", "error"):
            continue
        event = _EVENT.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return Message.model_validate(snapshot.model_dump())


def encode_all(events: list[ir.Event], model: str = "claude-x", dialect: AnthropicDialect = DIALECT) -> bytes:
    encoder = dialect.stream_encoder(model=model)
    return b"".join(encoder.encode(event) for event in events) + encoder.close()


def decode_all(stream: bytes) -> list[ir.Event]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    for name, data in sse_events(stream):
        events.extend(decoder.feed(name, orjson.dumps(data).decode()))
    events.extend(decoder.close())
    return events


def assembled(events: list[ir.Event]) -> ir.Response:
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    return assembler.response()


def base_body(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "hi"}], **fields}


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message("user", list(parts))


def assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message("assistant", list(parts))


def request(*messages: ir.Message, **fields: Any) -> ir.Request:
    return ir.Request(model="claude-sonnet-4-5", messages=list(messages), **fields)


# --------------------------------------------------------------------- requests: wire -> IR


CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-opus-4-8",
    "max_tokens": 64000,
    "stream": True,
    "system": [
        {"type": "text", "text": "You are Claude Code."},
        {"type": "text", "text": "Env: linux", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Tools guide", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "fix the bug",
                                      "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "The user switched to plan mode."},
    ],
    "tools": [
        {"name": "Bash", "description": "Run a command",
         "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                          "required": ["command"]}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "thinking": {"type": "adaptive"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": '{"device_id":"abc","session_id":"s1"}'},
}


def test_claude_code_request_parses_to_ir() -> None:
    req = DIALECT.parse_request(CLAUDE_CODE_BODY)
    assert req.model == "claude-opus-4-8" and req.max_tokens == 64000 and req.stream is True
    assert [p.text for p in req.system] == ["You are Claude Code.", "Env: linux", "Tools guide"]
    assert req.system[2].cache_control == {"type": "ephemeral", "ttl": "1h"}
    assert [m.role for m in req.messages] == ["user", "system"]
    assert req.messages[1].parts == [ir.TextPart("The user switched to plan mode.")]
    first = req.messages[0].parts[0]
    assert isinstance(first, ir.TextPart) and first.cache_control == {"type": "ephemeral"}
    bash, web = req.tools
    assert (bash.kind, bash.name, bash.parameters["required"]) == ("function", "Bash", ["command"])  # type: ignore[index]
    assert web.kind == "anthropic:web_search_20250305" and web.name == "web_search"
    assert web.raw == {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    assert req.reasoning == ir.Reasoning(effort="high", adaptive=True)
    assert req.user == '{"device_id":"abc","session_id":"s1"}'
    assert req.extra == {"anthropic": {"context_management": CLAUDE_CODE_BODY["context_management"]}}


def test_claude_code_request_round_trips_with_keep_and_folds_by_default() -> None:
    req = DIALECT.parse_request(CLAUDE_CODE_BODY)
    assert KEEP.render_request(req) == CLAUDE_CODE_BODY
    folded = DIALECT.render_request(req)
    assert folded["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "fix the bug", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "The user switched to plan mode."},
    ]}]
    assert_valid_request(folded)
    assert_valid_request(KEEP.render_request(req))


def test_model_and_stream_arguments_override_body() -> None:
    req = DIALECT.parse_request(base_body(stream=True), model="claude-haiku-4-5", stream=False)
    assert req.model == "claude-haiku-4-5" and req.stream is False


def test_images_parse_base64_url_and_data_url() -> None:
    body = base_body(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"},
         "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "url", "url": f"data:image/jpeg;base64,{JPEG}"}},
    ]}])
    parts = DIALECT.parse_request(body).messages[0].parts
    assert parts == [
        ir.ImagePart(media_type="image/png", data=PNG),
        ir.ImagePart(url="https://example.com/cat.jpg", cache_control={"type": "ephemeral"}),
        ir.ImagePart(media_type="image/jpeg", data=JPEG),
    ]


def test_documents_parse_pdf_text_and_url() -> None:
    body = base_body(messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
         "title": "spec.pdf", "citations": {"enabled": True}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
    ]}])
    pdf, text, url = DIALECT.parse_request(body).messages[0].parts
    assert pdf == ir.DocumentPart(media_type="application/pdf", data="JVBERi0=", filename="spec.pdf",
                                  extra={"anthropic": {"citations": {"enabled": True}}})
    assert isinstance(text, ir.DocumentPart) and text.media_type == "text/plain"
    assert base64.b64decode(text.data or "").decode() == "héllo"
    assert url == ir.DocumentPart(url="https://example.com/a.pdf")
    assert DIALECT.render_request(DIALECT.parse_request(body)) == body


def test_tool_use_and_results_parse() -> None:
    body = base_body(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "need tool", "signature": "sig=="},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "n": 2}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": [
                {"type": "text", "text": "clock broken"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ]},
            {"type": "text", "text": "thanks"},
        ]},
    ])
    req = DIALECT.parse_request(body)
    thinking, call1, call2 = req.messages[1].parts
    assert thinking == ir.ThinkingPart(text="need tool", signature="sig==")
    assert isinstance(call1, ir.ToolCallPart) and orjson.loads(call1.arguments) == {"city": "Paris", "n": 2}
    assert isinstance(call2, ir.ToolCallPart) and call2.arguments == "{}"
    result1, result2, text = req.messages[2].parts
    assert result1 == ir.ToolResultPart("toolu_1", [ir.TextPart("sunny")], name="get_weather")
    assert isinstance(result2, ir.ToolResultPart) and result2.is_error and result2.name == "get_time"
    assert result2.content == [ir.TextPart("clock broken"), ir.ImagePart(media_type="image/png", data=PNG)]
    assert text == ir.TextPart("thanks")
    assert DIALECT.render_request(req) == body


def test_redacted_thinking_parses() -> None:
    body = base_body(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "redacted_thinking", "data": "opaque"}, {"type": "text", "text": "a"}]}])
    parts = DIALECT.parse_request(body).messages[1].parts
    assert parts == [ir.ThinkingPart(redacted="opaque"), ir.TextPart("a")]


@pytest.mark.parametrize(("wire", "choice", "parallel"), [
    ({"type": "auto"}, ir.ToolChoice("auto"), None),
    ({"type": "any", "disable_parallel_tool_use": True}, ir.ToolChoice("required"), False),
    ({"type": "tool", "name": "f", "disable_parallel_tool_use": False}, ir.ToolChoice("tool", "f"), True),
    ({"type": "none"}, ir.ToolChoice("none"), None),
])
def test_tool_choice_both_ways(wire: dict[str, Any], choice: ir.ToolChoice, parallel: bool | None) -> None:
    body = base_body(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice=wire)
    req = DIALECT.parse_request(body)
    assert (req.tool_choice, req.parallel_tool_calls) == (choice, parallel)
    assert DIALECT.render_request(req)["tool_choice"] == wire


@pytest.mark.parametrize(("thinking", "output_config", "reasoning", "extra"), [
    ({"type": "enabled", "budget_tokens": 2048}, None, ir.Reasoning(budget=2048), {}),
    ({"type": "enabled", "budget_tokens": 2048, "display": "omitted"}, None,
     ir.Reasoning(budget=2048, include_thoughts=False), {}),
    ({"type": "disabled"}, None, ir.Reasoning(effort="none"), {}),
    ({"type": "adaptive", "display": "summarized"}, {"effort": "max"},
     ir.Reasoning(effort="max", adaptive=True, include_thoughts=True), {}),
    ({"type": "adaptive"}, None, ir.Reasoning(adaptive=True), {}),
    # effort without adaptive thinking is not a reasoning setting: it stays as is
    ({"type": "enabled", "budget_tokens": 2048}, {"effort": "low"}, ir.Reasoning(budget=2048),
     {"output_config": {"effort": "low"}}),
])
def test_thinking_both_ways(thinking: dict[str, Any], output_config: dict[str, Any] | None,
                            reasoning: ir.Reasoning, extra: dict[str, Any]) -> None:
    body = base_body(max_tokens=4096, thinking=thinking)
    if output_config is not None:
        body["output_config"] = output_config
    req = DIALECT.parse_request(body)
    assert req.reasoning == reasoning
    assert req.extra.get("anthropic", {}) == extra
    assert DIALECT.render_request(req) == body


def test_structured_output_both_ways_and_legacy_output_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}
    body = base_body(output_config={"format": {"type": "json_schema", "schema": schema}})
    req = DIALECT.parse_request(body)
    assert req.response_format == ir.ResponseFormat(type="json_schema", schema=schema)
    assert DIALECT.render_request(req) == body
    legacy = DIALECT.parse_request(base_body(output_format={"type": "json_schema", "schema": schema}))
    assert legacy.response_format == ir.ResponseFormat(type="json_schema", schema=schema)
    assert DIALECT.render_request(legacy)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_scalars_parse() -> None:
    body = base_body(stop_sequences=["END", "###"], temperature=0.2, top_p=0.9, top_k=40,
                     service_tier="auto", metadata={"user_id": "u-1"})
    req = DIALECT.parse_request(body)
    assert (req.stop, req.temperature, req.top_p, req.top_k, req.user) == (["END", "###"], 0.2, 0.9, 40, "u-1")
    assert req.extra == {"anthropic": {"service_tier": "auto"}}


def test_unknown_blocks_survive_in_place() -> None:
    file_image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    search = {"type": "search_result", "source": "https://x", "title": "t",
              "content": [{"type": "text", "text": "r"}]}
    server_use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    body = base_body(messages=[
        {"role": "user", "content": [{"type": "text", "text": "a"}, file_image, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [server_use, {"type": "text", "text": "c"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
            search, {"type": "text", "text": "d"}]}]},
    ])
    req = DIALECT.parse_request(body)
    assert req.messages[0].parts == [ir.TextPart("a"), ir.TextPart("b")]
    assert req.messages[0].extra == {"anthropic": {"content": [[1, file_image]]}}
    assert DIALECT.render_request(req) == body


@pytest.mark.parametrize(("body", "param"), [
    ([], "body"),
    ({"messages": []}, "model"),
    (base_body(messages="hi"), "messages"),
    (base_body(messages=[{"role": "tool", "content": "x"}]), "messages.0.role"),
    (base_body(messages=[{"role": "user"}]), "messages.0.content"),
    (base_body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (base_body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text"),
    (base_body(messages=[{"role": "user", "content": [{"type": "image", "source": "x"}]}]),
     "messages.0.content.0.source"),
    (base_body(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}]), "messages.0.content.0.input"),
    (base_body(messages=[{"role": "system", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x"}}]}]), "messages.0.content"),
    (base_body(system=[{"type": "image"}]), "system.0.type"),
    (base_body(max_tokens="10"), "max_tokens"),
    (base_body(stop_sequences="END"), "stop_sequences"),
    (base_body(tools=[{"name": "f"}]), "tools.0.input_schema"),
    (base_body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (base_body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (base_body(thinking={"type": "sometimes"}), "thinking.type"),
    (base_body(output_config={"format": {"type": "xml"}}), "output_config.format.type"),
    (base_body(metadata={"user_id": 5}), "metadata.user_id"),
    (base_body(temperature="hot"), "temperature"),
])
def test_bad_requests_raise_400_with_param(body: Any, param: str) -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_request(body)
    assert caught.value.status == 400 and caught.value.kind == "invalid_request"
    assert caught.value.param == param


# --------------------------------------------------------------------- requests: IR -> wire


def test_render_defaults_and_minimal_shape() -> None:
    body = DIALECT.render_request(request(user(ir.TextPart("hi"))))
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 8192,
                    "messages": [{"role": "user", "content": "hi"}]}
    assert_valid_request(body)


def test_leading_system_messages_join_top_level_system() -> None:
    req = request(ir.Message("system", [ir.TextPart("be brief")]), user(ir.TextPart("hi")),
                  system=[ir.TextPart("top", cache_control={"type": "ephemeral"})])
    body = DIALECT.render_request(req)
    assert body["system"] == [{"type": "text", "text": "top", "cache_control": {"type": "ephemeral"}},
                              {"type": "text", "text": "be brief"}]
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_mid_conversation_system_folds_into_following_user_turn() -> None:
    req = request(user(ir.TextPart("q1")), assistant(ir.TextPart("a1")),
                  ir.Message("system", [ir.TextPart("now be formal")]), user(ir.TextPart("q2")))
    body = DIALECT.render_request(req)
    assert body["messages"] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": [{"type": "text", "text": "now be formal"}, {"type": "text", "text": "q2"}]},
    ]
    assert_valid_request(body)
    kept = KEEP.render_request(req)["messages"]
    assert kept[2] == {"role": "system", "content": "now be formal"}


def test_consecutive_roles_merge_with_tool_results_first() -> None:
    req = request(
        user(ir.TextPart("go")),
        assistant(ir.ToolCallPart("call:1/x", "f", '{"a": 1}')),
        user(ir.TextPart("also this")),
        user(ir.ToolResultPart("call:1/x", [ir.TextPart("done")])),
    )
    body = DIALECT.render_request(req)
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1_x", "name": "f", "input": {"a": 1}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1_x", "content": "done"},
        {"type": "text", "text": "also this"}]}
    assert len(body["messages"]) == 3
    assert_valid_request(body)


def test_foreign_thinking_without_signature_is_dropped_and_empty_text_skipped() -> None:
    req = request(user(ir.TextPart("q")), assistant(
        ir.ThinkingPart(text="openai reasoning"), ir.ThinkingPart(encrypted="enc"), ir.TextPart(""),
        ir.ThinkingPart(redacted="r"), ir.ToolCallPart("c1", "f", "")))
    content = DIALECT.render_request(req)["messages"][1]["content"]
    assert content == [{"type": "redacted_thinking", "data": "r"},
                       {"type": "tool_use", "id": "c1", "name": "f", "input": {}}]


@pytest.mark.parametrize(("arguments", "expected"), [
    ("", {}),
    ("  ", {}),
    ('{"x": [1, 2]}', {"x": [1, 2]}),
    ('{"x": ', {"_raw_arguments": '{"x": '}),
    ("[1]", {"_raw_arguments": "[1]"}),
])
def test_tool_arguments_become_input_objects(arguments: str, expected: dict[str, Any]) -> None:
    assert anth.tool_input(arguments) == expected


def test_images_render() -> None:
    req = request(user(
        ir.ImagePart(url=f"data:image/png;base64,{PNG}", detail="high"),
        ir.ImagePart(url="https://example.com/a.png"),
        ir.ImagePart(url="gs://bucket/a.png"),
        ir.ImagePart(data=JPEG),
    ))
    content = DIALECT.render_request(req)["messages"][0]["content"]
    assert content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "[image: gs://bucket/a.png]"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}},
    ]


def test_documents_render() -> None:
    csv = base64.b64encode(b"a,b\n1,2").decode()
    req = request(user(
        ir.DocumentPart(media_type="application/pdf", data="JVBERi0=", filename="x.pdf"),
        ir.DocumentPart(media_type="text/csv", data=csv),
        ir.DocumentPart(media_type="application/vnd.ms-excel", data="AAAA", filename="t.xls"),
        ir.DocumentPart(url="https://example.com/doc.pdf"),
    ))
    body = DIALECT.render_request(req)
    assert body["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
         "title": "x.pdf"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a,b\n1,2"}},
        {"type": "text", "text": "[file: t.xls (application/vnd.ms-excel)]"},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/doc.pdf"}},
    ]
    assert_valid_request(body)


def test_tools_render_and_foreign_server_tools_are_dropped() -> None:
    req = request(user(ir.TextPart("x")), tools=[
        ir.Tool("lookup", "Find things", {"type": "object", "properties": {"q": {"type": "string"}}}, strict=True),
        ir.Tool("noargs"),
        ir.Tool("web_search", kind="openai-responses:web_search", raw={"type": "web_search"}),
        ir.Tool("web_search", kind="anthropic:web_search_20250305",
                raw={"type": "web_search_20250305", "name": "web_search"}),
    ], tool_choice=ir.ToolChoice("tool", "lookup"), parallel_tool_calls=False)
    body = DIALECT.render_request(req)
    assert body["tools"] == [
        {"name": "lookup", "description": "Find things", "strict": True,
         "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
        {"name": "noargs", "input_schema": {"type": "object", "properties": {}}},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "lookup", "disable_parallel_tool_use": True}
    assert_valid_request(body)


def test_tool_choice_is_omitted_without_tools() -> None:
    req = request(user(ir.TextPart("x")), tool_choice=ir.ToolChoice("required"))
    assert "tool_choice" not in DIALECT.render_request(req)


def test_parallel_flag_alone_renders_auto_choice() -> None:
    req = request(user(ir.TextPart("x")), tools=[ir.Tool("f")], parallel_tool_calls=False)
    assert DIALECT.render_request(req)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(("reasoning", "max_tokens", "thinking", "rendered_max"), [
    (ir.Reasoning(effort="medium"), None, {"type": "enabled", "budget_tokens": 8192}, 16384),
    (ir.Reasoning(effort="low"), None, {"type": "enabled", "budget_tokens": 1024}, 8192),
    (ir.Reasoning(effort="minimal"), 4000, {"type": "enabled", "budget_tokens": 1024}, 4000),
    (ir.Reasoning(budget=100), 2000, {"type": "enabled", "budget_tokens": 1024}, 2000),
    (ir.Reasoning(budget=5000), 3000, {"type": "enabled", "budget_tokens": 5000}, 8000),
    (ir.Reasoning(effort="auto"), 64000, {"type": "enabled", "budget_tokens": 24576}, 64000),
    (ir.Reasoning(budget=-1), 64000, {"type": "enabled", "budget_tokens": 24576}, 64000),
    (ir.Reasoning(effort="none"), 100, {"type": "disabled"}, 100),
    (ir.Reasoning(budget=0), 100, {"type": "disabled"}, 100),
    (ir.Reasoning(effort="high", include_thoughts=True), 30000,
     {"type": "enabled", "budget_tokens": 24576, "display": "summarized"}, 30000),
])
def test_reasoning_renders_budget_within_max_tokens(reasoning: ir.Reasoning, max_tokens: int | None,
                                                    thinking: dict[str, Any], rendered_max: int) -> None:
    body = DIALECT.render_request(request(user(ir.TextPart("x")), reasoning=reasoning, max_tokens=max_tokens))
    assert body["thinking"] == thinking
    assert body["max_tokens"] == rendered_max
    if thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]
    assert_valid_request(body)


@pytest.mark.parametrize(("effort", "wire"), [
    ("minimal", "low"), ("medium", "medium"), ("xhigh", "xhigh"), ("max", "max"), ("auto", "high"), (None, None),
])
def test_adaptive_reasoning_renders_effort(effort: str | None, wire: str | None) -> None:
    body = DIALECT.render_request(request(user(ir.TextPart("x")),
                                          reasoning=ir.Reasoning(effort=effort, adaptive=True)))
    assert body["thinking"] == {"type": "adaptive"}
    assert body.get("output_config", {}).get("effort") == wire


def test_forced_tool_use_omits_thinking_budget() -> None:
    req = request(user(ir.TextPart("x")), tools=[ir.Tool("f")], tool_choice=ir.ToolChoice("required"),
                  reasoning=ir.Reasoning(effort="high"))
    body = DIALECT.render_request(req)
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"}


def test_sampling_params_only_for_compatible_upstreams_and_not_with_thinking() -> None:
    req = request(user(ir.TextPart("x")), temperature=0.3, top_p=0.9, top_k=5)
    assert not {"temperature", "top_p", "top_k"} & DIALECT.render_request(req).keys()
    compatible = AnthropicDialect(sampling_params=True)
    assert {k: compatible.render_request(req)[k] for k in ("temperature", "top_p", "top_k")} == {
        "temperature": 0.3, "top_p": 0.9, "top_k": 5}
    req.reasoning = ir.Reasoning(budget=2000)
    thinking_body = compatible.render_request(req)
    assert not {"temperature", "top_p", "top_k"} & thinking_body.keys()
    req.top_p = 0.97
    assert compatible.render_request(req)["top_p"] == 0.97


@pytest.mark.parametrize(("response_format", "output_config"), [
    (ir.ResponseFormat("json_object"), {"format": {"type": "json_schema", "schema": {"type": "object"}}}),
    (ir.ResponseFormat("json_schema", {"type": "object", "properties": {}}, name="x", strict=True),
     {"format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}}}),
    (ir.ResponseFormat("text"), None),
])
def test_response_format_renders(response_format: ir.ResponseFormat, output_config: dict[str, Any] | None) -> None:
    body = DIALECT.render_request(request(user(ir.TextPart("x")), response_format=response_format))
    assert body.get("output_config") == output_config
    assert_valid_request(body)


def test_user_stop_stream_and_foreign_metadata() -> None:
    req = request(user(ir.TextPart("x")), user="u-9", stop=["STOP"], stream=True, metadata={"openai": "tag"},
                  seed=7, presence_penalty=0.5, extra={"openai": {"store": True}})
    body = DIALECT.render_request(req)
    assert body["metadata"] == {"user_id": "u-9"}
    assert body["stop_sequences"] == ["STOP"] and body["stream"] is True
    assert not {"seed", "presence_penalty", "store"} & body.keys()
    assert_valid_request(body)


# --------------------------------------------------------------------- request round trip (hypothesis)

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_safe_id = st.from_regex(r"[a-zA-Z0-9_-]{1,12}", fullmatch=True)
_cache = st.sampled_from([{"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _text_block(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": draw(_text)}
    if draw(st.booleans()):
        block["cache_control"] = draw(_cache)
    if draw(st.integers(0, 4)) == 0:
        block["citations"] = None
    return block


_image_block = st.one_of(
    st.builds(lambda data, mt: {"type": "image", "source": {"type": "base64", "media_type": mt, "data": data}},
              st.sampled_from([PNG, JPEG]), st.sampled_from(["image/png", "image/jpeg", "image/webp"])),
    st.builds(lambda path: {"type": "image", "source": {"type": "url", "url": f"https://example.com/{path}"}},
              _safe_id),
    st.just({"type": "image", "source": {"type": "file", "file_id": "file_1"}}),
)
_document_block = st.one_of(
    st.builds(lambda title: {"type": "document", "title": title,
                             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
              _text),
    st.builds(lambda text: {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                           "data": text}}, _text),
    st.just({"type": "document", "source": {"type": "url", "url": "https://example.com/x.pdf"},
             "citations": {"enabled": True}, "context": "ctx"}),
)


@st.composite
def _tool_result_block(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": draw(_safe_id)}
    content = draw(st.one_of(st.none(), _text, st.lists(st.one_of(_text_block(), _image_block), min_size=1, max_size=3)))
    if content is not None:
        block["content"] = content
    if draw(st.booleans()):
        block["is_error"] = True
    if draw(st.integers(0, 3)) == 0:
        block["cache_control"] = draw(_cache)
    return block


@st.composite
def _user_message(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        return {"role": "user", "content": draw(_text)}
    results = draw(st.lists(_tool_result_block(), max_size=2))
    others = draw(st.lists(st.one_of(_text_block(), _image_block, _document_block), min_size=0 if results else 1,
                           max_size=3))
    return {"role": "user", "content": results + others}


_thinking_block = st.one_of(
    st.builds(lambda text, sig: {"type": "thinking", "thinking": text, "signature": sig}, _text, _safe_id),
    st.builds(lambda data: {"type": "redacted_thinking", "data": data}, _safe_id),
)
_tool_use_block = st.builds(
    lambda tool_id, name, args: {"type": "tool_use", "id": tool_id, "name": name, "input": args},
    _safe_id, _safe_id, st.dictionaries(_text, _json, max_size=3))


@st.composite
def _assistant_message(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        return {"role": "assistant", "content": draw(_text)}
    blocks = draw(st.lists(_thinking_block, max_size=2)) + draw(st.lists(_text_block(), max_size=2))
    blocks += draw(st.lists(_tool_use_block, max_size=2))
    if not blocks:
        blocks = [draw(_text_block())]
    return {"role": "assistant", "content": blocks}


@st.composite
def _messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    turns = draw(st.integers(1, 5))
    messages = [draw(_user_message()) if i % 2 == 0 else draw(_assistant_message()) for i in range(turns)]
    if turns > 1 and draw(st.booleans()):  # a mid-conversation system message (never the leading one)
        at = draw(st.integers(1, turns - 1))
        messages.insert(at, {"role": "system", "content": draw(st.one_of(_text, st.lists(_text_block(),
                                                                                          min_size=1, max_size=2)))})
    return messages


_custom_tool = st.builds(
    lambda name, description, extras: {"name": name, "input_schema": {"type": "object", "properties": {
        "q": {"type": "string"}}}, **({"description": description} if description else {}), **extras},
    _safe_id, st.one_of(st.none(), _text),
    st.fixed_dictionaries({}, optional={"cache_control": _cache, "strict": st.booleans(),
                                        "defer_loading": st.booleans(), "type": st.just("custom")}),
)
_server_tool = st.sampled_from([
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
])


@st.composite
def request_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(st.sampled_from(["claude-opus-4-8", "claude-sonnet-4-5"])),
                            "max_tokens": draw(st.integers(2048, 64000)), "messages": draw(_messages())}
    system = draw(st.one_of(st.none(), _text, st.lists(_text_block(), min_size=1, max_size=3)))
    if system is not None:
        body["system"] = system
    tools = draw(st.lists(st.one_of(_custom_tool, _server_tool), max_size=3))
    if tools:
        body["tools"] = tools
        choice = draw(st.sampled_from([None, {"type": "auto"}, {"type": "any"}, {"type": "none"},
                                       {"type": "auto", "disable_parallel_tool_use": True},
                                       {"type": "tool", "name": "q", "disable_parallel_tool_use": False}]))
        if choice is not None:
            body["tool_choice"] = choice
    forced = body.get("tool_choice", {}).get("type") in ("any", "tool")
    thinking_kind = draw(st.sampled_from(["off", "disabled", "adaptive"] + ([] if forced else ["enabled"])))
    output_config: dict[str, Any] = {}
    if thinking_kind == "enabled":
        body["thinking"] = {"type": "enabled", "budget_tokens": draw(st.integers(1024, body["max_tokens"] - 1))}
    elif thinking_kind == "disabled":
        body["thinking"] = {"type": "disabled"}
    elif thinking_kind == "adaptive":
        body["thinking"] = {"type": "adaptive"}
        if draw(st.booleans()):
            body["thinking"]["display"] = draw(st.sampled_from(["summarized", "omitted"]))
    if draw(st.booleans()):
        output_config["effort"] = draw(st.sampled_from(["low", "medium", "high", "xhigh", "max"]))
    if draw(st.booleans()):
        output_config["format"] = {"type": "json_schema", "schema": draw(st.sampled_from([
            {"type": "object"}, {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}]))}
    if output_config:
        body["output_config"] = output_config
    if thinking_kind in ("off", "disabled"):
        body.update(draw(st.fixed_dictionaries({}, optional={
            "temperature": st.floats(0, 1), "top_k": st.integers(1, 100), "top_p": st.floats(0, 1)})))
    body.update(draw(st.fixed_dictionaries({}, optional={
        "stop_sequences": st.lists(_text, min_size=1, max_size=3),
        "metadata": st.builds(lambda uid: {"user_id": uid}, _text),
        "stream": st.just(True),
        "service_tier": st.sampled_from(["auto", "standard_only"]),
        "context_management": st.just({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}),
        "inference_geo": _safe_id,
    })))
    return body


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """The one documented normalisation: a lone plain text block is written as a string."""

    def compact(content: Any) -> Any:
        if isinstance(content, list) and len(content) == 1 and content[0].keys() == {"type", "text"} \
                and content[0]["type"] == "text":
            return content[0]["text"]
        return content

    out = dict(body)
    if "system" in out:
        out["system"] = compact(out["system"])
    messages = []
    for message in out["messages"]:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {**block, "content": compact(block["content"])} if block.get("type") == "tool_result"
                and "content" in block else block
                for block in content
            ]
        messages.append({**message, "content": compact(content)})
    out["messages"] = messages
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_bodies())
def test_request_round_trip(body: dict[str, Any]) -> None:
    assert KEEP.render_request(KEEP.parse_request(body)) == normalise(body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_bodies())
def test_rendered_requests_validate_against_sdk_types(body: dict[str, Any]) -> None:
    rendered = DIALECT.render_request(DIALECT.parse_request(body))
    assert_valid_request(rendered)
    assert not any(message["role"] == "system" for message in rendered["messages"])


# --------------------------------------------------------------------- responses

RESPONSE_BODY: dict[str, Any] = {
    "id": "msg_01ABC",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me look.", "signature": "EqQBsig"},
        {"type": "redacted_thinking", "data": "EmwKAh"},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "text", "text": "Calling a tool.", "citations": None},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 2000,
              "cache_creation_input_tokens": 300, "output_tokens_details": {"thinking_tokens": 20},
              "service_tier": "standard"},
}


def test_response_parses_to_ir() -> None:
    resp = DIALECT.parse_response(RESPONSE_BODY)
    assert resp.id == "msg_01ABC" and resp.model == "claude-sonnet-4-5"
    assert resp.parts == [
        ir.ThinkingPart(text="Let me look.", signature="EqQBsig"),
        ir.ThinkingPart(redacted="EmwKAh"),
        ir.TextPart("Calling a tool.", extra={"anthropic": {"citations": None}}),
        ir.ToolCallPart("toolu_01", "get_weather", '{"city":"Oslo"}'),
    ]
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(input_tokens=2400, output_tokens=50, cache_read_tokens=2000,
                                  cache_write_tokens=300, reasoning_tokens=20)
    assert DIALECT.render_response(resp) == RESPONSE_BODY


def test_response_usage_without_cache_fields_stays_none() -> None:
    resp = DIALECT.parse_response({**RESPONSE_BODY, "usage": {"input_tokens": 7, "output_tokens": 3}})
    assert resp.usage == ir.Usage(input_tokens=7, output_tokens=3)


@pytest.mark.parametrize(("wire", "stop"), [
    ("end_turn", "end_turn"), ("max_tokens", "max_tokens"), ("stop_sequence", "stop_sequence"),
    ("tool_use", "tool_use"), ("pause_turn", "pause_turn"), ("refusal", "refusal"),
    ("model_context_window_exceeded", "max_tokens"),
])
def test_stop_reasons_both_ways(wire: str, stop: str) -> None:
    body = {**RESPONSE_BODY, "content": [{"type": "text", "text": "x"}], "stop_reason": wire}
    resp = DIALECT.parse_response(body)
    assert resp.stop_reason == stop
    assert DIALECT.render_response(resp)["stop_reason"] == wire


def test_foreign_response_renders_valid_message() -> None:
    resp = ir.Response(
        id="chatcmpl-1", model="gpt-5",
        parts=[ir.ThinkingPart(encrypted="gAAA"), ir.ThinkingPart(text="reasoned"), ir.TextPart("hi"),
               ir.ToolCallPart("call abc", "f", '{"x": 1}'), ir.ToolCallPart("", "g", "")],
        stop_reason="end_turn",
        usage=ir.Usage(input_tokens=10, output_tokens=30, cache_read_tokens=50, reasoning_tokens=12),
    )
    body = DIALECT.render_response(resp)
    message = Message.model_validate(body)
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert body["content"][2] == {"type": "tool_use", "id": "call_abc", "name": "f", "input": {"x": 1}}
    assert body["content"][3]["id"].startswith("toolu_") and body["content"][3]["input"] == {}
    assert body["stop_reason"] == "tool_use"  # tool calls with a plain stop
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 30, "cache_read_input_tokens": 50,
                             "output_tokens_details": {"thinking_tokens": 12}}


def test_response_without_usage_or_id_gets_required_defaults() -> None:
    body = DIALECT.render_response(ir.Response(id="", model="m", parts=[ir.TextPart("x")], stop_reason="refusal"))
    message = Message.model_validate(body)
    assert message.id.startswith("msg_") and message.stop_reason == "refusal"
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_malformed_upstream_response_is_a_502() -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_response({"content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}]})
    assert caught.value.status == 502


_response_blocks = st.lists(st.one_of(
    st.builds(lambda text, cited: {"type": "text", "text": text, **({"citations": None} if cited else {})},
              st.text(st.characters(blacklist_categories=("Cs",)), max_size=10), st.booleans()),
    st.builds(lambda text, sig: {"type": "thinking", "thinking": text, "signature": sig}, _text, _safe_id),
    st.builds(lambda data: {"type": "redacted_thinking", "data": data}, _safe_id),
    _tool_use_block,
    st.just({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
), max_size=5)


@st.composite
def response_bodies(draw: st.DrawFn) -> dict[str, Any]:
    content = draw(_response_blocks)
    reasons = ["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
               "model_context_window_exceeded"]
    if any(block["type"] == "tool_use" for block in content):
        reasons.remove("end_turn")  # rendered as tool_use by design
    usage: dict[str, Any] = {"input_tokens": draw(st.integers(0, 10**6)), "output_tokens": draw(st.integers(0, 10**5))}
    usage.update(draw(st.fixed_dictionaries({}, optional={
        "cache_read_input_tokens": st.integers(0, 10**6), "cache_creation_input_tokens": st.integers(0, 10**5),
        "output_tokens_details": st.builds(lambda n: {"thinking_tokens": n}, st.integers(0, 100)),
        "service_tier": st.sampled_from(["standard", "priority"]),
    })))
    body: dict[str, Any] = {"id": "msg_" + draw(_safe_id), "type": "message", "role": "assistant",
                            "model": "claude-sonnet-4-5", "content": content,
                            "stop_reason": draw(st.sampled_from(reasons)),
                            "stop_sequence": draw(st.one_of(st.none(), _text)), "usage": usage}
    if draw(st.booleans()):
        body["container"] = None
    return body


@settings(max_examples=200, deadline=None)
@given(response_bodies())
def test_response_round_trip(body: dict[str, Any]) -> None:
    rendered = DIALECT.render_response(DIALECT.parse_response(body))
    assert rendered == body
    Message.model_validate(rendered)


# --------------------------------------------------------------------- streams: decode

UPSTREAM_STREAM = b"".join(
    f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n".encode()
    for name, data in [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_S1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 100,
                      "cache_creation_input_tokens": 0}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Hmm, "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "weather."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "SIG"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"query":"x"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "text_delta", "text": "Let me "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
            "type": "citations_delta", "citation": {"type": "char_location", "cited_text": "c",
                                                    "document_index": 0, "document_title": None,
                                                    "start_char_index": 0, "end_char_index": 1}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "text_delta", "text": "check."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {
            "type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                 "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                 "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 3}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 42, "input_tokens": 12, "cache_read_input_tokens": 100,
                                     "cache_creation_input_tokens": 0}}),
        ("message_stop", {"type": "message_stop"}),
    ]
)


def test_decoded_stream_assembles_to_the_response() -> None:
    events = decode_all(UPSTREAM_STREAM)
    assert isinstance(events[0], ir.Start) and events[0].usage == ir.Usage(
        input_tokens=112, output_tokens=1, cache_read_tokens=100, cache_write_tokens=0)
    assert isinstance(events[-1], ir.Finish)
    starts = [event.index for event in events if isinstance(event, ir.PartStart)]
    assert starts == [0, 1, 2]  # the server tool block is skipped; IR indices stay dense
    resp = assembled(events)
    assert (resp.id, resp.model, resp.stop_reason) == ("msg_S1", "claude-sonnet-4-5", "tool_use")
    assert resp.parts == [ir.ThinkingPart(text="Hmm, weather.", signature="SIG"), ir.TextPart("Let me check."),
                          ir.ToolCallPart("toolu_9", "get_weather", '{"city": "Oslo"}')]
    assert resp.usage == ir.Usage(input_tokens=112, output_tokens=42, cache_read_tokens=100, cache_write_tokens=0)


def test_decoder_error_event() -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed("message_start", orjson.dumps({"type": "message_start", "message": {
        "id": "m", "model": "c", "usage": {"input_tokens": 1, "output_tokens": 0}}}).decode())
    events = decoder.feed("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert events == [ir.ErrorEvent(ir.Error(529, "overloaded", "Overloaded"))]
    assert decoder.close() == []


@pytest.mark.parametrize("cut_before", ["message_delta", "message_stop", "content_block_delta"])
def test_cut_stream_ends_in_error(cut_before: str) -> None:
    frames = UPSTREAM_STREAM.split(b"\n\n")
    cut = next(i for i, frame in enumerate(frames) if frame.startswith(f"event: {cut_before}".encode()))
    events = decode_all(b"\n\n".join(frames[:cut]) + b"\n\n")
    assert not any(isinstance(event, ir.Finish) for event in events)
    assert events[-1] == ir.ErrorEvent(ir.Error(502, "server_error", "upstream stream ended before completion"))


def test_malformed_event_is_an_error() -> None:
    decoder = DIALECT.stream_decoder()
    assert decoder.feed("content_block_delta", "{not json") == [
        ir.ErrorEvent(ir.Error(502, "server_error", "malformed event in upstream stream"))]
    assert decoder.feed("content_block_delta", '{"type":"content_block_delta","index":[1]}')  == []
    assert decoder.close() == []


# --------------------------------------------------------------------- streams: encode

FULL_RESPONSE = ir.Response(
    id="msg_E1", model="upstream-model",
    parts=[ir.ThinkingPart(text="think", signature="SIG"), ir.ThinkingPart(redacted="RED"),
           ir.TextPart("Hello "), ir.ToolCallPart("call:1", "lookup", '{"q": "x"}'), ir.ToolCallPart("c2", "noop")],
    stop_reason="tool_use",
    usage=ir.Usage(input_tokens=500, output_tokens=60, cache_read_tokens=400, cache_write_tokens=50,
                   reasoning_tokens=10),
)


def test_encoded_stream_parses_with_sdk_and_matches_response() -> None:
    stream = encode_all(list(assemble.events_for(FULL_RESPONSE)), model="claude-shown")
    names = [name for name, _ in sse_events(stream)]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    message = sdk_accumulate(stream)
    assert message.model == "claude-shown" and message.id == "msg_E1"
    assert [block.type for block in message.content] == ["thinking", "redacted_thinking", "text", "tool_use",
                                                         "tool_use"]
    thinking, redacted, text, call, noop = message.content
    assert thinking.type == "thinking" and (thinking.thinking, thinking.signature) == ("think", "SIG")
    assert redacted.type == "redacted_thinking" and redacted.data == "RED"
    assert text.type == "text" and text.text == "Hello "
    assert call.type == "tool_use" and (call.id, call.input) == ("call_1", {"q": "x"})
    assert noop.type == "tool_use" and noop.input == {}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (50, 60)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (400, 50)
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 10


def test_encode_then_decode_round_trips() -> None:
    resp = assembled(decode_all(encode_all(list(assemble.events_for(FULL_RESPONSE)))))
    expected = [ir.ThinkingPart(text="think", signature="SIG"), ir.ThinkingPart(redacted="RED"),
                ir.TextPart("Hello "), ir.ToolCallPart("call_1", "lookup", '{"q": "x"}'), ir.ToolCallPart("c2", "noop")]
    assert resp.parts == expected
    assert resp.usage == FULL_RESPONSE.usage and resp.stop_reason == "tool_use"


def test_upstream_transcript_re_encodes_for_sdk() -> None:
    message = sdk_accumulate(encode_all(decode_all(UPSTREAM_STREAM)))
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.usage.input_tokens == 12 and message.usage.cache_read_input_tokens == 100


def test_encoder_message_start_usage_and_late_usage() -> None:
    events: list[ir.Event] = [
        ir.Start("chatcmpl-7", "gpt-x"),
        ir.PartStart(3, ir.TextPart("")),  # indices need not start at 0 in the IR
        ir.PartDelta(3, "hi"),
        ir.UsageEvent(ir.Usage(input_tokens=40, cache_read_tokens=10)),
        ir.Finish("end_turn", ir.Usage(output_tokens=9)),
    ]
    frames = sse_events(encode_all(events))
    start = frames[0][1]["message"]
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert frames[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = next(data for name, data in frames if name == "message_delta")
    assert delta["usage"] == {"input_tokens": 30, "output_tokens": 9, "cache_read_input_tokens": 10}
    # The unclosed block is stopped before message_delta.
    assert [name for name, _ in frames][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    message = sdk_accumulate(encode_all(events))
    assert message.usage.input_tokens == 30 and message.content[0].type == "text"


def test_encoder_sends_fragmented_signature_once_before_stop() -> None:
    events: list[ir.Event] = [
        ir.Start("m", "x"), ir.PartStart(0, ir.ThinkingPart()), ir.PartDelta(0, "a", signature="S1"),
        ir.PartDelta(0, "b", signature="S2"), ir.PartStop(0), ir.Finish("end_turn"),
    ]
    frames = sse_events(encode_all(events))
    deltas = [data["delta"] for name, data in frames if name == "content_block_delta"]
    assert deltas == [{"type": "thinking_delta", "thinking": "a"}, {"type": "thinking_delta", "thinking": "b"},
                      {"type": "signature_delta", "signature": "S1S2"}]
    thinking = sdk_accumulate(encode_all(events)).content[0]
    assert thinking.type == "thinking" and thinking.signature == "S1S2"


def test_encoder_error_mid_stream_and_silence_after() -> None:
    encoder = DIALECT.stream_encoder(model="m")
    encoder.encode(ir.Start("m1", "m"))
    encoder.encode(ir.PartStart(0, ir.TextPart("")))
    out = encoder.encode(ir.ErrorEvent(ir.Error(429, "rate_limit", "slow down")))
    ((name, data),) = sse_events(out)
    assert name == "error"
    assert ErrorResponse.model_validate(data).error.type == "rate_limit_error"
    assert data["error"]["message"] == "slow down"
    assert encoder.encode(ir.Finish("end_turn")) == b"" and encoder.close() == b""


def test_encoder_stop_reasons() -> None:
    for stop, wire in [("content_filter", "refusal"), ("max_tokens", "max_tokens"), (None, "end_turn"),
                       ("error", "end_turn")]:
        frames = sse_events(encode_all([ir.Start("m", "x"), ir.Finish(stop)]))
        assert frames[-2][1]["delta"]["stop_reason"] == wire


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize(("kind", "status", "wire_type"), [
    ("invalid_request", 400, "invalid_request_error"),
    ("authentication", 401, "authentication_error"),
    ("permission", 403, "permission_error"),
    ("not_found", 404, "not_found_error"),
    ("request_too_large", 413, "invalid_request_error"),
    ("rate_limit", 429, "rate_limit_error"),
    ("server_error", 500, "api_error"),
    ("overloaded", 529, "overloaded_error"),
    ("timeout", 504, "timeout_error"),
])
def test_render_error_shapes(kind: ir.ErrorKind, status: int, wire_type: str) -> None:
    rendered_status, body = DIALECT.render_error(ir.Error(status, kind, "boom"))
    assert rendered_status == status
    assert body == {"type": "error", "error": {"type": wire_type, "message": "boom"}}
    ErrorResponse.model_validate(body)
    parsed = DIALECT.parse_error(status, orjson.dumps(body))
    assert (parsed.status, parsed.kind, parsed.message) == (status, kind, "boom")


def test_render_error_prefixes_param_and_keeps_billing_type() -> None:
    _, body = DIALECT.render_error(ir.bad_request("expected a string", "messages.0.content"))
    assert body["error"]["message"] == "messages.0.content: expected a string"
    billing = DIALECT.parse_error(402, b'{"type":"error","error":{"type":"billing_error","message":"no credit"}}')
    assert (billing.kind, billing.code) == ("permission", "billing_error")
    assert DIALECT.render_error(billing) == (402, {"type": "error", "error": {"type": "billing_error",
                                                                             "message": "no credit"}})


@pytest.mark.parametrize(("status", "body", "kind", "message", "code"), [
    (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"r"}',
     "overloaded", "Overloaded", None),
    (413, b'{"type":"error","error":{"type":"request_too_large","message":"too big"}}',
     "request_too_large", "too big", None),
    (400, b'{"type":"error","error":{"type":"invalid_request_error","message":"old",'
          b'"details":{"error_code":"claude_code_version_too_old"}}}',
     "invalid_request", "old", "claude_code_version_too_old"),
    (502, b"<html>Bad Gateway</html>", "server_error", "<html>Bad Gateway</html>", None),
    (503, b"", "overloaded", "upstream returned HTTP 503", None),
    (429, b'{"error":"slow"}', "rate_limit", "slow", None),
    (418, b'{"type":"error","error":{"type":"mystery_error","message":"?"}}', "invalid_request", "?",
     "mystery_error"),
])
def test_parse_error(status: int, body: bytes, kind: str, message: str, code: str | None) -> None:
    error = DIALECT.parse_error(status, body)
    assert (error.status, error.kind, error.message, error.code) == (status, kind, message, code)


def test_dialect_identity() -> None:
    from crossroads import dialects

    assert dialects.get("anthropic") is DIALECT


def test_plain_text_shortcuts_agree_with_the_general_path() -> None:
    """A lone text block with nothing else (read) and a one-text message (written) take shortcuts;
    what they produce is what the general path produces for the same content."""
    block = {"type": "text", "text": "hello"}
    reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [block],
             "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 2}}
    parsed = DIALECT.parse_response(reply)
    assert parsed.parts == [anth.parse_text_block(block, "content.0")]
    cited = {**block, "citations": None}  # the general path: the extra key is kept
    parsed_cited = DIALECT.parse_response({**reply, "content": [cited]})
    assert parsed_cited.parts[0].text == "hello" and parsed_cited.parts[0].extra == {"anthropic": {"citations": None}}

    plain = ir.Message("user", [ir.TextPart("hi")])
    annotated = ir.Message("user", [ir.TextPart("hi")], extra={"anthropic": {}})  # not the shortcut's shape
    assert anth.render_messages([plain], keep_system=True) == anth.render_messages([annotated], keep_system=True)
    assert anth.render_messages([plain, ir.Message("user", [ir.TextPart("again")])], keep_system=True)[1] == \
        [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}]
    assert anth.render_messages([ir.Message("user", [ir.TextPart("")])], keep_system=True)[1] == []
