"""The fakes driven by the official SDKs: if the SDKs parse what the fakes send (and raise what
they raise on real errors), the fakes speak the real wire shapes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario, sample_for_arguments, sample_for_output
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.openai_responses import FakeOpenAIResponses

KEY = "test-key"
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer"}},
    "required": ["city", "unit"],
}
TIME_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


# ---------------------------------------------------------------------------
# Fixtures: one server per fake for the module, cleared before each test


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture(scope="module")
def chat_fake() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture(scope="module")
def responses_fake() -> Iterator[FakeOpenAIResponses]:
    with FakeOpenAIResponses(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini_fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture
def claude(anthropic_fake: FakeAnthropic) -> anthropic.Anthropic:
    anthropic_fake.clear()
    return anthropic.Anthropic(base_url=anthropic_fake.base_url, api_key=KEY, max_retries=0)


@pytest.fixture
def chat(chat_fake: FakeOpenAIChat) -> openai.OpenAI:
    chat_fake.clear()
    return openai.OpenAI(base_url=chat_fake.api_url, api_key=KEY, max_retries=0)


@pytest.fixture
def responses(responses_fake: FakeOpenAIResponses) -> openai.OpenAI:
    responses_fake.clear()
    return openai.OpenAI(base_url=responses_fake.api_url, api_key=KEY, max_retries=0)


@pytest.fixture
def gemini(gemini_fake: FakeGemini) -> genai.Client:
    gemini_fake.clear()
    options = genai_types.HttpOptions(base_url=gemini_fake.base_url, api_version="v1beta")
    return genai.Client(api_key=KEY, http_options=options)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------------
# Schema samples and the scenario queue (plumbing)


def test_sample_arguments_fill_required_properties_only() -> None:
    assert sample_for_arguments(WEATHER_SCHEMA) == {"city": "x", "unit": "celsius"}


def test_sample_output_fills_every_property_with_typed_values() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING"},
            "score": {"type": "NUMBER"},
            "ok": {"type": "BOOLEAN"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "level": {"$ref": "#/$defs/Level"},
            "nested": {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}},
        },
        "$defs": {"Level": {"enum": ["low", "high"]}},
    }
    assert sample_for_output(schema) == {
        "name": "x", "score": 1.5, "ok": True, "tags": [], "level": "low", "nested": {"n": 1},
    }


def test_scenarios_are_served_fifo_and_clear_forgets_everything(anthropic_fake: FakeAnthropic) -> None:
    anthropic_fake.clear()
    anthropic_fake.push(Scenario(text="one"), Scenario(text="two"))
    assert anthropic_fake.next_scenario() == Scenario(text="one")
    assert anthropic_fake.pending == 1
    anthropic_fake.clear()
    assert anthropic_fake.next_scenario() is None


def test_concurrent_requests_each_get_one_scenario(claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    anthropic_fake.push(*(Scenario(text=f"reply {n}") for n in range(8)))
    texts: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        message = claude.messages.create(model="claude-opus-4-8", max_tokens=50, messages=user("hi"))
        with lock:
            texts.append(message.content[0].text)  # type: ignore[union-attr]

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(texts) == sorted(f"reply {n}" for n in range(8))
    assert len(anthropic_fake.requests) == 8


# ---------------------------------------------------------------------------
# Anthropic


def test_anthropic_default_reply_usage_and_headers(claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=100, messages=user("How are you?")
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from fake-anthropic. You said: How are you?"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 10
    assert message.usage.cache_read_input_tokens == 0
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "4000"
    recorded = anthropic_fake.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["anthropic-version"]
    assert recorded.body["messages"] == user("How are you?")


def test_anthropic_thinking_stream_has_real_event_sequence(
    claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic
) -> None:
    raw = httpx2.post(
        f"{anthropic_fake.base_url}/v1/messages",
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 50, "messages": user("hi"), "stream": True},
    )
    raw_kinds = [line[7:] for line in raw.text.split("\n") if line.startswith("event: ")]
    assert raw_kinds == ["message_start", "content_block_start", "ping", "content_block_delta",
                         "content_block_delta", "content_block_delta", "content_block_stop", "message_delta",
                         "message_stop"]
    stream = claude.messages.create(
        model="claude-opus-4-8", max_tokens=4000, messages=user("Why is the sky blue?"),
        thinking={"type": "enabled", "budget_tokens": 2048}, stream=True,
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    delta_kinds = [event.delta.type for event in events if event.type == "content_block_delta"]
    assert delta_kinds.count("thinking_delta") >= 2
    assert delta_kinds.count("text_delta") >= 2
    assert delta_kinds.index("signature_delta") < delta_kinds.index("text_delta")
    final = events[-2]
    assert final.type == "message_delta"
    assert final.delta.stop_reason == "end_turn"
    assert final.usage.output_tokens_details is not None
    assert final.usage.output_tokens_details.thinking_tokens > 0


def test_anthropic_stream_accumulates_thinking_with_signature(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-opus-4-8", max_tokens=100, messages=user("ponder"), thinking={"type": "adaptive"}
    ) as stream:
        message = stream.get_final_message()
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Thinking about: ponder"
    assert len(thinking.signature) > 20
    assert text.type == "text" and text.text.endswith("You said: ponder")


def test_anthropic_parallel_tool_calls_stream_in_fragments(claude: anthropic.Anthropic) -> None:
    tools: Any = [
        {"name": "get_weather", "description": "w", "input_schema": WEATHER_SCHEMA},
        {"name": "get_time", "input_schema": TIME_SCHEMA},
    ]
    events = list(claude.messages.create(
        model="claude-opus-4-8", max_tokens=500, messages=user("CALL_TOOLS_PARALLEL please"), tools=tools,
        stream=True,
    ))
    fragments = [e.delta.partial_json for e in events if e.type == "content_block_delta"
                 and e.delta.type == "input_json_delta" and e.index == 0]
    assert len(fragments) >= 2
    assert orjson.loads("".join(fragments)) == {"city": "x", "unit": "celsius"}
    with claude.messages.stream(
        model="claude-opus-4-8", max_tokens=500, messages=user("CALL_TOOLS_PARALLEL please"), tools=tools
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in message.content if b.type == "tool_use"] == [
        ("get_weather", {"city": "x", "unit": "celsius"}), ("get_time", {"tz": "x"}),
    ]


def test_anthropic_tool_result_turn_is_acknowledged(claude: anthropic.Anthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "CALL_TOOL"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "12:00"}]},
    ]
    message = claude.messages.create(model="claude-opus-4-8", max_tokens=100, messages=messages)
    assert message.content[0].text == "Tool result received: 12:00"  # type: ignore[union-attr]


def test_anthropic_images_json_output_stop_rules(claude: anthropic.Anthropic) -> None:
    image: Any = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                  {"type": "text", "text": "what is this"}]
    seen = claude.messages.create(model="m", max_tokens=100, messages=[{"role": "user", "content": image}])
    assert seen.content[0].text.endswith("You said: what is this [saw 1 image(s): image/png]")  # type: ignore[union-attr]
    structured = claude.messages.create(
        model="m", max_tokens=100, messages=user("give json"),
        output_config={"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}},
    )
    assert orjson.loads(structured.content[0].text) == {"city": "x", "unit": "celsius", "days": 1}  # type: ignore[union-attr]
    short = claude.messages.create(model="m", max_tokens=2, messages=user("a long question indeed"))
    assert short.stop_reason == "max_tokens"
    stopped = claude.messages.create(model="m", max_tokens=100, messages=user("hi"), stop_sequences=["You"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "You")
    assert stopped.content[0].text == "Hello from fake-anthropic. "  # type: ignore[union-attr]


def test_anthropic_cache_control_reports_cached_tokens(claude: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": "You are terse. " * 40, "cache_control": {"type": "ephemeral"}}]
    message = claude.messages.create(model="m", max_tokens=100, system=system, messages=user("hi"))
    assert message.usage.cache_read_input_tokens == 64


def test_anthropic_claude_code_shaped_beta_request_is_accepted(
    claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic
) -> None:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code."},
                   {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]},
                     {"role": "system", "content": "Reminder: be brief."}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {}}}],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": '{"session": "abc"}'},
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01",
               "anthropic-beta": "claude-code-20250219,mid-conversation-system-2026-04-07"}
    response = httpx2.post(f"{anthropic_fake.base_url}/v1/messages?beta=true", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert b"event: message_stop" in response.content
    assert anthropic_fake.requests[-1].query == {"beta": "true"}
    # The same shape through the SDK's beta namespace.
    message = claude.beta.messages.create(
        model="claude-opus-4-8", max_tokens=1000, messages=body["messages"],
        thinking={"type": "adaptive"}, context_management=body["context_management"],
        betas=["context-management-2025-06-27"],
    )
    assert message.content[-1].text == "Hello from fake-anthropic. You said: hello"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "bogus"}]}]}, "messages.0.content.0: Input tag 'bogus'"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role: Input should be"),
        ({"messages": user("x"), "extra_body": {"temperature_x": 1}}, "temperature_x: Extra inputs are not permitted"),
        ({"messages": user("x"), "thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"messages": user("x"), "thinking": {"type": "enabled", "budget_tokens": 2000}}, "`max_tokens` must be greater"),
        ({"messages": []}, "at least one message is required"),
        ({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}}]},
            {"role": "user", "content": "never answered"},
        ]}, "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
        ({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call.1", "name": "a", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call.1", "content": "ok"}]},
        ]}, "String should match pattern"),
        ({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "orphan"}]}]}, "unexpected `tool_use_id`"),
    ],
)
def test_anthropic_rejects_what_the_api_rejects(claude: anthropic.Anthropic, kwargs: Any, expected: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="claude-opus-4-8", max_tokens=1500, **kwargs)
    body: Any = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert expected in body["error"]["message"]


def test_anthropic_missing_max_tokens_is_rejected(anthropic_fake: FakeAnthropic) -> None:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    response = httpx2.post(f"{anthropic_fake.base_url}/v1/messages", json={"model": "m", "messages": user("x")},
                           headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "max_tokens: Field required"


def test_anthropic_auth_and_version_header(anthropic_fake: FakeAnthropic) -> None:
    wrong = anthropic.Anthropic(base_url=anthropic_fake.base_url, api_key="nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(model="m", max_tokens=10, messages=user("x"))
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    url = f"{anthropic_fake.base_url}/v1/messages"
    body = {"model": "m", "max_tokens": 10, "messages": user("x")}
    by_header = httpx2.post(url, json=body, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert by_header.status_code == 200
    no_version = httpx2.post(url, json=body, headers={"x-api-key": KEY})
    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]


def test_anthropic_scripted_errors_raise_sdk_classes(claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    anthropic_fake.push(Scenario.fail(429, "Number of requests has exceeded your rate limit", retry_after=17),
                        Scenario.fail(529, "Overloaded"), Scenario.fail(500, "boom"))
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(model="m", max_tokens=10, messages=user("x"))
    assert limited.value.response.headers["retry-after"] == "17"
    assert limited.value.response.headers["anthropic-ratelimit-tokens-remaining"]
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert limited.value.body["request_id"] == limited.value.response.headers["request-id"]  # type: ignore[index]
    with pytest.raises(anthropic.OverloadedError):
        claude.messages.create(model="m", max_tokens=10, messages=user("x"))
    with pytest.raises(anthropic.InternalServerError) as failed:
        claude.messages.create(model="m", max_tokens=10, messages=user("x"))
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_anthropic_cut_stream_raises_in_sdk(claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    anthropic_fake.push(Scenario(cut_after=4))
    seen: list[str] = []
    # older SDKs let the transport's error through; newer ones wrap it in APIConnectionError
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
        for event in claude.messages.create(model="m", max_tokens=100, messages=user("a b c d e f"), stream=True):
            seen.append(event.type)
    assert seen[0] == "message_start"
    assert "message_stop" not in seen


def test_anthropic_delay_and_scripted_content(claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    anthropic_fake.push(Scenario(text="scripted", thinking="hmm", delay=0.3, usage={"output_tokens": 99}))
    started = time.monotonic()
    message = claude.messages.create(model="m", max_tokens=100, messages=user("x"))
    assert time.monotonic() - started >= 0.3
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.usage.output_tokens == 99
    anthropic_fake.push(Scenario(chunk_delay=0.05))
    started = time.monotonic()
    list(claude.messages.create(model="m", max_tokens=100, messages=user("slow"), stream=True))
    assert time.monotonic() - started >= 0.3


def test_anthropic_count_tokens_and_models(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="claude-opus-4-8", messages=user("hello"))
    assert counted.input_tokens > 0
    models = claude.models.list()
    assert "claude-opus-4-8" in [model.id for model in models.data]


# ---------------------------------------------------------------------------
# OpenAI chat completions


def test_chat_default_reply_with_reasoning_and_headers(chat: openai.OpenAI, chat_fake: FakeOpenAIChat) -> None:
    raw = chat.chat.completions.with_raw_response.create(
        model="gpt-5.1", messages=user("Hello?"), reasoning_effort="high", prompt_cache_key="k1"
    )
    completion = raw.parse()
    message = completion.choices[0].message
    assert message.content == "Hello from fake-openai-chat. You said: Hello?"
    assert message.model_extra == {"reasoning_content": "Thinking about: Hello?"}
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.completion_tokens_details.reasoning_tokens or 0) > 0  # type: ignore[union-attr]
    assert 0 < (completion.usage.prompt_tokens_details.cached_tokens or 0) <= 64  # type: ignore[union-attr]
    uncached = chat.chat.completions.create(model="gpt-5.1", messages=user("Hello?"))
    assert uncached.usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    assert uncached.choices[0].message.model_extra == {}
    assert raw.headers["x-ratelimit-remaining-requests"] == "9999"
    assert chat_fake.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


def test_chat_stream_usage_only_when_asked(chat: openai.OpenAI, chat_fake: FakeOpenAIChat) -> None:
    chunks = list(chat.chat.completions.create(model="gpt-5.1", messages=user("a b c"), stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from fake-openai-chat. You said: a b c"
    with_usage = list(chat.chat.completions.create(
        model="gpt-5.1", messages=user("a b c"), stream=True, stream_options={"include_usage": True},
        reasoning_effort="low",
    ))
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-2].choices[0].finish_reason == "stop"
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in with_usage[:-1])
    assert reasoning == "Thinking about: a b c"
    raw = httpx2.post(f"{chat_fake.api_url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "m", "messages": user("x"), "stream": True})
    assert raw.text.endswith("data: [DONE]\n\n")


def test_chat_parallel_tool_calls_stream_in_fragments(chat: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}},
                  {"type": "function", "function": {"name": "get_time", "parameters": TIME_SCHEMA}}]
    chunks = list(chat.chat.completions.create(
        model="gpt-5.1", messages=user("CALL_TOOLS_PARALLEL"), tools=tools, stream=True
    ))
    argument_fragments = [call.function.arguments for chunk in chunks if chunk.choices
                          for call in chunk.choices[0].delta.tool_calls or [] if call.index == 0 and call.function]
    assert len([fragment for fragment in argument_fragments if fragment]) >= 2
    with chat.chat.completions.stream(model="gpt-5.1", messages=user("CALL_TOOLS_PARALLEL"), tools=tools) as stream:
        completion = stream.get_final_completion()
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "x", "unit": "celsius"}), ("get_time", {"tz": "x"}),
    ]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_chat_tool_result_images_and_json(chat: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": "CALL_TOOL"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                              "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
    ]
    answered = chat.chat.completions.create(model="m", messages=messages)
    assert answered.choices[0].message.content == "Tool result received: noon"
    image: Any = [{"type": "text", "text": "look"},
                  {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}]
    seen = chat.chat.completions.create(model="m", messages=[{"role": "user", "content": image}])
    assert seen.choices[0].message.content == "Hello from fake-openai-chat. You said: look [saw 1 image(s): image/png]"
    structured = chat.chat.completions.create(
        model="m", messages=user("json"),
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_SCHEMA}},
    )
    assert orjson.loads(structured.choices[0].message.content or "") == {"city": "x", "unit": "celsius", "days": 1}
    short = chat.chat.completions.create(model="m", messages=user("x y z"), max_completion_tokens=1)
    assert short.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"messages": user("x"), "extra_body": {"thinking": True}}, "Unrecognized request argument supplied: thinking"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"messages": []}, "too short"),
        ({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "user", "content": "next"},
        ]}, "did not have response messages: call_2"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "y"}]},
         "must be a response to a preceeding message with 'tool_calls'"),
    ],
)
def test_chat_rejects_what_the_api_rejects(chat: openai.OpenAI, kwargs: Any, expected: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat.chat.completions.create(model="gpt-5.1", **kwargs)
    body: Any = caught.value.body
    assert body["type"] == "invalid_request_error"
    assert expected in body["message"]


def test_chat_errors_auth_and_cut_stream(chat: openai.OpenAI, chat_fake: FakeOpenAIChat) -> None:
    chat_fake.push(Scenario.fail(429, "Rate limit reached", retry_after=2), Scenario.fail(503, "unavailable"))
    with pytest.raises(openai.RateLimitError) as limited:
        chat.chat.completions.create(model="m", messages=user("x"))
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        chat.chat.completions.create(model="m", messages=user("x"))
    wrong = openai.OpenAI(base_url=chat_fake.api_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.chat.completions.create(model="m", messages=user("x"))
    assert denied.value.code == "invalid_api_key"
    chat_fake.push(Scenario(cut_after=2))
    with pytest.raises(openai.APIConnectionError):
        list(chat.chat.completions.create(model="m", messages=user("a b c d"), stream=True))


def test_chat_custom_base_path_extra_fields_and_models() -> None:
    with FakeOpenAIChat(api_keys=[KEY], base_path="/api/v3", extra_fields=["chat_template_kwargs"]) as fake:
        client = openai.OpenAI(base_url=fake.api_url, api_key=KEY, max_retries=0)
        completion = client.chat.completions.create(
            model="m", messages=user("hi"), extra_body={"chat_template_kwargs": {"enable_thinking": False}}
        )
        assert completion.choices[0].message.content == "Hello from fake-openai-chat. You said: hi"
        assert fake.requests[-1].path == "/api/v3/chat/completions"
        assert "gpt-5.1" in [model.id for model in client.models.list()]


# ---------------------------------------------------------------------------
# OpenAI Responses


def test_responses_reasoning_summary_and_encrypted_content(responses: openai.OpenAI) -> None:
    response = responses.responses.create(
        model="gpt-5.1", input="Why?", reasoning={"effort": "medium", "summary": "auto"},
        include=["reasoning.encrypted_content"], store=False,
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == "Thinking about: Why?"
    assert reasoning.encrypted_content
    assert message.type == "message"
    assert response.output_text == "Hello from fake-openai-responses. You said: Why?"
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens > 0
    plain = responses.responses.create(model="gpt-5.1", input="Why?", reasoning={"effort": "low"})
    assert plain.output[0].type == "reasoning"
    assert plain.output[0].summary == [] and plain.output[0].encrypted_content is None


def test_responses_stream_event_sequence(responses: openai.OpenAI) -> None:
    events = list(responses.responses.create(
        model="gpt-5.1", input="hello world", reasoning={"summary": "auto"}, stream=True
    ))
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    for expected in ("response.reasoning_summary_text.delta", "response.content_part.added",
                     "response.output_text.done", "response.content_part.done", "response.output_item.done"):
        assert expected in kinds
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "Hello from fake-openai-responses. You said: hello world"
    with responses.responses.stream(model="gpt-5.1", input="hello") as stream:
        assert stream.get_final_response().output_text.endswith("You said: hello")


def test_responses_codex_shaped_request_with_parallel_calls(responses: openai.OpenAI) -> None:
    tools: Any = [
        {"type": "function", "name": "shell", "parameters": WEATHER_SCHEMA, "strict": False},
        {"type": "function", "name": "apply_patch", "parameters": TIME_SCHEMA},
        {"type": "web_search"},
    ]
    items: Any = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "CALL_TOOLS_PARALLEL"}]},
    ]
    events = list(responses.responses.create(
        model="gpt-5.1-codex", input=items, tools=tools, tool_choice="auto", parallel_tool_calls=True,
        reasoning={"summary": "auto"}, store=False, include=["reasoning.encrypted_content"],
        prompt_cache_key="session-1", stream=True, extra_body={"client_metadata": {"origin": "codex"}},
    ))
    argument_deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(argument_deltas) >= 4
    final: Any = events[-1].response  # type: ignore[union-attr]
    calls: list[Any] = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("shell", {"city": "x", "unit": "celsius"}), ("apply_patch", {"tz": "x"}),
    ]
    assert final.usage.input_tokens_details.cached_tokens == 64
    follow_up: Any = [*items, *({"type": "function_call", "call_id": c.call_id, "name": c.name,
                                  "arguments": c.arguments} for c in calls),
                      *({"type": "function_call_output", "call_id": c.call_id, "output": "done"} for c in calls)]
    answered = responses.responses.create(model="gpt-5.1-codex", input=follow_up, tools=tools)
    assert answered.output_text == "Tool result received: done\ndone"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]},
         "No tool call found for function call output with call_id call_9"),
        ({"input": [{"type": "function_call", "call_id": "call_8", "name": "a", "arguments": "{}"}]},
         "No tool output found for function call call_8"),
        ({"input": "x", "extra_body": {"messages": []}}, "Unknown parameter: 'messages'"),
        ({"input": [{"role": "user", "content": [{"type": "text", "text": "chat-style part"}]}]}, "input"),
    ],
)
def test_responses_rejects_what_the_api_rejects(responses: openai.OpenAI, kwargs: Any, expected: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        responses.responses.create(model="gpt-5.1", **kwargs)
    assert expected in caught.value.body["message"]  # type: ignore[index]


def test_responses_json_incomplete_errors_and_cut(responses: openai.OpenAI, responses_fake: FakeOpenAIResponses) -> None:
    structured = responses.responses.create(
        model="m", input="json", text={"format": {"type": "json_schema", "name": "w", "schema": WEATHER_SCHEMA}}
    )
    assert orjson.loads(structured.output_text) == {"city": "x", "unit": "celsius", "days": 1}
    short = responses.responses.create(model="m", input="a b c", max_output_tokens=2)
    assert short.status == "incomplete"
    assert short.incomplete_details is not None and short.incomplete_details.reason == "max_output_tokens"
    responses_fake.push(Scenario.fail(429, "Rate limit reached", retry_after=4))
    with pytest.raises(openai.RateLimitError) as limited:
        responses.responses.create(model="m", input="x")
    assert limited.value.response.headers["retry-after"] == "4"
    responses_fake.push(Scenario(cut_after=5))
    with pytest.raises(openai.APIConnectionError):
        list(responses.responses.create(model="m", input="a b c", stream=True))


# ---------------------------------------------------------------------------
# Gemini


def test_gemini_thinking_reply_and_usage(gemini: genai.Client, gemini_fake: FakeGemini) -> None:
    config = genai_types.GenerateContentConfig(thinking_config=genai_types.ThinkingConfig(include_thoughts=True))
    response = gemini.models.generate_content(model="gemini-2.5-flash", contents="hello there", config=config)
    thought, text = response.candidates[0].content.parts  # type: ignore[index, union-attr, misc]
    assert thought.thought is True and thought.text == "Thinking about: hello there"
    assert thought.thought_signature and thought.thought_signature.startswith(b"fake-sig:")
    assert text.text == "Hello from fake-gemini. You said: hello there"
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count and usage.thoughts_token_count > 0
    assert usage.total_token_count == (usage.prompt_token_count or 0) + (usage.candidates_token_count or 0) + (
        usage.thoughts_token_count
    )
    recorded = gemini_fake.requests[-1]
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == KEY


def test_gemini_sse_stream_ends_with_finish_reason_and_usage(gemini: genai.Client, gemini_fake: FakeGemini) -> None:
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="one two three four"))
    assert len(chunks) >= 3
    assert all(chunk.candidates[0].finish_reason is None for chunk in chunks[:-1])  # type: ignore[index]
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP  # type: ignore[index]
    assert chunks[-1].usage_metadata.candidates_token_count  # type: ignore[union-attr]
    assert "".join(chunk.text or "" for chunk in chunks) == "Hello from fake-gemini. You said: one two three four"
    assert gemini_fake.requests[-1].query == {"alt": "sse"}
    raw = httpx2.post(f"{gemini_fake.base_url}/v1beta/models/m:streamGenerateContent?alt=sse&key={KEY}",
                      json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.startswith("data: {") and raw.text.endswith("}\r\n\r\n")


def test_gemini_stream_without_sse_is_a_json_array(gemini_fake: FakeGemini) -> None:
    raw = httpx2.post(f"{gemini_fake.base_url}/v1/models/m:streamGenerateContent",
                      headers={"x-goog-api-key": KEY},
                      json={"contents": [{"role": "user", "parts": [{"text": "a b c d e f"}]}]})
    chunks = raw.json()
    assert isinstance(chunks, list) and len(chunks) >= 2
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]


def test_gemini_function_calls_and_function_response(gemini: genai.Client) -> None:
    declarations = [genai_types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER_SCHEMA),
                    genai_types.FunctionDeclaration(name="get_time", parameters=genai_types.Schema(
                        type=genai_types.Type.OBJECT, properties={"tz": genai_types.Schema(type=genai_types.Type.STRING)},
                        required=["tz"]))]
    config = genai_types.GenerateContentConfig(
        tools=[genai_types.Tool(function_declarations=declarations)],
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
    )
    response = gemini.models.generate_content(model="m", contents="CALL_TOOLS_PARALLEL", config=config)
    calls = response.function_calls or []
    assert [(call.name, call.args) for call in calls] == [
        ("get_weather", {"city": "x", "unit": "celsius"}), ("get_time", {"tz": "x"}),
    ]
    history = [
        genai_types.Content(role="user", parts=[genai_types.Part(text="CALL_TOOL")]),
        genai_types.Content(role="model", parts=[genai_types.Part(function_call=genai_types.FunctionCall(
            name="get_time", args={"tz": "x"}))]),
        genai_types.Content(role="user", parts=[genai_types.Part(function_response=genai_types.FunctionResponse(
            name="get_time", response={"result": "noon"}))]),
    ]
    answered = gemini.models.generate_content(model="m", contents=history, config=config)
    assert answered.text == "Tool result received: noon"


def test_gemini_cli_classifier_gets_schema_shaped_json(gemini: genai.Client) -> None:
    schema = {"type": "object", "properties": {"complexity_reasoning": {"type": "string"},
                                                "complexity_score": {"type": "integer"}}}
    config = genai_types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema,
        thinking_config=genai_types.ThinkingConfig(thinking_level=genai_types.ThinkingLevel.HIGH),
    )
    response = gemini.models.generate_content(model="gemini-3.5-flash-lite", contents="classify", config=config)
    assert orjson.loads(response.text or "") == {"complexity_reasoning": "x", "complexity_score": 1}


def test_gemini_image_and_max_tokens(gemini: genai.Client) -> None:
    parts = [genai_types.Part(text="see"), genai_types.Part(inline_data=genai_types.Blob(
        data=b"\x89PNG", mime_type="image/png"))]
    seen = gemini.models.generate_content(model="m", contents=[genai_types.Content(role="user", parts=parts)])
    assert seen.text == "Hello from fake-gemini. You said: see [saw 1 image(s): image/png]"
    short = gemini.models.generate_content(
        model="m", contents="a b c", config=genai_types.GenerateContentConfig(max_output_tokens=1)
    )
    assert short.candidates[0].finish_reason == genai_types.FinishReason.MAX_TOKENS  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "temperature": 1},
         'Unknown name "temperature": Cannot find field.'),
        ({"contents": [{"role": "user", "parts": [{"text": "x", "bogus": 1}]}]}, 'Unknown name "bogus"'),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]},
                       {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                       {"role": "user", "parts": [{"functionResponse": {"response": {"r": 1}}}]}]},
         "function_response.name: Name cannot be empty."),
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]},
                       {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}},
                                                   {"functionCall": {"name": "g", "args": {}}}]},
                       {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
         "number of function response parts is equal to the number of function call parts"),
        ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "%%%"}}]}]},
         "Invalid value at 'contents[0].parts[0].inlineData.data'"),
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
          "generationConfig": {"thinkingConfig": {"thinkingLevel": "ENORMOUS"}}},
         "generationConfig.thinking_config.thinking_level"),
    ],
)
@pytest.mark.filterwarnings("ignore:ENORMOUS is not a valid")
def test_gemini_rejects_what_the_api_rejects(gemini_fake: FakeGemini, body: Any, expected: str) -> None:
    response = httpx2.post(f"{gemini_fake.base_url}/v1beta/models/m:generateContent",
                           headers={"x-goog-api-key": KEY}, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert expected in error["message"]


def test_gemini_sdk_sees_validation_error(gemini: genai.Client) -> None:
    bad = [genai_types.Content(role="user", parts=[]), genai_types.Content(role="user", parts=[genai_types.Part(text="x")])]
    with pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model="m", contents=bad)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"


def test_gemini_auth_errors_and_cut_stream(gemini: genai.Client, gemini_fake: FakeGemini) -> None:
    url = f"{gemini_fake.base_url}/v1beta/models/m:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    assert httpx2.post(f"{url}?key={KEY}", json=body).status_code == 200
    assert httpx2.post(url, json=body).json()["error"]["status"] == "PERMISSION_DENIED"
    assert httpx2.post(f"{url}?key=wrong", json=body).json()["error"]["message"].startswith("API key not valid")
    gemini_fake.push(Scenario.fail(429, "Resource has been exhausted", retry_after=30), Scenario.fail(503, "overloaded"))
    with pytest.raises(genai_errors.ClientError) as limited:
        gemini.models.generate_content(model="m", contents="x")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert limited.value.response.headers["retry-after"] == "30"
    assert limited.value.details["error"]["details"][0]["retryDelay"] == "30s"
    with pytest.raises(genai_errors.ServerError) as unavailable:
        gemini.models.generate_content(model="m", contents="x")
    assert unavailable.value.status == "UNAVAILABLE"
    gemini_fake.push(Scenario(cut_after=2))
    with pytest.raises(httpx2.RemoteProtocolError):
        list(gemini.models.generate_content_stream(model="m", contents="a b c d e f g h"))


def test_gemini_count_tokens_and_models(gemini: genai.Client) -> None:
    assert (gemini.models.count_tokens(model="gemini-2.5-flash", contents="hello").total_tokens or 0) > 0
    assert "models/gemini-2.5-flash" in [model.name for model in gemini.models.list()]


# ---------------------------------------------------------------------------
# Scripted content across dialects


def test_scripted_tool_calls_stop_reason_and_json_value(
    chat: openai.OpenAI, chat_fake: FakeOpenAIChat, gemini: genai.Client, gemini_fake: FakeGemini
) -> None:
    chat_fake.push(Scenario(tool_calls=[("lookup", {"q": "a"}), ("lookup", {"q": "b"})]),
                   Scenario(text="filtered", stop_reason="content_filter"))
    called = chat.chat.completions.create(model="m", messages=user("anything"))
    calls = called.choices[0].message.tool_calls or []
    assert [orjson.loads(call.function.arguments) for call in calls] == [{"q": "a"}, {"q": "b"}]  # type: ignore[union-attr]
    assert len({call.id for call in calls}) == 2
    filtered = chat.chat.completions.create(model="m", messages=user("anything"))
    assert filtered.choices[0].finish_reason == "content_filter"
    gemini_fake.push(Scenario(json_value={"answer": 42}))
    assert gemini.models.generate_content(model="m", contents="x").text == '{"answer":42}'


def test_scripted_error_type_overrides_the_default(claude: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    anthropic_fake.push(Scenario.fail(400, "prompt is too long: 250000 tokens > 200000 maximum",
                                      type="invalid_request_error"), Scenario.fail(403, "no", type="billing_error"))
    with pytest.raises(anthropic.BadRequestError) as too_long:
        claude.messages.create(model="m", max_tokens=10, messages=user("x"))
    assert too_long.value.body["error"]["message"].startswith("prompt is too long")  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        claude.messages.create(model="m", max_tokens=10, messages=user("x"))
    assert denied.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
