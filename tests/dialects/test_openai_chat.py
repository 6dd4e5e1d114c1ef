"""OpenAI chat completions dialect: requests, responses, streams and errors in both
directions, checked against the official ``openai`` SDK types and clients."""

from __future__ import annotations

import base64
import string
from collections.abc import Iterable, Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from pydantic import TypeAdapter

from crossroads import assemble, ir
from crossroads.dialects import openai_chat
from crossroads.dialects.openai_chat import DIALECT, OpenAIChatDialect
from tests.dialects.sdk import drain

# ---------------------------------------------------------------------------
# helpers

_PARAMS = TypeAdapter(CompletionCreateParamsBase)




def assert_valid_request(body: dict[str, Any]) -> None:
    drain(_PARAMS.validate_python(body))
    # the real API rejects unknown top-level parameters
    assert set(body) <= set(CompletionCreateParamsBase.__annotations__) | {"stream"}, set(body)


def sse_frames(raw: bytes) -> list[str]:
    """The data payloads of an SSE byte string."""
    frames = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), block
        frames.append(block[len("data: "):])
    return frames


def decode_transcript(lines: list[Any], *, close: bool = True) -> list[ir.Event]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    for line in lines:
        data = line if isinstance(line, str) else orjson.dumps(line).decode()
        events.extend(decoder.feed(None, data))
    if close:
        events.extend(decoder.close())
    return events


def assembled(events: Iterable[ir.Event]) -> ir.Response:
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    return assembler.response()


def check_grammar(events: list[ir.Event]) -> None:
    """Start first; each part started once before its deltas; Finish/Error last."""
    assert isinstance(events[0], ir.Start)
    started: set[int] = set()
    stopped: set[int] = set()
    for event in events[1:-1]:
        assert not isinstance(event, ir.Start | ir.Finish | ir.ErrorEvent)
        if isinstance(event, ir.PartStart):
            assert event.index not in started
            assert event.index == len(started)
            started.add(event.index)
        elif isinstance(event, ir.PartDelta):
            assert event.index in started
        elif isinstance(event, ir.PartStop):
            assert event.index in started and event.index not in stopped
            stopped.add(event.index)
    assert isinstance(events[-1], ir.Finish | ir.ErrorEvent)
    if isinstance(events[-1], ir.Finish):
        assert stopped == started


def sdk_client(handler: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://upstream.test/v1", api_key="sk-test", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def encode_all(events: Iterable[ir.Event], request: ir.Request | None = None, model: str = "gpt-x") -> bytes:
    encoder = DIALECT.stream_encoder(model=model, request=request)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


PNG = base64.b64encode(b"\x89PNG fake image").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1700000000,
                            "model": "gpt-x",
                            "choices": [{"index": 0, "delta": delta or {}, "logprobs": None,
                                         "finish_reason": finish}]}
    body.update(top)
    return body


# ---------------------------------------------------------------------------
# requests: wire -> IR


def test_leading_system_and_developer_go_to_request_system_later_ones_stay_in_place() -> None:
    body = {"model": "gpt-x", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Now answer in French."},
        {"role": "developer", "content": "And be polite."},
    ]}
    request = DIALECT.parse_request(body)
    assert [p.text for p in request.system] == ["You are terse.", "Use metric units."]
    assert [m.role for m in request.messages] == ["user", "system", "system"]
    assert request.messages[1].parts == [ir.TextPart("Now answer in French.")]
    assert request.messages[2].parts == [ir.TextPart("And be polite.")]
    assert DIALECT.render_request(request) == body


def test_user_content_parts_images_files_and_audio() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    body = {"model": "gpt-x", "messages": [{"role": "user", "name": "ann", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        audio,
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"}},
    ]}]}
    request = DIALECT.parse_request(body)
    message = request.messages[0]
    assert message.name == "ann"
    text, inline, remote, document = message.parts
    assert text == ir.TextPart("what is this?")
    assert isinstance(inline, ir.ImagePart)
    assert (inline.media_type, inline.data, inline.url, inline.detail) == ("image/png", PNG, None, "high")
    assert isinstance(remote, ir.ImagePart)
    assert (remote.url, remote.data) == ("https://example.com/cat.jpg", None)
    assert isinstance(document, ir.DocumentPart)
    assert (document.media_type, document.data, document.filename) == ("application/pdf", PDF, "a.pdf")
    # audio has no IR part: it is kept for a same-dialect render, in its place
    assert DIALECT.render_request(request) == body
    assert_valid_request(DIALECT.render_request(request))


def test_bare_base64_file_data_gets_a_media_type_and_renders_back_bare() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": PDF, "filename": "report.pdf"}}]}]}
    request = DIALECT.parse_request(body)
    document = request.messages[0].parts[0]
    assert isinstance(document, ir.DocumentPart)
    assert (document.media_type, document.data) == ("application/pdf", PDF)
    assert DIALECT.render_request(request) == body


def test_assistant_tool_calls_reasoning_and_tool_results() -> None:
    body = {"model": "deepseek-reasoner", "messages": [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "reasoning_content": "Two cities, two calls.",
         "tool_calls": [
             {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
             {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}},
         ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C"}]},
        {"role": "user", "content": "thanks"},
    ]}
    request = DIALECT.parse_request(body)
    _, assistant, results, thanks = request.messages
    thinking, call_1, call_2 = assistant.parts
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "Two cities, two calls."
    assert isinstance(call_1, ir.ToolCallPart)
    assert (call_1.id, call_1.name, call_1.arguments) == ("call_1", "weather", '{"city":"Paris"}')
    assert isinstance(call_2, ir.ToolCallPart) and call_2.id == "call_2"
    # consecutive tool messages become one user message of tool results
    assert results.role == "user"
    first, second = results.parts
    assert isinstance(first, ir.ToolResultPart) and isinstance(second, ir.ToolResultPart)
    assert (first.tool_call_id, first.content, first.name) == ("call_1", [ir.TextPart("18C")], "weather")
    assert second.tool_call_id == "call_2" and second.content[0].text == "24C"  # type: ignore[union-attr]
    assert thanks.parts == [ir.TextPart("thanks")]
    assert DIALECT.render_request(request) == body


def test_openrouter_style_reasoning_field_round_trips_under_its_own_name() -> None:
    body = {"model": "m", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning": "because"},
        {"role": "user", "content": "q2"},
    ]}
    request = DIALECT.parse_request(body)
    thinking = request.messages[1].parts[0]
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "because"
    assert DIALECT.render_request(request) == body


def test_legacy_functions_and_function_role() -> None:
    body = {"model": "gpt-x", "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": None, "function_call": {"name": "calc", "arguments": '{"e":"2+2"}'}},
        {"role": "function", "name": "calc", "content": "4"},
    ], "functions": [{"name": "calc", "parameters": {"type": "object"}}], "function_call": "auto"}
    request = DIALECT.parse_request(body)
    call = request.messages[1].parts[0]
    result = request.messages[2].parts[0]
    assert isinstance(call, ir.ToolCallPart) and isinstance(result, ir.ToolResultPart)
    assert result.tool_call_id == call.id and result.name == "calc"
    assert [t.name for t in request.tools] == ["calc"]
    assert request.tool_choice == ir.ToolChoice(mode="auto")
    assert DIALECT.render_request(request) == body


def test_tools_and_tool_choice() -> None:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "go"}],
            "tools": [
                {"type": "function", "function": {"name": "search", "description": "Search the web",
                                                  "parameters": {"type": "object", "properties": {
                                                      "q": {"type": "string"}}}, "strict": True}},
                {"type": "custom", "custom": {"name": "patch", "format": {"type": "text"}}},
            ],
            "tool_choice": {"type": "function", "function": {"name": "search"}},
            "parallel_tool_calls": False}
    request = DIALECT.parse_request(body)
    search, patch = request.tools
    assert (search.name, search.kind, search.description, search.strict) == ("search", "function",
                                                                            "Search the web", True)
    assert search.parameters == body["tools"][0]["function"]["parameters"]
    assert (patch.kind, patch.name, patch.raw) == ("openai-chat:custom", "patch", body["tools"][1])
    assert request.tool_choice == ir.ToolChoice(mode="tool", name="search")
    assert request.parallel_tool_calls is False
    assert DIALECT.render_request(request) == body


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_modes(choice: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    request = DIALECT.parse_request(body)
    assert request.tool_choice == ir.ToolChoice(mode=choice)  # type: ignore[arg-type]
    assert DIALECT.render_request(request)["tool_choice"] == choice


def test_allowed_tools_choice_is_approximated_for_others_and_exact_for_us() -> None:
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "f"}}]}}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    request = DIALECT.parse_request(body)
    assert request.tool_choice == ir.ToolChoice(mode="required")
    assert DIALECT.render_request(request)["tool_choice"] == choice


def test_sampling_limits_and_misc_fields() -> None:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 300, "temperature": 0.3, "top_p": 0.9, "n": 2, "seed": 7,
            "presence_penalty": 0.5, "frequency_penalty": -0.5, "stop": ["END", "STOP"],
            "user": "u-1", "metadata": {"team": "a"}, "reasoning_effort": "high",
            "response_format": {"type": "json_object"},
            "logit_bias": {"50256": -100}, "service_tier": "flex", "store": False, "prompt_cache_key": "k"}
    request = DIALECT.parse_request(body)
    assert request.max_tokens == 300
    assert (request.temperature, request.top_p, request.n, request.seed) == (0.3, 0.9, 2, 7)
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, -0.5)
    assert request.stop == ["END", "STOP"]
    assert (request.user, request.metadata) == ("u-1", {"team": "a"})
    assert request.reasoning == ir.Reasoning(effort="high")
    assert request.response_format == ir.ResponseFormat(type="json_object")
    assert request.extra["openai-chat"] == {"logit_bias": {"50256": -100}, "service_tier": "flex",
                                            "store": False, "prompt_cache_key": "k"}
    rendered = DIALECT.render_request(request)
    assert rendered == body
    assert_valid_request(rendered)


def test_max_tokens_spellings() -> None:
    def parse(**fields: Any) -> ir.Request:
        return DIALECT.parse_request({"model": "m", "messages": [{"role": "user", "content": "x"}], **fields})

    assert parse(max_tokens=10).max_tokens == 10
    assert DIALECT.render_request(parse(max_tokens=10))["max_tokens"] == 10
    both = parse(max_tokens=10, max_completion_tokens=20)
    assert both.max_tokens == 20
    rendered = DIALECT.render_request(both)
    assert (rendered["max_completion_tokens"], rendered["max_tokens"]) == (20, 10)
    # from another dialect: max_tokens (known to every compatible server) unless configured
    other = ir.Request(model="m", messages=[ir.Message("user", [ir.TextPart("x")])], max_tokens=5)
    assert DIALECT.render_request(other)["max_tokens"] == 5
    new_style = OpenAIChatDialect(max_tokens_field="max_completion_tokens").render_request(other)
    assert new_style["max_completion_tokens"] == 5 and "max_tokens" not in new_style


def test_stop_string_and_stream_options() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "\n\n", "stream": True,
            "stream_options": {"include_usage": True, "include_obfuscation": False}}
    request = DIALECT.parse_request(body)
    assert request.stop == ["\n\n"]
    assert request.stream is True and request.include_usage is True
    assert DIALECT.render_request(request) == body


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": schema, "strict": True, "description": "the answer"}}}
    request = DIALECT.parse_request(body)
    assert request.response_format == ir.ResponseFormat(type="json_schema", schema=schema, name="answer",
                                                        strict=True)
    assert DIALECT.render_request(request) == body


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_reasoning_effort_round_trips(effort: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}
    request = DIALECT.parse_request(body)
    assert request.reasoning == ir.Reasoning(effort=effort)
    assert DIALECT.render_request(request)["reasoning_effort"] == effort


def test_model_and_stream_can_come_from_outside_the_body() -> None:
    request = DIALECT.parse_request({"messages": [{"role": "user", "content": "x"}]}, model="gpt-y", stream=True)
    assert (request.model, request.stream) == ("gpt-y", True)


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": "hello"}, "messages"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
     "messages[0].content[0].image_url"),
    ({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {}}]}]},
     "messages[0].tool_calls[0].function.name"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": True}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
     "tools[0].function"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "always"}, "tool_choice"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "extreme"},
     "reasoning_effort"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
     "response_format.type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": []}, "stream_options"),
])
def test_bad_requests_are_400_with_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_request(body)
    assert caught.value.status == 400 and caught.value.kind == "invalid_request"
    assert caught.value.param == param


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
_keys = st.sampled_from(["role", "content", "type", "text", "image_url", "url", "tool_calls", "id", "function",
                         "name", "arguments", "tool_call_id", "file", "file_data", "refusal", "reasoning_content"])
_junk_dicts = st.dictionaries(_keys, _json_values | st.sampled_from(["user", "assistant", "tool", "text"]),
                              max_size=5)
_junk_messages = st.recursive(_junk_dicts, lambda inner: st.dictionaries(_keys, inner | st.lists(inner, max_size=3),
                                                                          max_size=4), max_leaves=6)


@settings(max_examples=120, deadline=None)
@given(messages=st.lists(_junk_messages, max_size=4),
       top=st.dictionaries(st.sampled_from(["tools", "tool_choice", "stop", "temperature", "max_tokens",
                                            "response_format", "stream_options", "reasoning_effort", "functions",
                                            "function_call", "metadata", "n"]), _json_values, max_size=4))
def test_garbage_never_escapes_as_anything_but_a_400(messages: list[Any], top: dict[str, Any]) -> None:
    try:
        DIALECT.parse_request({"model": "m", "messages": messages, **top})
    except ir.Error as error:
        assert error.status == 400


# ---------------------------------------------------------------------------
# requests: IR (from other dialects) -> wire


def _user(*parts: ir.Part) -> ir.Message:
    return ir.Message("user", list(parts))


def test_system_blocks_from_other_dialects_become_one_system_message() -> None:
    request = ir.Request(model="m", system=[ir.TextPart("one", cache_control={"type": "ephemeral"}),
                                            ir.TextPart("two")],
                         messages=[_user(ir.TextPart("hi")), ir.Message("system", [ir.TextPart("mid")]),
                                   _user(ir.TextPart("again"))])
    body = DIALECT.render_request(request)
    assert body["messages"] == [
        {"role": "system", "content": "one\n\ntwo"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "mid"},
        {"role": "user", "content": "again"},
    ]
    assert_valid_request(body)


def test_tool_results_split_into_tool_messages_before_user_content_and_images_move_out() -> None:
    image = ir.ImagePart(media_type="image/png", data=PNG)
    request = ir.Request(model="m", messages=[
        _user(ir.TextPart("look")),
        ir.Message("assistant", [ir.ThinkingPart("hidden", signature="sig"), ir.TextPart("Calling."),
                                 ir.ToolCallPart("toolu_1", "screenshot", "{}"),
                                 ir.ToolCallPart("toolu_2", "read", '{"p":"a"}')]),
        _user(ir.ToolResultPart("toolu_1", [ir.TextPart("shot taken"), image]),
              ir.ToolResultPart("toolu_2", [ir.TextPart("line 1"), ir.TextPart("line 2")], is_error=True),
              ir.TextPart("what do you see?")),
    ])
    body = DIALECT.render_request(request)
    assert body["messages"] == [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
            {"id": "toolu_2", "type": "function", "function": {"name": "read", "arguments": '{"p":"a"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "shot taken"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "line 1\n\nline 2"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "text", "text": "what do you see?"}]},
    ]
    assert_valid_request(body)


def test_tool_results_alone_need_no_user_message() -> None:
    request = ir.Request(model="m", messages=[
        _user(ir.TextPart("x")),
        ir.Message("assistant", [ir.ToolCallPart("c1", "f", "{}")]),
        _user(ir.ToolResultPart("c1", [ir.TextPart("ok")])),
    ])
    messages = DIALECT.render_request(request)["messages"]
    assert messages[-1] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_foreign_thinking_is_dropped_unless_configured() -> None:
    request = ir.Request(model="m", messages=[
        _user(ir.TextPart("x")), ir.Message("assistant", [ir.ThinkingPart("why", signature="s"), ir.TextPart("a")]),
        _user(ir.TextPart("y"))])
    assert DIALECT.render_request(request)["messages"][1] == {"role": "assistant", "content": "a"}
    keen = OpenAIChatDialect(send_reasoning=True).render_request(request)
    assert keen["messages"][1] == {"role": "assistant", "content": "a", "reasoning_content": "why"}


def test_long_tool_ids_are_shortened_consistently() -> None:
    long_id = "fc_" + "x" * 60
    request = ir.Request(model="m", messages=[
        _user(ir.TextPart("x")), ir.Message("assistant", [ir.ToolCallPart(long_id, "f", "{}")]),
        _user(ir.ToolResultPart(long_id, [ir.TextPart("r")]))])
    messages = DIALECT.render_request(request)["messages"]
    call_id = messages[1]["tool_calls"][0]["id"]
    assert len(call_id) <= 40 and call_id == messages[2]["tool_call_id"]


@pytest.mark.parametrize(("reasoning_setting", "effort"), [
    (ir.Reasoning(budget=0), "none"),
    (ir.Reasoning(budget=300), "minimal"),
    (ir.Reasoning(budget=1024), "low"),
    (ir.Reasoning(budget=5000), "medium"),
    (ir.Reasoning(budget=20000), "high"),
    (ir.Reasoning(budget=32000), "xhigh"),
    (ir.Reasoning(budget=100000), "xhigh"),
    (ir.Reasoning(budget=-1), "medium"),
    (ir.Reasoning(effort="max"), "xhigh"),
    (ir.Reasoning(effort="auto"), "medium"),
    (ir.Reasoning(effort="low"), "low"),
    (ir.Reasoning(adaptive=True), None),
])
def test_reasoning_from_other_dialects(reasoning_setting: ir.Reasoning, effort: str | None) -> None:
    request = ir.Request(model="m", messages=[_user(ir.TextPart("x"))], reasoning=reasoning_setting)
    assert DIALECT.render_request(request).get("reasoning_effort") == effort


def test_foreign_provider_tools_are_dropped_and_so_are_tool_settings_without_tools() -> None:
    request = ir.Request(model="m", messages=[_user(ir.TextPart("x"))],
                         tools=[ir.Tool(name="web_search", kind="anthropic:web_search_20250305",
                                        raw={"type": "web_search_20250305", "name": "web_search"})],
                         tool_choice=ir.ToolChoice(mode="auto"), parallel_tool_calls=True)
    body = DIALECT.render_request(request)
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body
    request.tools.append(ir.Tool(name="f", parameters={"type": "object"}))
    request.tool_choice = ir.ToolChoice(mode="tool", name="f")
    body = DIALECT.render_request(request)
    assert body["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["parallel_tool_calls"] is True
    assert_valid_request(body)


def test_cross_dialect_odds_and_ends() -> None:
    request = ir.Request(
        model="m", messages=[_user(ir.TextPart("x"), ir.DocumentPart(url="https://example.com/a.pdf"),
                                   ir.DocumentPart(media_type="application/pdf", data=PDF, filename="b.pdf"),
                                   ir.ImagePart(url="https://example.com/c.png", detail="low"))],
        top_k=40, metadata={"user_id": "abc", "count": 3}, stop=["x"], include_usage=True,
        response_format=ir.ResponseFormat(type="json_schema", schema={"type": "object"}),
        extra={"anthropic": {"context_management": {}}})
    body = DIALECT.render_request(request)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "x"},
        {"type": "text", "text": "[document: https://example.com/a.pdf]"},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "b.pdf"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/c.png", "detail": "low"}},
    ]
    assert "top_k" not in body  # not an OpenAI parameter
    assert body["metadata"] == {"user_id": "abc"}
    assert body["stop"] == ["x"]
    assert "stream_options" not in body  # only allowed with stream
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "response",
                                                                              "schema": {"type": "object"}}}
    assert "context_management" not in body
    assert_valid_request(body)
    request.stream = True
    assert DIALECT.render_request(request)["stream_options"] == {"include_usage": True}


# ---------------------------------------------------------------------------
# requests: property round trip

_ident = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
_text = st.text(max_size=20)
_b64 = st.binary(min_size=1, max_size=9).map(lambda b: base64.b64encode(b).decode())
_text_part = st.builds(lambda t: {"type": "text", "text": t}, _text)
_image_part = st.one_of(
    st.builds(lambda mt, d: {"type": "image_url", "image_url": {"url": f"data:{mt};base64,{d}"}},
              st.sampled_from(["image/png", "image/jpeg", "image/webp"]), _b64),
    st.builds(lambda name, detail: {"type": "image_url", "image_url": {"url": f"https://img.test/{name}.png",
                                                                       "detail": detail}},
              _ident, st.sampled_from(["auto", "low", "high"])),
)
_file_part = st.builds(lambda d, n: {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{d}",
                                                              "filename": f"{n}.pdf"}}, _b64, _ident)
_audio_part = st.builds(lambda d: {"type": "input_audio", "input_audio": {"data": d, "format": "mp3"}}, _b64)
_user_content = st.one_of(_text, st.lists(st.one_of(_text_part, _image_part, _file_part, _audio_part),
                                          min_size=1, max_size=4))
_text_content = st.one_of(_text, st.lists(_text_part, min_size=1, max_size=3))
_arguments = st.dictionaries(_ident, st.integers(-(2**53), 2**53) | _text, max_size=3).map(lambda d: orjson.dumps(d).decode())


def _maybe_name(message: dict[str, Any], name: str | None) -> dict[str, Any]:
    if name is not None:
        message["name"] = name
    return message


@st.composite
def _conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 2))):
        messages.append(_maybe_name({"role": draw(st.sampled_from(["system", "developer"])),
                                     "content": draw(_text_content)}, draw(st.none() | _ident)))
    call_number = 0
    for _ in range(draw(st.integers(1, 3))):
        messages.append(_maybe_name({"role": "user", "content": draw(_user_content)}, draw(st.none() | _ident)))
        if not draw(st.booleans()):
            continue
        assistant: dict[str, Any] = {"role": "assistant"}
        calls = []
        for _ in range(draw(st.integers(0, 2))):
            call_number += 1
            calls.append({"id": f"call_{call_number}_{draw(_ident)}", "type": "function",
                          "function": {"name": draw(_ident), "arguments": draw(_arguments)}})
        content = draw(st.sampled_from(["text", "list", "null", "absent", "empty"] if calls
                                       else ["text", "list", "empty"]))
        if content == "text":
            assistant["content"] = draw(_text.filter(bool))
        elif content == "list":
            assistant["content"] = draw(st.lists(_text_part, min_size=1, max_size=2))
        elif content == "null":
            assistant["content"] = None
        elif content == "empty":
            assistant["content"] = ""
        if draw(st.booleans()):
            assistant[draw(st.sampled_from(["reasoning_content", "reasoning"]))] = draw(_text)
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": draw(_text_content)})
        if draw(st.integers(0, 4)) == 0:
            messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(_text_content)})
    return messages


_function_tool = st.builds(
    lambda name, desc, params, strict: {"type": "function", "function": {
        "name": name, **({"description": desc} if desc is not None else {}),
        **({"parameters": params} if params is not None else {}),
        **({"strict": strict} if strict is not None else {})}},
    _ident, st.none() | _text, st.none() | st.just({"type": "object", "properties": {"q": {"type": "string"}}}),
    st.none() | st.booleans())
_custom_tool = st.builds(lambda name: {"type": "custom", "custom": {"name": name}}, _ident)
_floats = st.floats(min_value=-2, max_value=2, allow_nan=False)

_optional_fields: dict[str, st.SearchStrategy[Any]] = {
    "temperature": st.floats(min_value=0, max_value=2, allow_nan=False),
    "top_p": st.floats(min_value=0, max_value=1, allow_nan=False),
    "top_k": st.integers(1, 100),
    "max_tokens": st.integers(1, 10**6),
    "max_completion_tokens": st.integers(1, 10**6),
    "stop": _text | st.lists(_text, min_size=1, max_size=4),
    "seed": st.integers(-(2**31), 2**31),
    "n": st.integers(1, 4),
    "presence_penalty": _floats,
    "frequency_penalty": _floats,
    "user": _text,
    "metadata": st.dictionaries(_ident, _text, max_size=3),
    "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
    "response_format": st.one_of(
        st.just({"type": "text"}), st.just({"type": "json_object"}),
        st.builds(lambda name, strict: {"type": "json_schema", "json_schema": {
            "name": name, "schema": {"type": "object"}, **({"strict": strict} if strict is not None else {})}},
            _ident, st.none() | st.booleans())),
    "tools": st.lists(_function_tool | _custom_tool, min_size=1, max_size=3),
    "tool_choice": st.sampled_from(["auto", "none", "required"])
    | st.builds(lambda n: {"type": "function", "function": {"name": n}}, _ident),
    "parallel_tool_calls": st.booleans(),
    "logit_bias": st.dictionaries(st.integers(0, 1000).map(str), st.integers(-100, 100), max_size=2),
    "service_tier": st.sampled_from(["auto", "flex", "priority"]),
    "store": st.booleans(),
    "prompt_cache_key": _ident,
    "verbosity": st.sampled_from(["low", "medium", "high"]),
    "x_vendor_flag": _json_values,
}


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(_ident), "messages": draw(_conversations())}
    body.update(draw(st.fixed_dictionaries({}, optional=_optional_fields)))
    stream = draw(st.sampled_from([None, False, True]))
    if stream is not None:
        body["stream"] = stream
    if stream:
        include = draw(st.sampled_from([None, True, False]))
        if include is not None:
            body["stream_options"] = {"include_usage": include}
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_requests())
def test_request_round_trip(body: dict[str, Any]) -> None:
    assert DIALECT.render_request(DIALECT.parse_request(body)) == body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_requests())
def test_rendered_requests_satisfy_the_sdk_types(body: dict[str, Any]) -> None:
    body.pop("top_k", None)
    body.pop("x_vendor_flag", None)
    for message in body["messages"]:
        message.pop("reasoning_content", None)
        message.pop("reasoning", None)
    assert_valid_request(DIALECT.render_request(DIALECT.parse_request(body)))


def _slots(value: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) inside a JSON value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.append((value, key))
        _slots(item, found)
    return found


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_requests(), st.data())
def test_mutated_valid_requests_fail_only_with_400(body: dict[str, Any], data: st.DataObject) -> None:
    slots = _slots(body["messages"], [])
    container, key = data.draw(st.sampled_from(slots)) if slots else (body, "messages")
    container[key] = data.draw(_json_values)
    try:
        DIALECT.parse_request(body)
    except ir.Error as error:
        assert (error.status, error.kind) == (400, "invalid_request")


# ---------------------------------------------------------------------------
# responses


def _completion(message: dict[str, Any], finish: str = "stop", **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None, **message},
                     "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                  "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0}},
    }
    body.update(top)
    return body


def test_parse_response_with_reasoning_text_tool_calls_and_usage() -> None:
    body = _completion({"content": "Checking.", "reasoning_content": "think",
                        "tool_calls": [{"id": "call_9", "type": "function",
                                        "function": {"name": "f", "arguments": '{"a":1}'}}]},
                       "tool_calls", system_fingerprint="fp_1")
    response = DIALECT.parse_response(body)
    assert (response.id, response.model, response.created) == ("chatcmpl-1", "gpt-x", 1700000000)
    thinking, text, call = response.parts
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "think"
    assert text == ir.TextPart("Checking.")
    assert isinstance(call, ir.ToolCallPart) and (call.id, call.name, call.arguments) == ("call_9", "f", '{"a":1}')
    assert response.stop_reason == "tool_use"
    assert response.usage == ir.Usage(input_tokens=120, output_tokens=30, cache_read_tokens=100,
                                      reasoning_tokens=12)
    assert DIALECT.render_response(response) == body


@pytest.mark.parametrize(("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"),
                                              ("tool_calls", "tool_use"), ("content_filter", "content_filter"),
                                              ("function_call", "tool_use")])
def test_finish_reasons(finish: str, stop: str) -> None:
    assert DIALECT.parse_response(_completion({"content": "x"}, finish)).stop_reason == stop


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("stop_sequence", "stop"),
                                              ("max_tokens", "length"), ("tool_use", "tool_calls"),
                                              ("content_filter", "content_filter"), ("refusal", "content_filter"),
                                              ("pause_turn", "stop"), (None, "stop")])
def test_stop_reasons_render_as_sdk_finish_reasons(stop: ir.StopReason | None, finish: str) -> None:
    body = DIALECT.render_response(ir.Response(id="msg_1", model="m", parts=[ir.TextPart("x")], stop_reason=stop))
    assert body["choices"][0]["finish_reason"] == finish
    ChatCompletion.model_validate(body)


def test_refusal_round_trips_and_reads_as_refusal() -> None:
    body = _completion({"refusal": "I can't help with that."})
    response = DIALECT.parse_response(body)
    assert response.stop_reason == "refusal"
    assert [p.text for p in response.parts if isinstance(p, ir.TextPart)] == ["I can't help with that."]
    assert DIALECT.render_response(response) == body


def test_render_response_from_another_dialect_validates_with_the_sdk() -> None:
    response = ir.Response(
        id="msg_01", model="claude-x",
        parts=[ir.ThinkingPart("deep", signature="sig"), ir.ThinkingPart(redacted="opaque"), ir.TextPart("Hi "),
               ir.ToolCallPart("toolu_1", "f", '{"x":1}'), ir.TextPart("there")],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=50, output_tokens=9, cache_read_tokens=20, cache_write_tokens=10))
    body = DIALECT.render_response(response)
    completion = ChatCompletion.model_validate(body)
    message = completion.choices[0].message
    assert message.content == "Hi there"
    assert body["choices"][0]["message"]["reasoning_content"] == "deep"
    assert "sig" not in orjson.dumps(body).decode()
    assert message.tool_calls is not None and message.tool_calls[0].id == "toolu_1"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (50, 9, 59)
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 20
    assert completion.usage.prompt_tokens_details.cache_write_tokens == 10
    assert completion.usage.completion_tokens_details is None


def test_missing_usage_stays_missing() -> None:
    body = DIALECT.render_response(ir.Response(id="x", model="m", parts=[ir.TextPart("a")]))
    assert "usage" not in body
    partial = DIALECT.parse_response({"id": "x", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3}})
    assert partial.usage == ir.Usage(input_tokens=3)


def test_deepseek_cache_hit_tokens_count_as_cache_reads() -> None:
    body = _completion({"content": "x"})
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                     "prompt_cache_hit_tokens": 8, "prompt_cache_miss_tokens": 2}
    response = DIALECT.parse_response(body)
    assert response.usage is not None and response.usage.cache_read_tokens == 8


def test_sdk_client_reads_a_rendered_response() -> None:
    response = ir.Response(id="r1", model="gpt-x", parts=[ir.TextPart("hello")], stop_reason="end_turn",
                           usage=ir.Usage(input_tokens=3, output_tokens=1))
    client = sdk_client(lambda request: httpx2.Response(200, json=DIALECT.render_response(response)))
    completion = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "hello"
    assert completion.usage is not None and completion.usage.total_tokens == 4


def test_broken_upstream_bodies_become_502() -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_response({"id": "x"})
    assert caught.value.status == 502
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_response({"error": {"message": "boom", "type": "server_error"}})
    assert caught.value.message == "boom"


_usage = st.builds(
    lambda p, c, cached, reasoning_tokens: {
        "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
        **({"prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0}} if cached is not None else {}),
        **({"completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
           if reasoning_tokens is not None else {})},
    st.integers(0, 10**6), st.integers(0, 10**5), st.none() | st.integers(0, 1000),
    st.none() | st.integers(0, 1000))
_response_tool_call = st.builds(
    lambda i, name, args: {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}},
    _ident, _ident, _arguments)


@st.composite
def chat_responses(draw: st.DrawFn) -> dict[str, Any]:
    calls = draw(st.lists(_response_tool_call, max_size=3, unique_by=lambda c: c["id"]))
    message: dict[str, Any] = {"role": "assistant", "content": draw(st.none() | _text), "refusal": None}
    if draw(st.integers(0, 5)) == 0:
        message["refusal"] = draw(_text)
    if calls:
        message["tool_calls"] = calls
    if draw(st.booleans()):
        message["reasoning_content"] = draw(_text)
    if draw(st.booleans()):
        message["annotations"] = []
    finish = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
    body: dict[str, Any] = {"id": f"chatcmpl-{draw(_ident)}", "object": "chat.completion",
                            "created": draw(st.integers(0, 2**31)), "model": draw(_ident),
                            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]}
    if draw(st.booleans()):
        body["usage"] = draw(_usage)
    if draw(st.booleans()):
        body["system_fingerprint"] = f"fp_{draw(_ident)}"
    if draw(st.booleans()):
        body["service_tier"] = "default"
    return body


@settings(max_examples=300, deadline=None)
@given(chat_responses())
def test_response_round_trip(body: dict[str, Any]) -> None:
    rendered = DIALECT.render_response(DIALECT.parse_response(body))
    assert rendered == body
    ChatCompletion.model_validate(rendered)


# ---------------------------------------------------------------------------
# stream: wire -> IR

REALISTIC_STREAM = [
    chunk({"role": "assistant", "content": "", "refusal": None}, usage=None),
    chunk({"reasoning_content": "Let me "}, usage=None),
    chunk({"reasoning_content": "think."}, usage=None),
    chunk({"content": "Calling "}, usage=None),
    chunk({"content": "tools."}, usage=None),
    chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "weather", "arguments": ""}}]}, usage=None),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, usage=None),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, usage=None),
    chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                           "function": {"name": "time", "arguments": "{}"}}]}, usage=None),
    chunk({}, "tool_calls", usage=None),
    {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-x",
     "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 25, "total_tokens": 65,
                              "prompt_tokens_details": {"cached_tokens": 32},
                              "completion_tokens_details": {"reasoning_tokens": 5}}},
    "[DONE]",
]


def test_decode_realistic_stream() -> None:
    events = decode_transcript(REALISTIC_STREAM)
    check_grammar(events)
    response = assembled(events)
    assert (response.id, response.model) == ("chatcmpl-abc", "gpt-x")
    thinking, text, call_a, call_b = response.parts
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "Let me think."
    assert text == ir.TextPart("Calling tools.")
    assert isinstance(call_a, ir.ToolCallPart) and isinstance(call_b, ir.ToolCallPart)
    assert (call_a.id, call_a.name, call_a.arguments) == ("call_a", "weather", '{"city":"Paris"}')
    assert (call_b.id, call_b.name, call_b.arguments) == ("call_b", "time", "{}")
    assert response.stop_reason == "tool_use"
    assert response.usage == ir.Usage(input_tokens=40, output_tokens=25, cache_read_tokens=32, reasoning_tokens=5)
    assert isinstance(events[-1], ir.Finish) and events[-1].usage == response.usage


def test_finish_waits_for_the_usage_chunk() -> None:
    decoder = DIALECT.stream_decoder()
    decoder.feed(None, orjson.dumps(chunk({"content": "hi"})).decode())
    after_finish = decoder.feed(None, orjson.dumps(chunk({}, "stop")).decode())
    assert not any(isinstance(e, ir.Finish) for e in after_finish)
    usage_events = decoder.feed(None, orjson.dumps(
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}).decode())
    assert usage_events == [ir.Finish("end_turn", ir.Usage(input_tokens=1, output_tokens=2))]
    assert decoder.feed(None, "[DONE]") == []
    assert decoder.close() == []


def test_usage_inside_the_last_choice_chunk() -> None:
    events = decode_transcript([
        chunk({"role": "assistant", "content": "Hi"}),
        chunk({}, "length", usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}),
        "[DONE]",
    ])
    check_grammar(events)
    assert events[-1] == ir.Finish("max_tokens", ir.Usage(input_tokens=5, output_tokens=1))


def test_interleaved_tool_calls_by_index() -> None:
    def call(index: int, args: str, **first: Any) -> dict[str, Any]:
        function: dict[str, Any] = {"arguments": args}
        if "name" in first:
            function["name"] = first.pop("name")
        return chunk({"tool_calls": [{"index": index, **first, "function": function}]})

    events = decode_transcript([
        call(0, "", id="c0", type="function", name="a"),
        call(1, "", id="c1", type="function", name="b"),
        call(0, '{"x":'),
        call(1, '{"y":'),
        call(0, "1}"),
        call(1, "2}"),
        chunk({}, "tool_calls"),
        "[DONE]",
    ])
    response = assembled(events)
    assert [(p.id, p.name, p.arguments) for p in response.parts if isinstance(p, ir.ToolCallPart)] == [
        ("c0", "a", '{"x":1}'), ("c1", "b", '{"y":2}')]
    assert isinstance(events[-1], ir.Finish)


def test_tool_calls_without_index_and_name_arriving_late() -> None:
    events = decode_transcript([
        chunk({"tool_calls": [{"id": "g1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"id": "g2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 5, "id": "late", "function": {"arguments": '{"q"'}}]}),
        chunk({"tool_calls": [{"index": 5, "function": {"name": "c", "arguments": ":1}"}}]}),
        chunk({}, "tool_calls"),
    ])
    check_grammar(events)
    response = assembled(events)
    assert [(p.id, p.name, p.arguments) for p in response.parts if isinstance(p, ir.ToolCallPart)] == [
        ("g1", "a", "{}"), ("g2", "b", "{}"), ("late", "c", '{"q":1}')]


def test_mid_stream_error_payload() -> None:
    events = decode_transcript([
        chunk({"content": "partial"}),
        {"error": {"message": "Rate limit reached. Please try again in 2.5s.", "type": "rate_limit_exceeded",
                   "param": None, "code": "rate_limit_exceeded"}},
        chunk({"content": "ignored"}),
    ])
    error = events[-1]
    assert isinstance(error, ir.ErrorEvent)
    assert (error.error.status, error.error.kind, error.error.retry_after) == (429, "rate_limit", 2.5)
    assert not any(isinstance(e, ir.PartDelta) and e.text == "ignored" for e in events)


def test_cut_stream_is_an_error_not_a_completion() -> None:
    events = decode_transcript([chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"})])
    error = events[-1]
    assert isinstance(error, ir.ErrorEvent)
    assert (error.error.status, error.error.kind) == (502, "server_error")
    assert "before completion" in error.error.message
    assert assembled(events).stop_reason is None


def test_stream_with_finish_but_without_done_still_completes() -> None:
    events = decode_transcript([chunk({"content": "ok"}), chunk({}, "stop")])
    assert events[-1] == ir.Finish("end_turn", None)


def test_refusal_and_openrouter_reasoning_deltas() -> None:
    events = decode_transcript([chunk({"reasoning": "hm"}), chunk({"refusal": "No."}), chunk({}, "stop"), "[DONE]"])
    response = assembled(events)
    thinking, refusal = response.parts
    assert isinstance(thinking, ir.ThinkingPart) and thinking.text == "hm"
    assert isinstance(refusal, ir.TextPart) and refusal.text == "No."
    # both keep their wire names on the way back out
    frames = [orjson.loads(f) for f in sse_frames(encode_all(events))[:-1]]
    deltas = [f["choices"][0]["delta"] for f in frames if f["choices"]]
    assert {"reasoning": "hm"} in deltas and {"refusal": "No."} in deltas


# ---------------------------------------------------------------------------
# stream: IR -> wire

SAMPLE_RESPONSE = ir.Response(
    id="msg_01", model="claude-x",
    parts=[ir.ThinkingPart("Plan.", signature="c2ln"), ir.TextPart("Sure, "),
           ir.ToolCallPart("toolu_a", "lookup", '{"k":"v"}'), ir.ToolCallPart("toolu_b", "other", "{}")],
    stop_reason="tool_use",
    usage=ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10, cache_write_tokens=4,
                   reasoning_tokens=3))


def test_encoded_frames_parse_as_sdk_chunks_and_accumulate_to_the_response() -> None:
    request = ir.Request(model="gpt-x", include_usage=True, stream=True)
    raw = encode_all(assemble.events_for(SAMPLE_RESPONSE), request)
    frames = sse_frames(raw)
    assert frames[-1] == "[DONE]"
    state = ChatCompletionStreamState()
    chunks = [ChatCompletionChunk.model_validate_json(f) for f in frames[:-1]]
    for item in chunks:
        state.handle_chunk(item)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Sure, "
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []] == [  # type: ignore[union-attr]
        ("toolu_a", "lookup", '{"k":"v"}'), ("toolu_b", "other", "{}")]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.model == "gpt-x"
    assert final.usage is not None and final.usage.prompt_tokens == 30
    assert final.usage.prompt_tokens_details is not None and final.usage.prompt_tokens_details.cached_tokens == 10
    reasoning_text = "".join(orjson.loads(f)["choices"][0]["delta"].get("reasoning_content", "")
                             for f in frames[:-2])
    assert reasoning_text == "Plan."


def test_tool_call_indices_count_only_tool_calls() -> None:
    raw = encode_all(assemble.events_for(SAMPLE_RESPONSE))
    indices = [call["index"] for f in sse_frames(raw)[:-1]
               for call in orjson.loads(f)["choices"][0]["delta"].get("tool_calls", [])]
    assert indices == [0, 0, 1, 1]


def test_no_usage_chunk_unless_asked() -> None:
    frames = sse_frames(encode_all(assemble.events_for(SAMPLE_RESPONSE), ir.Request(model="m", stream=True)))
    payloads = [orjson.loads(f) for f in frames[:-1]]
    assert all(p["choices"] for p in payloads)
    assert all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_encoder_is_incremental() -> None:
    encoder = DIALECT.stream_encoder(model="gpt-x")
    assert encoder.encode(ir.Start(id="s1", model="other")).startswith(b"data: ")
    assert encoder.encode(ir.PartStart(0, ir.TextPart(""))) == b""
    out = encoder.encode(ir.PartDelta(0, text="Hi"))
    payload = orjson.loads(sse_frames(out)[0])
    assert payload["id"] == "s1" and payload["model"] == "gpt-x"
    assert payload["choices"][0]["delta"] == {"content": "Hi"}


def test_encoder_error_event_is_openai_error_frame_and_no_done() -> None:
    encoder = DIALECT.stream_encoder(model="gpt-x")
    encoder.encode(ir.Start(id="s1", model="m"))
    out = encoder.encode(ir.ErrorEvent(ir.Error(529, "overloaded", "Overloaded")))
    assert sse_frames(out) == [orjson.dumps({"error": {"message": "Overloaded", "type": "server_error",
                                                       "param": None, "code": "overloaded"}}).decode()]
    assert encoder.close() == b""


def test_sdk_client_streams_encoded_output_and_raises_on_error_frames() -> None:
    good = encode_all(assemble.events_for(SAMPLE_RESPONSE), ir.Request(model="m", include_usage=True))
    client = sdk_client(lambda request: httpx2.Response(200, content=good,
                                                       headers={"content-type": "text/event-stream"}))
    stream = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}],
                                            stream=True, stream_options={"include_usage": True})
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "Sure, "

    events = [ir.Start(id="s", model="m"), ir.PartStart(0, ir.TextPart("")), ir.PartDelta(0, text="par"),
              ir.ErrorEvent(ir.Error(500, "server_error", "upstream broke"))]
    bad = encode_all(events)
    client = sdk_client(lambda request: httpx2.Response(200, content=bad,
                                                       headers={"content-type": "text/event-stream"}))
    with pytest.raises(openai.APIError, match="upstream broke"):
        for _ in client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}],
                                                stream=True):
            pass


def test_stream_round_trip_through_our_decoder() -> None:
    raw = encode_all(assemble.events_for(SAMPLE_RESPONSE), ir.Request(model="m", include_usage=True))
    events = decode_transcript(sse_frames(raw))
    check_grammar(events)
    response = assembled(events)
    assert [type(p) for p in response.parts] == [ir.ThinkingPart, ir.TextPart, ir.ToolCallPart, ir.ToolCallPart]
    assert response.parts[1] == ir.TextPart("Sure, ")
    assert response.stop_reason == "tool_use"
    assert response.usage == ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10,
                                      cache_write_tokens=4, reasoning_tokens=3)


@settings(max_examples=150, deadline=None)
@given(chat_responses())
def test_stream_encode_decode_matches_the_full_response(body: dict[str, Any]) -> None:
    response = DIALECT.parse_response(body)
    raw = encode_all(assemble.events_for(response), ir.Request(model="m", include_usage=True))
    for frame in sse_frames(raw)[:-1]:
        ChatCompletionChunk.model_validate_json(frame)
    again = assembled(decode_transcript(sse_frames(raw)))
    def visible(parts: list[ir.Part]) -> list[tuple[str, str]]:
        out = []
        for part in parts:
            if isinstance(part, ir.ToolCallPart):
                out.append((part.id, part.name + part.arguments))
            elif isinstance(part, ir.TextPart | ir.ThinkingPart) and part.text:
                out.append((type(part).__name__, part.text))
        return out

    assert visible(again.parts) == visible(response.parts)
    assert again.stop_reason == response.stop_reason
    if response.usage is not None:
        assert again.usage == response.usage


# ---------------------------------------------------------------------------
# errors

_SDK_CLASS = {
    "invalid_request": (400, openai.BadRequestError),
    "authentication": (401, openai.AuthenticationError),
    "permission": (403, openai.PermissionDeniedError),
    "not_found": (404, openai.NotFoundError),
    "request_too_large": (413, openai.APIStatusError),
    "rate_limit": (429, openai.RateLimitError),
    "overloaded": (529, openai.InternalServerError),
    "server_error": (500, openai.InternalServerError),
    "timeout": (504, openai.InternalServerError),
}


@pytest.mark.parametrize("kind", list(_SDK_CLASS))
def test_render_error_is_what_the_sdk_expects(kind: ir.ErrorKind) -> None:
    status, exception = _SDK_CLASS[kind]
    error = ir.Error(status, kind, f"{kind} happened", param="messages" if kind == "invalid_request" else None)
    wire_status, body = DIALECT.render_error(error)
    assert wire_status == (503 if status == 529 else status)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    client = sdk_client(lambda request: httpx2.Response(wire_status, json=body))
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert f"{kind} happened" in caught.value.message
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == body["error"]["type"]
    # and it reads back as the same kind
    assert DIALECT.parse_error(wire_status, orjson.dumps(body)).kind == kind


def test_render_error_types_and_codes() -> None:
    assert DIALECT.render_error(ir.Error(429, "rate_limit", "slow down")) == (429, {"error": {
        "message": "slow down", "type": "rate_limit_exceeded", "param": None, "code": "rate_limit_exceeded"}})
    assert DIALECT.render_error(ir.Error(503, "overloaded", "busy")) == (503, {"error": {
        "message": "busy", "type": "server_error", "param": None, "code": "overloaded"}})
    assert DIALECT.render_error(ir.bad_request("bad 'n'", "n"))[1]["error"] == {
        "message": "bad 'n'", "type": "invalid_request_error", "param": "n", "code": None}
    assert DIALECT.render_error(ir.Error(404, "not_found", "no model", code="model_not_found"))[1]["error"][
        "code"] == "model_not_found"


def test_parse_error_openai_body() -> None:
    body = orjson.dumps({"error": {"message": "Rate limit reached for gpt-x. Please try again in 1m30s.",
                                   "type": "tokens", "param": None, "code": "rate_limit_exceeded"}})
    error = DIALECT.parse_error(429, body)
    assert (error.status, error.kind, error.code, error.retry_after) == (429, "rate_limit", "rate_limit_exceeded",
                                                                         90.0)
    assert error.message.startswith("Rate limit reached")


@pytest.mark.parametrize(("message", "seconds"), [("Please try again in 20ms.", 0.02),
                                                  ("please try again in 1.5s", 1.5),
                                                  ("Try again in 2h.", 7200.0), ("no hint here", None)])
def test_retry_hints_in_messages(message: str, seconds: float | None) -> None:
    error = DIALECT.parse_error(429, orjson.dumps({"error": {"message": message, "type": "requests"}}))
    assert error.retry_after == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_error_lenient_shapes() -> None:
    html = DIALECT.parse_error(502, b"<html>Bad gateway</html>")
    assert (html.status, html.kind, html.message) == (502, "server_error", "<html>Bad gateway</html>")
    empty = DIALECT.parse_error(503, b"")
    assert (empty.kind, empty.message) == ("overloaded", "upstream returned HTTP 503")
    listed = DIALECT.parse_error(400, orjson.dumps([{"error": {"code": 400, "message": "bad", "status":
                                                               "INVALID_ARGUMENT"}}]))
    assert (listed.kind, listed.message, listed.code) == ("invalid_request", "bad", "400")
    flat = DIALECT.parse_error(401, orjson.dumps({"error": "invalid key"}))
    assert (flat.kind, flat.message) == ("authentication", "invalid key")
    detail = DIALECT.parse_error(422, orjson.dumps({"detail": "missing field"}))
    assert (detail.kind, detail.message) == ("invalid_request", "missing field")
    overloaded = DIALECT.parse_error(500, orjson.dumps({"error": {"message": "x", "type": "server_error",
                                                                  "code": "engine_overloaded"}}))
    assert overloaded.kind == "overloaded"


def test_dialect_protocol_shape() -> None:
    assert DIALECT.name == "openai-chat"
    assert openai_chat.DIALECT is DIALECT


def _iter_chunks(raw: bytes) -> Iterator[dict[str, Any]]:
    for frame in sse_frames(raw):
        if frame != "[DONE]":
            yield orjson.loads(frame)


def test_encoder_handles_events_before_start_and_prefilled_parts() -> None:
    encoder = DIALECT.stream_encoder(model="gpt-x")
    out = encoder.encode(ir.PartStart(0, ir.ToolCallPart("c1", "f", '{"a":1}')))
    out += encoder.encode(ir.PartStop(0))
    out += encoder.encode(ir.Finish("tool_use"))
    out += encoder.close()
    chunks = list(_iter_chunks(out))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert out.endswith(b"data: [DONE]\n\n")


def test_plain_messages_parse_as_the_general_path_parses_them() -> None:
    """{"role", "content": "text"} takes a shortcut; the same message with a no-op extra key
    (``name: null``) takes the general path, and both give the same IR."""
    plain = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
             {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"},
             {"role": "system", "content": "late"}]
    general = [{**message, "name": None} for message in plain]
    fast = DIALECT.parse_request({"model": "m", "messages": plain})
    slow = DIALECT.parse_request({"model": "m", "messages": general})
    assert fast.system == slow.system and fast.messages == slow.messages and fast.extra == slow.extra
    assert DIALECT.render_request(fast)["messages"] == plain
