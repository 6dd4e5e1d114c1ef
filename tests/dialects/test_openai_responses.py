"""OpenAI Responses dialect: requests, responses, streams and errors, both directions.

Rendered wire shapes are checked against the official `openai` SDK types (TypedDict request
params via pydantic, response / stream-event models via model_validate, and the SDK's own
streaming client over a mock transport)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from pydantic import TypeAdapter

from crossroads import assemble, ir
from crossroads.dialects import get
from crossroads.dialects.openai_responses import DIALECT, NAME
from tests.dialects.sdk import drain

D = DIALECT

# --------------------------------------------------------------------- helpers

_CREATE_PARAMS = TypeAdapter(ResponseCreateParamsNonStreaming)
_STREAM_EVENT = TypeAdapter(ResponseStreamEvent)




def validate_request(body: dict[str, Any]) -> None:
    wire = {k: v for k, v in body.items() if k != "stream"}
    if isinstance(wire.get("input"), list):
        # The SDK types `reasoning.id` as required, yet the API accepts reasoning items that
        # carry only encrypted_content (Codex never sends their ids); skip those here.
        wire["input"] = [i for i in wire["input"] if not (i.get("type") == "reasoning" and "id" not in i)]
    drain(_CREATE_PARAMS.validate_python(wire))


def frames(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    out: list[tuple[str | None, dict[str, Any]]] = []
    for block in data.split(b"\n\n"):
        if not block.strip():
            continue
        event: str | None = None
        payload = b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                event = line[7:].decode()
            elif line.startswith(b"data: "):
                payload += line[6:]
        out.append((event, orjson.loads(payload)))
    return out


def encode_all(events: Iterator[ir.Event] | list[ir.Event], model: str = "gpt-test",
               request: ir.Request | None = None) -> bytes:
    encoder = D.stream_encoder(model=model, request=request)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def decode_frames(data: bytes) -> list[ir.Event]:
    decoder = D.stream_decoder()
    events: list[ir.Event] = []
    for name, payload in frames(data):
        events.extend(decoder.feed(name, orjson.dumps(payload).decode()))
    events.extend(decoder.close())
    return events


def sse_text(*payloads: dict[str, Any]) -> list[tuple[str, str]]:
    """A transcript as (event name, data) pairs, with sequence numbers like the real API."""
    return [(p["type"], orjson.dumps({**p, "sequence_number": n}).decode()) for n, p in enumerate(payloads)]


def decode(transcript: list[tuple[str, str]], close: bool = True) -> list[ir.Event]:
    decoder = D.stream_decoder()
    events: list[ir.Event] = []
    for name, data in transcript:
        events.extend(decoder.feed(name, data))
    if close:
        events.extend(decoder.close())
    return events


def check_grammar(events: list[ir.Event]) -> None:
    """Start, then PartStart/PartDelta*/PartStop with fresh increasing indices, then one
    Finish or ErrorEvent at the end."""
    assert isinstance(events[0], ir.Start)
    open_: set[int] = set()
    seen: set[int] = set()
    for event in events[1:-1]:
        if isinstance(event, ir.PartStart):
            assert event.index not in seen and event.index == len(seen)
            seen.add(event.index)
            open_.add(event.index)
        elif isinstance(event, ir.PartDelta):
            assert event.index in open_
        elif isinstance(event, ir.PartStop):
            assert event.index in open_
            open_.remove(event.index)
        else:
            assert isinstance(event, ir.UsageEvent), event
    assert isinstance(events[-1], ir.Finish | ir.ErrorEvent)
    if isinstance(events[-1], ir.Finish):
        assert not open_


def sdk_client(handler: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url="http://fake.test/v1",
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()


# --------------------------------------------------------------------- requests: wire -> IR

CODEX_REQUEST: dict[str, Any] = {
    "model": "gpt-5.1-codex",
    "stream": True,
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox rules"}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be terse"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<env>cwd=/w</env>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "**Listing**"},
                                          {"type": "summary_text", "text": "use ls"}],
         "encrypted_content": "gAAAAENC", "content": None},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running ls."}]},
        {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "call_A"},
        {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"pwd\"]}", "call_id": "call_B"},
        {"type": "function_call_output", "call_id": "call_A", "output": "a.txt\nb.txt"},
        {"type": "function_call_output", "call_id": "call_B", "output": "/w"},
        {"type": "custom_tool_call", "call_id": "call_C", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_C", "output": "done"},
    ],
    "tools": [
        {"type": "function", "name": "shell", "description": "Runs a command",
         "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}, "strict": False},
        {"type": "namespace", "name": "mcp__fs", "description": "fs tools", "tools": []},
        {"type": "web_search", "external_web_access": False},
        {"type": "custom", "name": "apply_patch", "description": "patch", "format": {"type": "grammar"}},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "high", "summary": "auto"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "session-1",
    "client_metadata": {"x-codex-turn": "1"},
    "text": {"verbosity": "low"},
}


def test_codex_request_parses_into_the_ir() -> None:
    req = D.parse_request(copy.deepcopy(CODEX_REQUEST))
    assert req.model == "gpt-5.1-codex" and req.stream is True
    assert [p.text for p in req.system] == ["sandbox rules", "be terse"]
    roles = [m.role for m in req.messages]
    assert roles == ["user", "user", "assistant", "user"]
    assistant = req.messages[2]
    kinds = [type(p).__name__ for p in assistant.parts]
    assert kinds == ["ThinkingPart", "TextPart", "ToolCallPart", "ToolCallPart"]
    thinking = assistant.parts[0]
    assert isinstance(thinking, ir.ThinkingPart)
    assert thinking.text == "**Listing**\n\nuse ls" and thinking.encrypted == "gAAAAENC"
    call = assistant.parts[2]
    assert isinstance(call, ir.ToolCallPart)
    assert (call.id, call.name, call.arguments) == ("call_A", "shell", '{"command":["ls"]}')
    results = req.messages[3].parts
    assert all(isinstance(p, ir.ToolResultPart) for p in results)
    first = results[0]
    assert isinstance(first, ir.ToolResultPart)
    assert first.tool_call_id == "call_A" and first.name == "shell"
    assert first.content == [ir.TextPart("a.txt\nb.txt")]
    # items the IR cannot express are kept verbatim, not turned into parts
    raw = req.messages[3].extra[NAME]["raw"]  # type: ignore[index]
    assert [item["type"] for _, item in raw] == ["custom_tool_call", "custom_tool_call_output"]
    assert [t.kind for t in req.tools] == ["function", "openai-responses:namespace",
                                           "openai-responses:web_search", "openai-responses:custom"]
    assert req.tools[0].parameters == {"type": "object", "properties": {"command": {"type": "array"}}}
    assert req.tools[0].strict is False and req.tools[0].raw is None
    assert req.tool_choice == ir.ToolChoice("auto") and req.parallel_tool_calls is True
    assert req.reasoning == ir.Reasoning(effort="high", summary="auto")
    assert req.extra[NAME] == {"store": False, "include": ["reasoning.encrypted_content"],
                               "prompt_cache_key": "session-1", "client_metadata": {"x-codex-turn": "1"},
                               "text": {"verbosity": "low"}}


def test_codex_request_round_trips_exactly_without_instructions() -> None:
    rendered = D.render_request(D.parse_request(copy.deepcopy(CODEX_REQUEST)))
    assert rendered == CODEX_REQUEST
    assert "instructions" not in rendered


def test_instructions_and_string_input() -> None:
    body = {"model": "gpt-4.1", "instructions": "You are terse.", "input": "Hello?"}
    req = D.parse_request(body)
    assert [p.text for p in req.system] == ["You are terse."]
    assert len(req.messages) == 1 and req.messages[0].role == "user"
    assert req.messages[0].parts == [ir.TextPart("Hello?")]
    assert D.render_request(req) == body


def test_model_and_stream_from_arguments_override_body() -> None:
    req = D.parse_request({"model": "a", "input": "x"}, model="b", stream=True)
    assert req.model == "b" and req.stream is True


def test_mid_conversation_system_message_stays_in_place() -> None:
    body = {"model": "m", "input": [
        {"role": "user", "content": "one"},
        {"role": "system", "content": "now be formal"},
        {"role": "user", "content": "two"},
    ]}
    req = D.parse_request(body)
    assert req.system == []
    assert [m.role for m in req.messages] == ["user", "system", "user"]
    assert req.messages[1].parts == [ir.TextPart("now be formal")]
    assert D.render_request(req) == body


def test_verbatim_items_keep_their_place_between_ir_parts() -> None:
    body = {"model": "m", "input": [
        {"type": "item_reference", "id": "msg_0"},
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "1"},
        {"type": "item_reference", "id": "x"},
        {"type": "function_call_output", "call_id": "b", "output": "2"},
        {"type": "message", "role": "user", "content": []},
        {"type": "compaction", "encrypted_content": "c"},
    ]}
    req = D.parse_request(copy.deepcopy(body))
    # the tool calls stay one assistant turn and the outputs one user turn for other dialects
    assert [(m.role, len(m.parts)) for m in req.messages] == [("assistant", 2), ("user", 2), ("user", 0)]
    assert D.render_request(req) == body


def test_images_and_files_parse_into_media_parts() -> None:
    body = {"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "high"},
        {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
        {"type": "input_file", "file_url": "https://example.com/b.pdf"},
        {"type": "input_image", "file_id": "file-123", "detail": "low"},
    ]}]}
    req = D.parse_request(copy.deepcopy(body))
    parts = req.messages[0].parts
    assert parts[1] == ir.ImagePart(media_type="image/png", data=PNG, detail="high")
    assert parts[2] == ir.ImagePart(url="https://example.com/cat.jpg", detail="auto")
    assert parts[3] == ir.DocumentPart(media_type="application/pdf", data=PDF, filename="a.pdf")
    assert parts[4] == ir.DocumentPart(url="https://example.com/b.pdf")
    # a stored-file image has no IR home: other dialects see a text placeholder
    assert isinstance(parts[5], ir.TextPart) and parts[5].text == "[image: file-123]"
    assert D.render_request(req) == body


def test_tool_output_with_image_content() -> None:
    body = {"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "here"},
            {"type": "input_image", "image_url": f"data:image/jpeg;base64,{PNG}"},
        ]},
    ]}
    req = D.parse_request(copy.deepcopy(body))
    result = req.messages[1].parts[0]
    assert isinstance(result, ir.ToolResultPart)
    assert result.content == [ir.TextPart("here"), ir.ImagePart(media_type="image/jpeg", data=PNG)]
    assert result.name == "screenshot"
    assert D.render_request(req) == body


def test_response_format_reasoning_and_options() -> None:
    body = {
        "model": "o4", "input": "x", "max_output_tokens": 500, "temperature": 0.2, "top_p": 0.9,
        "user": "u-1", "metadata": {"k": "v"}, "reasoning": {"effort": "minimal", "context": "auto"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"},
                            "strict": True, "description": "the answer"}, "verbosity": "high"},
        "tool_choice": {"type": "function", "name": "f"},
        "tools": [{"type": "function", "name": "f", "parameters": None, "strict": True, "defer_loading": True}],
    }
    req = D.parse_request(copy.deepcopy(body))
    assert (req.max_tokens, req.temperature, req.top_p, req.user) == (500, 0.2, 0.9, "u-1")
    assert req.metadata == {"k": "v"}
    assert req.reasoning == ir.Reasoning(effort="minimal")
    assert req.response_format == ir.ResponseFormat(type="json_schema", schema={"type": "object"},
                                                    name="out", strict=True)
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="f")
    assert req.tools[0].kind == "function" and req.tools[0].raw is not None  # defer_loading kept
    assert D.render_request(req) == body


def test_unknown_tool_choice_kept_verbatim() -> None:
    choice = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}
    body = {"model": "m", "input": "x", "tools": [{"type": "web_search"}], "tool_choice": choice}
    req = D.parse_request(copy.deepcopy(body))
    assert req.tool_choice is None
    assert D.render_request(req) == body


@pytest.mark.parametrize(("body", "param"), [
    ([], None),
    ({"input": "x"}, "model"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user", "content": 3}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "input[0].content[0].text"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
     "input[0].content[0].image_url"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 1}]}, "input[0].output"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": [{"type": "summary_text"}]}]},
     "input[0].summary[0].text"),
    ({"model": "m", "input": ["text"]}, "input[0]"),
    ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "tools": [{"type": "function", "name": "f", "parameters": "x"}]}, "tools[0].parameters"),
    ({"model": "m", "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "max_output_tokens": "10"}, "max_output_tokens"),
    ({"model": "m", "max_output_tokens": True}, "max_output_tokens"),
    ({"model": "m", "temperature": "hot"}, "temperature"),
    ({"model": "m", "reasoning": {"effort": "galactic"}}, None),
    ({"model": "m", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "m", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"model": "m", "stream": "yes"}, "stream"),
])
def test_malformed_requests_raise_400(body: Any, param: str | None) -> None:
    with pytest.raises(ir.Error) as caught:
        D.parse_request(body)
    assert caught.value.status == 400 and caught.value.kind == "invalid_request"
    if param is not None:
        assert caught.value.param == param


# --------------------------------------------------------------------- requests: IR -> wire (foreign)


def foreign_request() -> ir.Request:
    """What an Anthropic/Gemini client's request looks like in the IR."""
    return ir.Request(
        model="gpt-5",
        system=[ir.TextPart("You are Claude Code.", cache_control={"type": "ephemeral"}),
                ir.TextPart("Be careful.")],
        messages=[
            ir.Message("user", [ir.TextPart("hi"), ir.ImagePart(media_type="image/png", data=PNG),
                                ir.ImagePart(url="https://x.test/a.png", detail="low"),
                                ir.DocumentPart(media_type="application/pdf", data=PDF, filename="r.pdf")]),
            ir.Message("assistant", [
                ir.ThinkingPart(text="pondering", signature="sig-anthropic"),
                ir.ThinkingPart(redacted="opaque"),
                ir.TextPart("calling"),
                ir.ToolCallPart(id="toolu_1", name="read", arguments='{"p":"a"}'),
                ir.ToolCallPart(id="toolu_2", name="read", arguments='{"p":"b"}'),
            ]),
            ir.Message("user", [
                ir.ToolResultPart("toolu_1", [ir.TextPart("A")]),
                ir.ToolResultPart("toolu_2", [ir.TextPart("B"), ir.ImagePart(media_type="image/png", data=PNG)],
                                  is_error=True),
                ir.TextPart("and now?"),
            ]),
            ir.Message("system", [ir.TextPart("Reminder: be brief.")]),
        ],
        tools=[ir.Tool("read", "Read a file", {"type": "object", "properties": {"p": {"type": "string"}}}),
               ir.Tool("web_search", kind="anthropic:web_search_20250305", raw={"type": "web_search_20250305"})],
        tool_choice=ir.ToolChoice("required"),
        max_tokens=1000, temperature=0.5, stop=["END"], seed=7, top_k=40,
        reasoning=ir.Reasoning(budget=10000), response_format=ir.ResponseFormat("json_object"),
        user="user-7", stream=True,
    )


def test_foreign_request_renders_valid_responses_body() -> None:
    body = D.render_request(foreign_request())
    validate_request(body)
    assert body["instructions"] == "You are Claude Code.\n\nBe careful."
    items = body["input"]
    assert items[0] == {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "hi"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "r.pdf"},
    ]}
    # Anthropic thinking (no encrypted content) is dropped: the API rejects reasoning it did not issue
    assert [i.get("type") for i in items[1:4]] == ["message", "function_call", "function_call"]
    assert items[1] == {"type": "message", "role": "assistant", "content": "calling"}
    assert items[2] == {"type": "function_call", "call_id": "toolu_1", "name": "read", "arguments": '{"p":"a"}'}
    assert items[4] == {"type": "function_call_output", "call_id": "toolu_1", "output": "A"}
    assert items[5]["output"] == [{"type": "input_text", "text": "B"},
                                  {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]
    assert items[6] == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and now?"}]}
    assert items[7] == {"type": "message", "role": "developer",
                        "content": [{"type": "input_text", "text": "Reminder: be brief."}]}
    assert body["tools"] == [{"type": "function", "name": "read", "description": "Read a file",
                              "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
                              "strict": False}]
    assert body["tool_choice"] == "required"
    assert body["reasoning"] == {"effort": "high"}  # 10000 tokens: above medium (8192), within high
    assert body["text"] == {"format": {"type": "json_object"}}
    assert body["max_output_tokens"] == 1000 and body["temperature"] == 0.5 and body["user"] == "user-7"
    assert body["stream"] is True
    for absent in ("stop", "seed", "top_k"):
        assert absent not in body


def test_reasoning_levels_follow_the_shared_table() -> None:
    def effort(setting: ir.Reasoning) -> Any:
        return D.render_request(ir.Request(model="m", reasoning=setting)).get("reasoning")

    assert effort(ir.Reasoning(budget=0)) == {"effort": "none"}
    assert effort(ir.Reasoning(budget=1024)) == {"effort": "low"}
    assert effort(ir.Reasoning(budget=20000)) == {"effort": "high"}
    assert effort(ir.Reasoning(budget=-1)) == {"effort": "medium"}  # auto
    assert effort(ir.Reasoning(effort="max")) == {"effort": "max"}  # a valid wire value passes through
    assert effort(ir.Reasoning(adaptive=True)) == {}
    assert effort(ir.Reasoning(effort="low", include_thoughts=True)) == {"effort": "low", "summary": "auto"}


def test_reasoning_item_renders_only_with_encrypted_content_or_issued_id() -> None:
    def render(part: ir.ThinkingPart) -> list[Any]:
        req = ir.Request(model="m", messages=[ir.Message("assistant", [part, ir.TextPart("x")])])
        return [i for i in D.render_request(req)["input"] if i["type"] == "reasoning"]

    assert render(ir.ThinkingPart(text="t", signature="s")) == []
    assert render(ir.ThinkingPart(text="t", encrypted="E")) == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "E"}]
    stored = ir.ThinkingPart(text="", extra={NAME: {"id": "rs_abc", "summary_lengths": []}})
    assert render(stored) == [{"id": "rs_abc", "type": "reasoning", "summary": []}]
    # a reasoning item we synthesised for a client (id rs_x...) is never sent upstream
    synthesised = D.render_response(ir.Response(id="r", model="m", parts=[ir.ThinkingPart(text="t")]))
    echoed = D.parse_request({"model": "m", "input": synthesised["output"]})
    assert "input" not in D.render_request(echoed)


def test_foreign_tool_of_other_dialect_is_dropped_own_kind_kept() -> None:
    req = ir.Request(model="m", tools=[
        ir.Tool("gs", kind="gemini:googleSearch", raw={"googleSearch": {}}),
        ir.Tool("web_search", kind="openai-responses:web_search", raw={"type": "web_search"}),
    ])
    assert D.render_request(req)["tools"] == [{"type": "web_search"}]


def test_tool_choice_required_without_tools_is_omitted() -> None:
    req = ir.Request(model="m", tool_choice=ir.ToolChoice("required"),
                     tools=[ir.Tool("x", kind="anthropic:bash_20250124", raw={"type": "bash_20250124"})])
    assert "tool_choice" not in D.render_request(req)


def test_dialect_registry_finds_it() -> None:
    assert get("openai-responses") is DIALECT
    assert DIALECT.name == "openai-responses"


# --------------------------------------------------------------------- responses

SDK_RESPONSE: dict[str, Any] = {
    "id": "resp_68ab", "object": "response", "created_at": 1756000000, "status": "completed",
    "background": False, "error": None, "incomplete_details": None, "instructions": None,
    "max_output_tokens": None, "model": "gpt-5-2025-08-07",
    "output": [
        {"id": "rs_68ab1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Think"}],
         "encrypted_content": "gAAAA"},
        {"id": "msg_68ab2", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Let me check."}]},
        {"id": "fc_68ab3", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Oslo\"}",
         "call_id": "call_W", "name": "weather"},
    ],
    "parallel_tool_calls": True, "previous_response_id": None, "reasoning": {"effort": "medium", "summary": None},
    "service_tier": "default", "store": True, "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
    "tools": [{"type": "function", "name": "weather", "description": None, "parameters": {"type": "object"},
               "strict": True}],
    "top_p": 1.0, "truncation": "disabled",
    "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
              "output_tokens": 70, "output_tokens_details": {"reasoning_tokens": 50}, "total_tokens": 190},
    "user": None, "metadata": {},
}


def test_sdk_response_parses_into_the_ir() -> None:
    Response.model_validate(SDK_RESPONSE)  # the fixture itself is a valid SDK Response
    resp = D.parse_response(copy.deepcopy(SDK_RESPONSE))
    assert (resp.id, resp.model, resp.created) == ("resp_68ab", "gpt-5-2025-08-07", 1756000000)
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(input_tokens=120, output_tokens=70, cache_read_tokens=100,
                                  cache_write_tokens=0, reasoning_tokens=50)
    thinking, text, call = resp.parts
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "Think" and thinking.encrypted == "gAAAA"
    assert isinstance(text, ir.TextPart) and text.text == "Let me check."
    assert isinstance(call, ir.ToolCallPart)
    assert (call.id, call.name, call.arguments) == ("call_W", "weather", '{"city":"Oslo"}')
    assert call.extra == {NAME: {"id": "fc_68ab3", "status": "completed"}}


def test_sdk_response_round_trips_exactly() -> None:
    assert D.render_response(D.parse_response(copy.deepcopy(SDK_RESPONSE))) == SDK_RESPONSE


def test_foreign_response_renders_a_valid_sdk_response() -> None:
    resp = ir.Response(id="msg_01abc", model="claude-x", parts=[
        ir.ThinkingPart(text="hmm", signature="sig"),
        ir.ThinkingPart(redacted="zzz"),
        ir.TextPart("Hello"),
        ir.ToolCallPart(id="toolu_9", name="f", arguments="{}"),
    ], stop_reason="tool_use", usage=ir.Usage(input_tokens=11, output_tokens=3))
    body = D.render_response(resp)
    parsed = Response.model_validate(body)
    assert parsed.status == "completed" and parsed.output_text == "Hello"
    assert [o.type for o in parsed.output] == ["reasoning", "message", "function_call"]
    assert body["output"][0]["summary"] == [{"type": "summary_text", "text": "hmm"}]
    assert body["output"][0]["id"].startswith("rs_x")  # synthesised, recognisable as such
    assert body["output"][1]["id"].startswith("msg_") and body["output"][2]["id"].startswith("fc_")
    assert body["output"][2]["call_id"] == "toolu_9"
    # None counts render as 0 only where the SDK requires the field
    assert body["usage"] == {"input_tokens": 11, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                             "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0},
                             "total_tokens": 14}


@pytest.mark.parametrize(("stop", "status", "incomplete"), [
    ("end_turn", "completed", None),
    ("tool_use", "completed", None),
    ("stop_sequence", "completed", None),
    ("max_tokens", "incomplete", {"reason": "max_output_tokens"}),
    ("content_filter", "incomplete", {"reason": "content_filter"}),
    ("error", "failed", None),
])
def test_stop_reasons_render_as_status(stop: ir.StopReason, status: str, incomplete: Any) -> None:
    body = D.render_response(ir.Response(id="resp_1", model="m", parts=[ir.TextPart("x")], stop_reason=stop))
    Response.model_validate(body)
    assert (body["status"], body["incomplete_details"]) == (status, incomplete)


@pytest.mark.parametrize(("status", "incomplete", "output", "stop"), [
    ("completed", None, [], "end_turn"),
    ("completed", None, [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}], "tool_use"),
    ("completed", None, [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                          "content": [{"type": "refusal", "refusal": "no"}]}], "refusal"),
    ("incomplete", {"reason": "max_output_tokens"}, [], "max_tokens"),
    ("incomplete", {"reason": "content_filter"}, [], "content_filter"),
    ("failed", None, [], "error"),
    ("in_progress", None, [], None),
])
def test_status_parses_to_stop_reason(status: str, incomplete: Any, output: list[Any], stop: Any) -> None:
    body = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": status,
            "incomplete_details": incomplete, "output": output}
    resp = D.parse_response(body)
    assert resp.stop_reason == stop
    assert D.render_response(resp)["status"] == status


def test_refusal_text_round_trips_as_refusal_part() -> None:
    body = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed",
            "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "refusal", "refusal": "I can't."}]}]}
    resp = D.parse_response(copy.deepcopy(body))
    part = resp.parts[0]
    assert isinstance(part, ir.TextPart) and part.text == "I can't."  # other dialects see plain text
    assert resp.stop_reason == "refusal"
    assert D.render_response(resp)["output"] == body["output"]


def test_malformed_upstream_response_is_a_502() -> None:
    with pytest.raises(ir.Error) as caught:
        D.parse_response({"output": [{"type": "function_call", "name": "f"}]})
    assert caught.value.status == 502


# --------------------------------------------------------------------- stream decoding

REALISTIC_STREAM = sse_text(
    {"type": "response.created", "response": {"id": "resp_9", "object": "response", "created_at": 1,
                                              "status": "in_progress", "model": "gpt-5", "output": []}},
    {"type": "response.in_progress", "response": {"id": "resp_9", "object": "response", "created_at": 1,
                                                  "status": "in_progress", "model": "gpt-5", "output": []}},
    {"type": "response.output_item.added", "output_index": 0,
     "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "part": {"type": "summary_text", "text": ""}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "delta": "**Plan**"},
    {"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "text": "**Plan**"},
    {"type": "response.reasoning_summary_part.done", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "part": {"type": "summary_text", "text": "**Plan**"}},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0, "summary_index": 1,
     "part": {"type": "summary_text", "text": ""}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 1,
     "delta": "check weather"},
    {"type": "response.output_item.done", "output_index": 0,
     "item": {"id": "rs_1", "type": "reasoning", "encrypted_content": "gAAAAfull",
              "summary": [{"type": "summary_text", "text": "**Plan**"},
                          {"type": "summary_text", "text": "check weather"}]}},
    {"type": "response.output_item.added", "output_index": 1,
     "item": {"id": "msg_2", "type": "message", "status": "in_progress", "content": [], "role": "assistant",
              "phase": "commentary"}},
    {"type": "response.content_part.added", "item_id": "msg_2", "output_index": 1, "content_index": 0,
     "part": {"type": "output_text", "annotations": [], "text": ""}},
    {"type": "response.output_text.delta", "item_id": "msg_2", "output_index": 1, "content_index": 0,
     "delta": "Checking", "logprobs": []},
    {"type": "response.output_text.delta", "item_id": "msg_2", "output_index": 1, "content_index": 0,
     "delta": " now.", "logprobs": []},
    {"type": "response.output_text.done", "item_id": "msg_2", "output_index": 1, "content_index": 0,
     "text": "Checking now.", "logprobs": []},
    {"type": "response.content_part.done", "item_id": "msg_2", "output_index": 1, "content_index": 0,
     "part": {"type": "output_text", "annotations": [], "text": "Checking now."}},
    {"type": "response.output_item.done", "output_index": 1,
     "item": {"id": "msg_2", "type": "message", "status": "completed", "role": "assistant",
              "content": [{"type": "output_text", "annotations": [], "text": "Checking now."}]}},
    {"type": "response.output_item.added", "output_index": 2,
     "item": {"id": "fc_3", "type": "function_call", "status": "in_progress", "arguments": "",
              "call_id": "call_3", "name": "weather"}},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_3", "output_index": 2, "delta": "{\"city\":"},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_3", "output_index": 2, "delta": "\"Oslo\"}"},
    {"type": "response.function_call_arguments.done", "item_id": "fc_3", "output_index": 2,
     "arguments": "{\"city\":\"Oslo\"}"},
    {"type": "response.output_item.done", "output_index": 2,
     "item": {"id": "fc_3", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Oslo\"}",
              "call_id": "call_3", "name": "weather"}},
    {"type": "response.completed", "response": {
        "id": "resp_9", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-5",
        "output": [], "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20},
                                "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12},
                                "total_tokens": 80}}},
)


def test_decoder_turns_a_realistic_stream_into_ir_events() -> None:
    events = decode(REALISTIC_STREAM)
    check_grammar(events)
    start = events[0]
    assert isinstance(start, ir.Start) and (start.id, start.model) == ("resp_9", "gpt-5")
    # text and argument deltas stream through one by one
    deltas = [e.text for e in events if isinstance(e, ir.PartDelta)]
    assert deltas == ["**Plan**\n\ncheck weather", "Checking", " now.", '{"city":', '"Oslo"}']
    starts = [e for e in events if isinstance(e, ir.PartStart)]
    assert isinstance(starts[0].part, ir.ThinkingPart) and starts[0].part.encrypted == "gAAAAfull"
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    resp = assembler.response()
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(input_tokens=50, output_tokens=30, cache_read_tokens=20, reasoning_tokens=12)
    thinking, text, call = resp.parts
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "**Plan**\n\ncheck weather"
    assert thinking.encrypted == "gAAAAfull"
    assert isinstance(text, ir.TextPart) and text.text == "Checking now."
    assert isinstance(call, ir.ToolCallPart)
    assert (call.id, call.name, call.arguments) == ("call_3", "weather", '{"city":"Oslo"}')
    # the assembled response renders back as the same output items
    out = D.render_response(resp)["output"]
    assert out[0] == {"id": "rs_1", "type": "reasoning", "encrypted_content": "gAAAAfull",
                      "summary": [{"type": "summary_text", "text": "**Plan**"},
                                  {"type": "summary_text", "text": "check weather"}]}
    assert out[1]["id"] == "msg_2" and out[1]["phase"] == "commentary"
    assert out[2]["id"] == "fc_3" and out[2]["call_id"] == "call_3"


def test_decoder_uses_done_events_when_a_server_skips_deltas() -> None:
    events = decode(sse_text(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "m1", "type": "message", "role": "assistant", "content": []}},
        {"type": "response.output_text.done", "item_id": "m1", "output_index": 0, "content_index": 0,
         "text": "whole"},
        {"type": "response.output_item.done", "output_index": 1,
         "item": {"id": "f1", "type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}},
        {"type": "response.completed", "response": {"id": "r", "status": "completed"}},
    ))
    check_grammar(events)
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    resp = assembler.response()
    assert [getattr(p, "text", getattr(p, "arguments", None)) for p in resp.parts] == ["whole", "{}"]
    assert resp.stop_reason == "tool_use"


def test_decoder_takes_output_from_the_final_event_when_no_items_streamed() -> None:
    events = decode(sse_text(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.completed", "response": copy.deepcopy(SDK_RESPONSE)},
    ))
    check_grammar(events)
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    resp = assembler.response()
    assert [type(p).__name__ for p in resp.parts] == ["ThinkingPart", "TextPart", "ToolCallPart"]
    assert resp.stop_reason == "tool_use" and resp.usage is not None and resp.usage.input_tokens == 120


def test_decoder_incomplete_maps_to_max_tokens() -> None:
    events = decode(sse_text(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.incomplete", "response": {"id": "r",
                                                     "incomplete_details": {"reason": "max_output_tokens"}}},
    ))
    assert isinstance(events[-1], ir.Finish) and events[-1].stop_reason == "max_tokens"


def test_cut_stream_ends_with_an_error_event() -> None:
    events = decode(REALISTIC_STREAM[:14])
    last = events[-1]
    assert isinstance(last, ir.ErrorEvent)
    assert (last.error.status, last.error.kind) == (502, "server_error")
    assert "ended before completion" in last.error.message


def test_completed_stream_close_adds_nothing() -> None:
    decoder = D.stream_decoder()
    for name, data in REALISTIC_STREAM:
        decoder.feed(name, data)
    assert decoder.close() == []


def test_response_failed_becomes_error_event() -> None:
    events = decode(sse_text(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.failed", "response": {"id": "r", "status": "failed", "error": {
            "code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}}},
    ))
    last = events[-1]
    assert isinstance(last, ir.ErrorEvent)
    assert (last.error.status, last.error.kind, last.error.code) == (429, "rate_limit", "rate_limit_exceeded")
    assert last.error.retry_after == pytest.approx(1.5)


def test_error_event_becomes_error_event() -> None:
    events = decode(sse_text(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "error", "code": "context_length_exceeded", "message": "too long", "param": "input"},
    ))
    last = events[-1]
    assert isinstance(last, ir.ErrorEvent)
    assert (last.error.status, last.error.message, last.error.param) == (400, "too long", "input")


# --------------------------------------------------------------------- stream encoding


def sample_response() -> ir.Response:
    return ir.Response(
        id="resp_s", model="upstream-model",
        parts=[ir.ThinkingPart(text="plan", encrypted="ENC", extra={NAME: {"id": "rs_77"}}),
               ir.TextPart("Hello "),
               ir.ToolCallPart(id="call_1", name="f", arguments='{"a":1}'),
               ir.ToolCallPart(id="call_2", name="g", arguments="{}")],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=9, output_tokens=4, cache_read_tokens=2, reasoning_tokens=1),
    )


def test_encoder_emits_the_exact_event_order_codex_expects() -> None:
    data = encode_all(assemble.events_for(sample_response()))
    parsed = frames(data)
    types = [p["type"] for _, p in parsed]
    assert types == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]
    assert [name for name, _ in parsed] == types  # `event:` lines match the payload type
    assert [p["sequence_number"] for _, p in parsed] == list(range(len(parsed)))
    for _, payload in parsed:
        event = _STREAM_EVENT.validate_python(payload)
        assert event.type == payload["type"]
    completed = parsed[-1][1]["response"]
    assert completed["model"] == "gpt-test" and completed["id"] == "resp_s"
    assert [o["type"] for o in completed["output"]] == ["reasoning", "message", "function_call", "function_call"]
    assert completed["output"][0]["encrypted_content"] == "ENC" and completed["output"][0]["id"] == "rs_77"
    assert completed["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert completed["usage"]["total_tokens"] == 13
    output_indexes = [p["output_index"] for _, p in parsed if p["type"] == "response.output_item.added"]
    assert output_indexes == [0, 1, 2, 3]


def test_encoder_is_incremental() -> None:
    encoder = D.stream_encoder(model="m")
    assert b"response.created" in encoder.encode(ir.Start(id="resp_1", model="x"))
    assert b"response.output_item.added" in encoder.encode(ir.PartStart(0, ir.TextPart("")))
    chunk = encoder.encode(ir.PartDelta(0, text="Hi"))
    assert frames(chunk)[0][1]["delta"] == "Hi"


def test_sdk_stream_helper_accepts_encoder_output() -> None:
    data = encode_all(assemble.events_for(sample_response()))
    client = sdk_client(lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                                        content=data))
    with client.responses.stream(model="gpt-test", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed"
    assert final.output_text == "Hello "
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call", "function_call"]
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [("call_1", "f", '{"a":1}'), ("call_2", "g", "{}")]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 1


def test_sdk_parses_rendered_non_stream_response() -> None:
    body = orjson.dumps(D.render_response(sample_response()))
    client = sdk_client(lambda request: httpx2.Response(200, headers={"content-type": "application/json"},
                                                        content=body))
    result = client.responses.create(model="gpt-test", input="hi")
    assert result.output_text == "Hello " and result.status == "completed"


def test_encoder_echoes_request_settings() -> None:
    req = D.parse_request(copy.deepcopy(CODEX_REQUEST))
    data = encode_all(assemble.events_for(sample_response()), request=req)
    created = frames(data)[0][1]["response"]
    assert created["tools"] == CODEX_REQUEST["tools"]
    assert created["parallel_tool_calls"] is True and created["tool_choice"] == "auto"


def test_encoder_max_tokens_finishes_with_response_incomplete() -> None:
    resp = ir.Response(id="r", model="m", parts=[ir.TextPart("cut")], stop_reason="max_tokens",
                       usage=ir.Usage(1, 2))
    last = frames(encode_all(assemble.events_for(resp)))[-1][1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    _STREAM_EVENT.validate_python(last)


def test_encoder_mid_stream_error_emits_error_and_response_failed() -> None:
    events: list[ir.Event] = [ir.Start(id="resp_e", model="m"), ir.PartStart(0, ir.TextPart("")),
                              ir.PartDelta(0, text="partial"),
                              ir.ErrorEvent(ir.Error(429, "rate_limit", "slow down"))]
    data = encode_all(events)
    parsed = frames(data)
    assert [p["type"] for _, p in parsed][-2:] == ["error", "response.failed"]
    for _, payload in parsed:
        _STREAM_EVENT.validate_python(payload)
    assert parsed[-2][1]["message"] == "slow down"
    failed = parsed[-1][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    # our own decoder reads it back as the same kind of error
    last = decode_frames(data)[-1]
    assert isinstance(last, ir.ErrorEvent) and last.error.kind == "rate_limit"


def test_encoder_error_before_start_still_opens_with_response_created() -> None:
    data = encode_all([ir.ErrorEvent(ir.Error(500, "server_error", "boom"))])
    types = [p["type"] for _, p in frames(data)]
    assert types == ["response.created", "response.in_progress", "error", "response.failed"]


def test_encoder_close_without_finish_fails_the_response() -> None:
    encoder = D.stream_encoder(model="m")
    encoder.encode(ir.Start(id="r", model="m"))
    encoder.encode(ir.PartStart(0, ir.TextPart("")))
    tail = frames(encoder.close())
    assert tail[-1][1]["type"] == "response.failed"
    assert encoder.close() == b""


def test_encoder_skips_redacted_thinking_and_signatures() -> None:
    events: list[ir.Event] = [
        ir.Start(id="r", model="m"),
        ir.PartStart(0, ir.ThinkingPart(redacted="opaque")), ir.PartStop(0),
        ir.PartStart(1, ir.ThinkingPart()), ir.PartDelta(1, text="t"), ir.PartDelta(1, signature="sig"),
        ir.PartStop(1),
        ir.Finish("end_turn"),
    ]
    completed = frames(encode_all(events))[-1][1]["response"]
    assert completed["output"] == [{"id": completed["output"][0]["id"], "type": "reasoning",
                                    "summary": [{"type": "summary_text", "text": "t"}]}]
    assert completed["usage"] is None


def test_encoder_keeps_item_ids_unique() -> None:
    head = {NAME: {"item": {"id": "msg_same"}}}
    events: list[ir.Event] = [ir.Start(id="r", model="m"),
                              ir.PartStart(0, ir.TextPart("", extra=head)), ir.PartStop(0),
                              ir.PartStart(1, ir.TextPart("", extra=head)), ir.PartStop(1),
                              ir.Finish("end_turn")]
    output = frames(encode_all(events))[-1][1]["response"]["output"]
    assert output[0]["id"] == "msg_same" and output[1]["id"] != "msg_same"


# --------------------------------------------------------------------- errors


def test_render_error_uses_openai_error_shape() -> None:
    status, body = D.render_error(ir.Error(429, "rate_limit", "Too many", retry_after=3))
    assert status == 429
    assert body == {"error": {"message": "Too many", "type": "rate_limit_error", "param": None,
                              "code": "rate_limit_exceeded"}}
    status, body = D.render_error(ir.bad_request("bad input", "input[0]"))
    assert (status, body["error"]["type"], body["error"]["param"]) == (400, "invalid_request_error", "input[0]")


@pytest.mark.parametrize("error", [
    ir.Error(400, "invalid_request", "x", param="model"),
    ir.Error(401, "authentication", "who?"),
    ir.Error(403, "permission", "no"),
    ir.Error(404, "not_found", "gone", code="model_not_found"),
    ir.Error(429, "rate_limit", "slow"),
    ir.Error(500, "server_error", "oops"),
    ir.Error(503, "overloaded", "busy"),
])
def test_rendered_errors_parse_back(error: ir.Error) -> None:
    status, body = D.render_error(error)
    back = D.parse_error(status, orjson.dumps(body))
    assert (back.status, back.kind, back.message, back.param) == (error.status, error.kind, error.message,
                                                                 error.param)


def test_parse_error_reads_retry_hints_from_bodies() -> None:
    body = orjson.dumps({"error": {"message": "Rate limit reached. Please try again in 1m30.5s.",
                                   "type": "tokens", "param": None, "code": "rate_limit_exceeded"}})
    error = D.parse_error(429, body)
    assert error.kind == "rate_limit" and error.code == "rate_limit_exceeded"
    assert error.retry_after == pytest.approx(90.5)
    codex = orjson.dumps({"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 1200}})
    error = D.parse_error(429, codex)
    assert error.retry_after == 1200 and error.code == "usage_limit_reached"
    assert D.parse_error(429, orjson.dumps({"error": {"message": "x in 20ms", "code": None}})).retry_after is None
    assert D.parse_error(429, orjson.dumps(
        {"error": {"message": "Please try again in 250ms"}})).retry_after == pytest.approx(0.25)


def test_parse_error_is_robust_to_odd_bodies() -> None:
    assert D.parse_error(502, b"<html>Bad Gateway</html>").message == "<html>Bad Gateway</html>"
    assert D.parse_error(503, b"").message == "upstream returned HTTP 503"
    assert D.parse_error(503, b"").kind == "overloaded"
    assert D.parse_error(401, b'{"detail": "Unauthorized"}').message == "Unauthorized"
    assert D.parse_error(400, b'{"error": "plain string"}').message == "plain string"
    assert D.parse_error(400, b"[1,2]").kind == "invalid_request"


# --------------------------------------------------------------------- property tests

_hex = st.text(alphabet="0123456789abcdef", min_size=4, max_size=8)
_text = st.text(max_size=12)
_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_b64 = st.binary(min_size=1, max_size=8).map(lambda b: base64.b64encode(b).decode())


def _input_text() -> st.SearchStrategy[dict[str, Any]]:
    plain = st.builds(lambda t: {"type": "input_text", "text": t}, _text)
    cached = st.builds(lambda t: {"type": "input_text", "text": t,
                                  "prompt_cache_breakpoint": {"mode": "explicit"}}, _text)
    return st.one_of(plain, cached)


_image = st.one_of(
    st.builds(lambda mt, d, detail: {"type": "input_image", "image_url": f"data:{mt};base64,{d}", "detail": detail},
              st.sampled_from(["image/png", "image/jpeg", "image/webp"]), _b64,
              st.sampled_from(["auto", "low", "high"])),
    st.builds(lambda h, detail: {"type": "input_image", "image_url": f"https://img.test/{h}.png", "detail": detail},
              _hex, st.sampled_from(["auto", "low"])),
    st.builds(lambda h: {"type": "input_image", "file_id": f"file-{h}", "detail": "auto"}, _hex),
)
_file = st.one_of(
    st.builds(lambda d, n: {"type": "input_file", "file_data": f"data:application/pdf;base64,{d}",
                            "filename": f"{n}.pdf"}, _b64, _name),
    st.builds(lambda h: {"type": "input_file", "file_url": f"https://files.test/{h}.pdf"}, _hex),
)
_user_content = st.one_of(_text, st.lists(st.one_of(_input_text(), _image, _file), max_size=3))


def _maybe(key: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), strategy.map(lambda v: {key: v}))


def _message(role: str, content: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda typed, c: {**typed, "role": role, "content": c},
                     st.sampled_from([{}, {"type": "message"}]), content)


_output_text = st.one_of(
    st.builds(lambda t: {"type": "output_text", "text": t, "annotations": []}, _text),
    st.builds(lambda t: {"type": "output_text", "text": t}, _text),
    st.builds(lambda t: {"type": "refusal", "refusal": t}, _text),
)
_assistant = st.builds(
    lambda ident, phase, content: {"type": "message", "role": "assistant", **ident, **phase, "content": content},
    _maybe("id", _hex.map(lambda h: f"msg_{h}")), _maybe("phase", st.sampled_from(["commentary", "final_answer"])),
    st.one_of(_text, st.lists(_output_text, min_size=1, max_size=3)),
)
_summary = st.lists(st.builds(lambda t: {"type": "summary_text", "text": t}, st.text(max_size=10)), max_size=3)
_reasoning_item = st.one_of(
    st.builds(lambda h, s, e: {"type": "reasoning", "id": f"rs_{h}", "summary": s, **e},
              _hex, _summary, _maybe("encrypted_content", _b64)),
    st.builds(lambda s, e: {"type": "reasoning", "summary": s, "encrypted_content": e}, _summary, _b64),
)
_raw_item = st.one_of(
    st.builds(lambda h: {"type": "web_search_call", "id": f"ws_{h}", "status": "completed",
                         "action": {"type": "search", "query": "q"}}, _hex),
    st.builds(lambda h: {"type": "item_reference", "id": f"msg_{h}"}, _hex),
    st.builds(lambda h: {"id": f"rs_{h}"}, _hex),
    st.builds(lambda t: {"type": "compaction", "encrypted_content": t}, _b64),
)


@st.composite
def _call_and_output(draw: st.DrawFn, counter: list[int]) -> list[dict[str, Any]]:
    counter[0] += 1
    call_id = f"call_{counter[0]}"
    call = {"type": "function_call", "call_id": call_id, "name": draw(_name),
            "arguments": orjson.dumps(draw(st.dictionaries(_name, st.integers(-1000, 1000), max_size=2))).decode(),
            **draw(_maybe("id", _hex.map(lambda h: f"fc_{h}"))),
            **draw(_maybe("status", st.just("completed")))}
    output: Any = draw(st.one_of(_text, st.lists(st.one_of(_input_text(), _image), max_size=2)))
    result = {"type": "function_call_output", "call_id": call_id, "output": output,
              **draw(_maybe("name", _name))}
    return [call, result] if draw(st.booleans()) else [call]


@st.composite
def wire_requests(draw: st.DrawFn) -> dict[str, Any]:
    counter = [0]
    body: dict[str, Any] = {"model": draw(st.sampled_from(["gpt-5", "gpt-4.1-mini", "o3"]))}
    if draw(st.booleans()):
        body["instructions"] = draw(_text)
    if draw(st.integers(0, 5)) == 0:
        body["input"] = draw(_text)
    else:
        items: list[dict[str, Any]] = []
        items += draw(st.lists(_message(draw(st.sampled_from(["system", "developer"])), _user_content),
                               max_size=2))
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.sampled_from(["user", "assistant", "calls", "reasoning", "system", "raw"]))
            if kind == "user":
                items.append(draw(_message("user", _user_content)))
            elif kind == "assistant":
                items.append(draw(_assistant))
            elif kind == "calls":
                pairs = draw(st.lists(_call_and_output(counter), min_size=1, max_size=3))
                calls = [p[0] for p in pairs]
                outputs = [p[1] for p in pairs if len(p) == 2]
                if draw(st.booleans()):  # a verbatim item among the calls or the outputs
                    at = draw(st.integers(0, len(calls) + len(outputs)))
                    group = calls + outputs
                    group.insert(at, draw(_raw_item))
                    items += group
                else:
                    items += calls + outputs
            elif kind == "reasoning":
                items.append(draw(_reasoning_item))
            elif kind == "system":
                items.append(draw(_message("developer", _user_content)))
            else:
                items.append(draw(_raw_item))
        body["input"] = items
    function_tool = st.builds(
        lambda n, d, strict, extra: {"type": "function", "name": n, **d, "strict": strict, **extra,
                                     "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}},
        _name, _maybe("description", _text), st.booleans(), _maybe("defer_loading", st.booleans()))
    raw_tool = st.sampled_from([{"type": "web_search"}, {"type": "local_shell"},
                                {"type": "custom", "name": "apply_patch", "description": "p"}])
    tools = draw(st.lists(st.one_of(function_tool, raw_tool), max_size=3))
    if tools:
        body["tools"] = tools
        body["tool_choice"] = draw(st.one_of(
            st.sampled_from(["auto", "none", "required"]),
            st.just({"type": "function", "name": "pick"}), st.just({"type": "web_search"})))
    for key, strategy in [
        ("parallel_tool_calls", st.booleans()), ("max_output_tokens", st.integers(1, 100000)),
        ("temperature", st.floats(0, 2)), ("top_p", st.floats(0, 1)), ("stream", st.booleans()),
        ("reasoning", st.fixed_dictionaries({}, optional={
            "effort": st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
            "summary": st.sampled_from(["auto", "concise", "detailed"]),
            "context": st.just("auto")})),
        ("text", st.fixed_dictionaries({}, optional={
            "format": st.one_of(st.just({"type": "text"}), st.just({"type": "json_object"}),
                                st.builds(lambda n, s, strict, d: {"type": "json_schema", "name": n, "schema": s,
                                                                   **strict, **d},
                                          _name, st.just({"type": "object"}), _maybe("strict", st.booleans()),
                                          _maybe("description", _text))),
            "verbosity": st.sampled_from(["low", "medium", "high"])}).filter(bool)),
        ("user", _text), ("metadata", st.dictionaries(_name, _text, max_size=2)),
        ("store", st.booleans()), ("include", st.just(["reasoning.encrypted_content"])),
        ("prompt_cache_key", _text), ("previous_response_id", st.none()), ("truncation", st.just("auto")),
        ("client_metadata", st.dictionaries(_name, _text, max_size=1)),
    ]:
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire_requests())
def test_property_request_round_trip(body: dict[str, Any]) -> None:
    """render(parse(body)) == body. Normalisations baked into the strategy (each a field the
    SDK requires): input_image always has `detail`, function tools always have `parameters`
    and a boolean `strict`."""
    snapshot = copy.deepcopy(body)
    request = D.parse_request(body)
    assert body == snapshot  # parsing never mutates the client's body
    assert D.render_request(request) == snapshot


_output_item = st.one_of(
    st.builds(lambda h, s, e: {"id": f"rs_{h}", "type": "reasoning", "summary": s, **e},
              _hex, _summary, _maybe("encrypted_content", _b64)),
    st.builds(lambda h, phase, content: {"id": f"msg_{h}", "type": "message", "status": "completed",
                                         "role": "assistant", **phase, "content": content},
              _hex, _maybe("phase", st.sampled_from(["commentary", "final_answer"])),
              st.lists(st.one_of(
                  st.builds(lambda t: {"type": "output_text", "annotations": [], "text": t}, _text),
                  st.builds(lambda t: {"type": "output_text", "annotations": [], "logprobs": [], "text": t},
                            _text),
                  st.builds(lambda t: {"type": "refusal", "refusal": t}, _text)), min_size=1, max_size=2)),
    st.builds(lambda h, n, a: {"id": f"fc_{h}", "type": "function_call", "status": "completed", "arguments": a,
                               "call_id": f"call_{h}", "name": n}, _hex, _name, st.just('{"k": 1}')),
    st.builds(lambda h: {"id": f"ws_{h}", "type": "web_search_call", "status": "completed",
                         "action": {"type": "search", "query": "q"}}, _hex),
)


@st.composite
def wire_responses(draw: st.DrawFn) -> dict[str, Any]:
    status, incomplete = draw(st.sampled_from([
        ("completed", None), ("incomplete", {"reason": "max_output_tokens"}),
        ("incomplete", {"reason": "content_filter"})]))
    input_tokens = draw(st.integers(0, 10000))
    output_tokens = draw(st.integers(0, 10000))
    return {
        "id": f"resp_{draw(_hex)}", "object": "response", "created_at": draw(st.integers(1, 2_000_000_000)),
        "status": status, "error": None, "incomplete_details": incomplete, "instructions": None,
        "metadata": draw(st.dictionaries(_name, _text, max_size=1)), "model": draw(_name),
        "output": draw(st.lists(_output_item, max_size=4)),
        "parallel_tool_calls": draw(st.booleans()), "tool_choice": draw(st.sampled_from(["auto", "none"])),
        "tools": [], **draw(_maybe("temperature", st.floats(0, 2))), **draw(_maybe("store", st.booleans())),
        "usage": {"input_tokens": input_tokens,
                  "input_tokens_details": {"cached_tokens": draw(st.integers(0, input_tokens)),
                                           "cache_write_tokens": draw(st.integers(0, 5))},
                  "output_tokens": output_tokens,
                  "output_tokens_details": {"reasoning_tokens": draw(st.integers(0, output_tokens))},
                  "total_tokens": input_tokens + output_tokens},
    }


@settings(max_examples=200, deadline=None)
@given(wire_responses())
def test_property_response_round_trip(body: dict[str, Any]) -> None:
    Response.model_validate(body)
    snapshot = copy.deepcopy(body)
    rendered = D.render_response(D.parse_response(body))
    assert rendered == snapshot
    Response.model_validate(rendered)


_ir_part = st.one_of(
    st.builds(lambda t: ir.TextPart(t), st.text(max_size=15)),
    st.builds(lambda t, e: ir.ThinkingPart(text=t, encrypted=e), st.text(max_size=15), st.one_of(st.none(), _b64)),
    st.builds(lambda h, n, a: ir.ToolCallPart(id=f"call_{h}", name=n, arguments=a), _hex, _name,
              st.sampled_from(["{}", '{"a": [1, 2]}', ""])),
)


@st.composite
def ir_responses(draw: st.DrawFn) -> ir.Response:
    parts: list[ir.Part] = list(draw(st.lists(_ir_part, max_size=5)))
    has_call = any(isinstance(p, ir.ToolCallPart) for p in parts)
    stops: list[ir.StopReason] = ["max_tokens", "content_filter", "tool_use" if has_call else "end_turn"]
    stop = draw(st.sampled_from(stops))
    usage = draw(st.one_of(st.none(), st.builds(ir.Usage, st.integers(0, 999), st.integers(0, 999),
                                                st.integers(0, 9), st.integers(0, 9), st.integers(0, 9))))
    return ir.Response(id=f"resp_{draw(_hex)}", model="m", parts=parts, stop_reason=stop, usage=usage)


@settings(max_examples=200, deadline=None)
@given(ir_responses())
def test_property_stream_encode_then_decode(resp: ir.Response) -> None:
    """Every frame the encoder writes is a valid SDK stream event, and decoding the frames
    gives back the same response."""
    data = encode_all(assemble.events_for(resp))
    for _, payload in frames(data):
        _STREAM_EVENT.validate_python(payload)
    events = decode_frames(data)
    check_grammar(events)
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    back = assembler.response()
    assert back.id == resp.id and back.stop_reason == resp.stop_reason
    assert len(back.parts) == len(resp.parts)
    for got, want in zip(back.parts, resp.parts, strict=True):
        assert type(got) is type(want)
        if isinstance(want, ir.ToolCallPart):
            assert isinstance(got, ir.ToolCallPart)
            assert (got.id, got.name, got.arguments) == (want.id, want.name, want.arguments)
        elif isinstance(want, ir.ThinkingPart):
            assert isinstance(got, ir.ThinkingPart)
            assert (got.text, got.encrypted) == (want.text, want.encrypted)
        else:
            assert isinstance(got, ir.TextPart) and got.text == want.text  # type: ignore[union-attr]
    if resp.usage is None:
        assert back.usage is None
    else:
        assert back.usage is not None
        assert (back.usage.input_tokens, back.usage.output_tokens, back.usage.cache_read_tokens) == (
            resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cache_read_tokens)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire_requests())
def test_property_rendered_foreign_view_is_sdk_valid(body: dict[str, Any]) -> None:
    """A request re-rendered after losing this dialect's extras (as when it arrives from
    another dialect) is still a valid Responses body."""
    request = D.parse_request(body)
    request.extra.clear()
    for message in request.messages:
        message.extra = None
        for part in message.parts:
            if isinstance(part, ir.TextPart | ir.ThinkingPart | ir.ToolCallPart):
                part.extra = None
    for part in request.system:
        part.extra = None
    for tool in request.tools:
        if tool.kind == "function":
            tool.raw = None
    rendered = D.render_request(request)
    validate_request(rendered)


def test_delta_frames_are_the_events_the_sdk_expects() -> None:
    encoder = DIALECT.stream_encoder(model="m")
    events: list[ir.Event] = [ir.Start("resp_1", "m"), ir.PartStart(0, ir.ThinkingPart()),
                              ir.PartDelta(0, text="hm"), ir.PartStop(0), ir.PartStart(1, ir.TextPart("")),
                              ir.PartDelta(1, text='a "quoted"\ntext'), ir.PartStop(1),
                              ir.PartStart(2, ir.ToolCallPart("call_1", "f")), ir.PartDelta(2, text='{"q":'),
                              ir.PartStop(2), ir.Finish("tool_use")]
    stream = b"".join(encoder.encode(e) for e in events) + encoder.close()
    frames = [block.split(b"\n") for block in stream.split(b"\n\n") if block]
    payloads = [orjson.loads(lines[1][len(b"data: "):]) for lines in frames]
    assert [lines[0] for lines in frames] == [b"event: " + p["type"].encode() for p in payloads]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    deltas = {p["type"]: {k: v for k, v in p.items() if k not in ("item_id", "sequence_number")}
              for p in payloads if p["type"].endswith(".delta")}
    assert deltas == {
        "response.reasoning_summary_text.delta": {"type": "response.reasoning_summary_text.delta",
                                                  "output_index": 0, "summary_index": 0, "delta": "hm"},
        "response.output_text.delta": {"type": "response.output_text.delta", "output_index": 1,
                                       "content_index": 0, "delta": 'a "quoted"\ntext', "logprobs": []},
        "response.function_call_arguments.delta": {"type": "response.function_call_arguments.delta",
                                                   "output_index": 2, "delta": '{"q":'},
    }
    for payload in payloads:
        if payload["type"].endswith(".delta"):
            added = next(p for p in payloads if p["type"] == "response.output_item.added"
                         and p["output_index"] == payload["output_index"])
            assert payload["item_id"] == added["item"]["id"]


def test_a_schema_too_deep_to_write_does_not_break_the_stream() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(300):
        deep = {"type": "object", "properties": {"a": deep}}
    request = ir.Request(model="m", tools=[ir.Tool("f", parameters=deep)])
    encoder = DIALECT.stream_encoder(model="m", request=request)
    stream = b"".join(encoder.encode(e) for e in [ir.Start("r", "m"), ir.Finish("end_turn")]) + encoder.close()
    payloads = [orjson.loads(block.split(b"data: ", 1)[1]) for block in stream.split(b"\n\n") if block]
    assert [p["type"] for p in payloads] == ["response.created", "response.in_progress", "response.completed"]
    assert all(p["response"]["tools"] == [] for p in payloads)
