"""Legacy text completions: an ingress dialect translated to and from the IR,
checked against the ``openai`` SDK's ``Completion`` types and client."""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import Completion
from openai.types.completion_create_params import CompletionCreateParamsBase
from pydantic import TypeAdapter

from crossroads import assemble, ir
from crossroads.dialects import openai_chat
from crossroads.dialects.openai_completions import DIALECT

_PARAMS = TypeAdapter(CompletionCreateParamsBase)


def sse_frames(raw: bytes) -> list[str]:
    frames = []
    for block in raw.decode().split("\n\n"):
        if block:
            assert block.startswith("data: "), block
            frames.append(block[len("data: "):])
    return frames


def encode_all(events: Iterable[ir.Event], request: ir.Request | None = None) -> bytes:
    encoder = DIALECT.stream_encoder(model="gpt-instruct", request=request)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def decode(lines: list[Any]) -> list[ir.Event]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    for line in lines:
        events.extend(decoder.feed(None, line if isinstance(line, str) else orjson.dumps(line).decode()))
    return events + decoder.close()


def assembled(events: Iterable[ir.Event]) -> ir.Response:
    assembler = assemble.Assembler()
    assembler.feed_all(events)
    return assembler.response()


def strict_chunk(frame: str) -> Completion:
    """The SDK types ``finish_reason`` as non-null, yet the real API streams null
    until the last chunk (the SDK builds stream chunks without validation). Check
    everything else strictly."""
    payload = orjson.loads(frame)
    for choice in payload["choices"]:
        if choice["finish_reason"] is None:
            choice["finish_reason"] = "stop"
    return Completion.model_validate(payload)


def sdk_client(handler: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://upstream.test/v1", api_key="sk-test", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


# ---------------------------------------------------------------------------
# requests


def test_prompt_becomes_one_user_message_with_the_sampling_fields() -> None:
    body = {"model": "gpt-instruct", "prompt": "Once upon a time", "max_tokens": 64, "temperature": 0.7,
            "top_p": 0.9, "n": 1, "stop": "\n", "seed": 3, "user": "u", "presence_penalty": 0.1,
            "frequency_penalty": 0.2, "logprobs": 2, "best_of": 1, "stream": True,
            "stream_options": {"include_usage": True}}
    request = DIALECT.parse_request(body)
    assert request.messages == [ir.Message("user", [ir.TextPart("Once upon a time")])]
    assert request.system == []
    assert (request.max_tokens, request.temperature, request.top_p, request.n, request.seed) == (64, 0.7, 0.9, 1, 3)
    assert (request.stop, request.user, request.stream, request.include_usage) == (["\n"], "u", True, True)
    assert request.extra["openai-completions"] == {"logprobs": 2, "best_of": 1}
    assert DIALECT.render_request(request) == body
    _PARAMS.validate_python(DIALECT.render_request(request))


def test_single_prompt_in_a_list() -> None:
    body = {"model": "m", "prompt": ["def add(a, b):"], "echo": False}
    request = DIALECT.parse_request(body)
    assert request.messages[0].parts == [ir.TextPart("def add(a, b):")]
    assert DIALECT.render_request(request) == body


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "prompt": ["a", "b"]}, "prompt"),
    ({"model": "m", "prompt": [1, 2, 3]}, "prompt"),
    ({"model": "m", "prompt": [[1, 2]]}, "prompt"),
    ({"model": "m", "prompt": "x", "suffix": "y"}, "suffix"),
    ({"model": "m", "prompt": "x", "echo": True}, "echo"),
    ({"model": "m", "prompt": 5}, "prompt"),
    ({"prompt": "x"}, "model"),
    ({"model": "m", "prompt": "x", "max_tokens": "many"}, "max_tokens"),
    ({"model": "m", "prompt": "x", "stop": [None]}, "stop[0]"),
])
def test_unsupported_or_malformed_requests_are_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ir.Error) as caught:
        DIALECT.parse_request(body)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_translated_request_renders_as_a_valid_chat_request() -> None:
    request = DIALECT.parse_request({"model": "m", "prompt": "Say hi", "max_tokens": 5, "logprobs": 1})
    chat_body = openai_chat.DIALECT.render_request(request)
    assert chat_body == {"model": "m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 5}


def test_multi_turn_ir_flattens_into_one_prompt() -> None:
    request = ir.Request(model="m", system=[ir.TextPart("Be brief.")], messages=[
        ir.Message("user", [ir.TextPart("Q1")]), ir.Message("assistant", [ir.TextPart("A1")]),
        ir.Message("user", [ir.TextPart("Q2")])], stop=["x", "y"], max_tokens=9)
    body = DIALECT.render_request(request)
    assert body == {"model": "m", "prompt": "Be brief.\n\nQ1\n\nA1\n\nQ2", "max_tokens": 9, "stop": ["x", "y"]}
    _PARAMS.validate_python(body)


_text = st.text(max_size=20)
_ident = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10)


@st.composite
def completion_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(_ident), "prompt": draw(_text | st.lists(_text, max_size=1))}
    body.update(draw(st.fixed_dictionaries({}, optional={
        "max_tokens": st.integers(1, 4096), "temperature": st.floats(0, 2), "top_p": st.floats(0, 1),
        "n": st.integers(1, 3), "seed": st.integers(0, 2**31), "user": _text,
        "stop": _text | st.lists(_text, min_size=1, max_size=4),
        "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2),
        "logprobs": st.integers(0, 5), "logit_bias": st.dictionaries(st.integers(0, 99).map(str),
                                                                      st.integers(-100, 100), max_size=2),
        "echo": st.just(False), "stream": st.booleans(),
    })))
    if body.get("stream"):
        body["stream_options"] = {"include_usage": draw(st.booleans())}
    return body


@settings(max_examples=200, deadline=None)
@given(completion_requests())
def test_request_round_trip(body: dict[str, Any]) -> None:
    request = DIALECT.parse_request(body)
    rendered = DIALECT.render_request(request)
    assert rendered == body
    _PARAMS.validate_python(rendered)
    assert_chat = openai_chat.DIALECT.render_request(request)
    assert assert_chat["messages"] == [{"role": "user", "content": request.messages[0].parts[0].text}]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# responses


def test_render_response_from_chat_ir() -> None:
    chat_body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "gpt-x",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!",
                                                      "reasoning_content": "greet"},
                              "finish_reason": "length"}],
                 "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6,
                           "completion_tokens_details": {"reasoning_tokens": 1}}}
    body = DIALECT.render_response(openai_chat.DIALECT.parse_response(chat_body))
    completion = Completion.model_validate(body)
    assert completion.object == "text_completion"
    assert (completion.choices[0].text, completion.choices[0].finish_reason) == ("Hello!", "length")
    assert completion.usage is not None and completion.usage.total_tokens == 6
    assert body["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                              ("tool_use", "stop"), ("content_filter", "content_filter"),
                                              ("refusal", "content_filter"), (None, "stop")])
def test_finish_reasons_stay_within_the_completion_literals(stop: ir.StopReason | None, finish: str) -> None:
    body = DIALECT.render_response(ir.Response(id="x", model="m", parts=[ir.TextPart("t")], stop_reason=stop))
    assert body["choices"][0]["finish_reason"] == finish
    Completion.model_validate(body)


@settings(max_examples=100, deadline=None)
@given(text=_text, finish=st.sampled_from(["stop", "length", "content_filter"]),
       usage=st.none() | st.tuples(st.integers(0, 10**5), st.integers(0, 10**5)),
       fingerprint=st.none() | _ident)
def test_response_round_trip(text: str, finish: str, usage: tuple[int, int] | None, fingerprint: str | None) -> None:
    body: dict[str, Any] = {"id": "cmpl-1", "object": "text_completion", "created": 9, "model": "m",
                            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    if fingerprint is not None:
        body["system_fingerprint"] = fingerprint
    assert DIALECT.render_response(DIALECT.parse_response(body)) == body


def test_sdk_client_reads_a_rendered_response() -> None:
    response = ir.Response(id="r", model="m", parts=[ir.TextPart("42")], stop_reason="end_turn")
    client = sdk_client(lambda request: httpx2.Response(200, json=DIALECT.render_response(response)))
    completion = client.completions.create(model="m", prompt="6*7=")
    assert completion.choices[0].text == "42"


# ---------------------------------------------------------------------------
# streams

RESPONSE = ir.Response(id="msg_1", model="claude-x",
                       parts=[ir.ThinkingPart("hidden"), ir.TextPart("Hello, "), ir.TextPart("world")],
                       stop_reason="end_turn", usage=ir.Usage(input_tokens=3, output_tokens=4))


def test_stream_encoder_frames_are_sdk_completions_and_usage_comes_last() -> None:
    raw = encode_all(assemble.events_for(RESPONSE), ir.Request(model="m", include_usage=True))
    frames = sse_frames(raw)
    assert frames[-1] == "[DONE]"
    chunks = [strict_chunk(f) for f in frames[:-1]]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello, world"
    finishes = [orjson.loads(f)["choices"][0]["finish_reason"] for f in frames[:-2]]
    assert finishes == [None, None, "stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
    assert all(c.model == "gpt-instruct" for c in chunks)
    assert "hidden" not in raw.decode()


def test_stream_encoder_without_usage_request() -> None:
    frames = sse_frames(encode_all(assemble.events_for(RESPONSE)))
    assert all(orjson.loads(f)["choices"] for f in frames[:-1])


def test_sdk_client_streams_encoded_output() -> None:
    raw = encode_all(assemble.events_for(RESPONSE))
    client = sdk_client(lambda request: httpx2.Response(200, content=raw,
                                                       headers={"content-type": "text/event-stream"}))
    pieces = [c.choices[0].text for c in client.completions.create(model="m", prompt="x", stream=True)]
    assert "".join(pieces) == "Hello, world"


def test_stream_error_frame_and_no_done() -> None:
    encoder = DIALECT.stream_encoder(model="m")
    encoder.encode(ir.Start(id="x", model="m"))
    out = encoder.encode(ir.ErrorEvent(ir.Error(429, "rate_limit", "slow down")))
    assert orjson.loads(sse_frames(out)[0]) == {"error": {"message": "slow down", "type": "rate_limit_exceeded",
                                                          "param": None, "code": "rate_limit_exceeded"}}
    assert encoder.close() == b""


def test_stream_decoder() -> None:
    def piece(text: str, finish: str | None = None) -> dict[str, Any]:
        return {"id": "cmpl-9", "object": "text_completion", "created": 1, "model": "m",
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}

    events = decode([piece("Hel"), piece("lo"), piece("", "length"),
                     {"id": "cmpl-9", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                                               "total_tokens": 3}}, "[DONE]"])
    response = assembled(events)
    assert (response.id, response.parts, response.stop_reason) == ("cmpl-9", [ir.TextPart("Hello")], "max_tokens")
    assert response.usage == ir.Usage(input_tokens=1, output_tokens=2)
    cut = decode([piece("Hel")])
    assert isinstance(cut[-1], ir.ErrorEvent) and cut[-1].error.status == 502


def test_errors_are_the_chat_dialects() -> None:
    assert DIALECT.render_error(ir.bad_request("no", "prompt")) == (400, {"error": {
        "message": "no", "type": "invalid_request_error", "param": "prompt", "code": None}})
    error = DIALECT.parse_error(401, orjson.dumps({"error": {"message": "bad key", "type": "invalid_request_error",
                                                             "code": "invalid_api_key"}}))
    assert (error.kind, error.code) == ("authentication", "invalid_api_key")
    assert DIALECT.name == "openai-completions"
