"""Fuzzing every front door of a running router: bodies built from valid
requests with fields replaced by arbitrary JSON (wrong types, nulls, huge
numbers, deep nesting, bad base64 and data URLs), sent to each door for a
model of each upstream dialect. Never a 500, never a traceback, every error
in the caller's own shape, and the server still up afterwards. The number of
cases per door is bounded so CI stays fast."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.openai_responses import FakeOpenAIResponses
from tests.harness import CLIENT_KEY, RouterProcess

FAKE_KEY = "test-key"
CASES_PER_DOOR = 200
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=20))
MODELS = ("claude", "gpt", "gem", "resp")  # one per upstream dialect
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def router() -> Iterator[RouterProcess]:
    fakes = [FakeAnthropic(api_keys=[FAKE_KEY]), FakeOpenAIChat(api_keys=[FAKE_KEY]),
             FakeGemini(api_keys=[FAKE_KEY]), FakeOpenAIResponses(api_keys=[FAKE_KEY])]
    for fake in fakes:
        fake.start()
    anthropic, chat, gemini, responses = fakes
    config = {"api-keys": [CLIENT_KEY], "request-retry": 0, "request-body": {"max-bytes": 8 << 20},
              "remote-management": {"secret-key": "mgmt"}, "auth-lockout": {"attempts": 0},
              "claude-api-key": [{"api-key": FAKE_KEY, "base-url": anthropic.base_url,
                                  "models": [{"name": "claude-sonnet-4-5", "alias": "claude"}]}],
              "gemini-api-key": [{"api-key": FAKE_KEY, "base-url": gemini.base_url,
                                  "models": [{"name": "gemini-2.5-flash", "alias": "gem"}]}],
              "codex-api-key": [{"api-key": FAKE_KEY, "base-url": f"{responses.base_url}/v1",
                                 "models": [{"name": "gpt-5", "alias": "resp"}]}],
              "openai-compatibility": [{"name": "chat", "base-url": f"{chat.base_url}/v1",
                                        "api-key-entries": [{"api-key": FAKE_KEY}],
                                        "models": [{"name": "gpt-4o-mini", "alias": "gpt"}]}]}
    with RouterProcess(config) as r:
        yield r
    for fake in fakes:
        fake.stop()


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": [value]}
    return value


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["", "data:image/png;base64,!!!", "data:;base64,", "data:image/png,raw", "not base64 ***",
                     f"data:image/png;base64,{PNG[:-3]}", "http://", "https://127.0.0.1:1/x.png", "-_-_", "\x00",
                     "\ud7ff", "a" * 5000]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(
        ["type", "text", "role", "content", "parts", "source", "data", "url", "image_url", "input",
         "properties", "required", "items", "name", "arguments", "id", "inlineData", "mimeType"]),
        inner, max_size=4)), max_leaves=12) | st.builds(_nested, st.integers(min_value=100, max_value=400))

_BASES: dict[str, dict[str, Any]] = {
    "chat": {"model": "gpt", "max_tokens": 20, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}]},
    "responses": {"model": "resp", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]},
    "messages": {"model": "claude", "max_tokens": 20, "system": "be brief", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": PNG}}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}, {"inlineData": {
        "mimeType": "image/png", "data": PNG}}]}], "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]}}]}],
        "generationConfig": {"maxOutputTokens": 20}},
}
_PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _mutated(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = orjson.loads(orjson.dumps(base))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def _check(router: RouterProcess, door: str, path: str, body: Any, raw: bytes | None = None) -> None:
    data = raw if raw is not None else _dumps(body)
    r = http.request("POST", f"{router.base_url}{path}", body=data,
                     headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
    assert r.status != 500 or b"internal error in crossroads" not in r.data, (door, path, data[:300], r.data[:300])
    assert b"Traceback" not in r.data
    if r.status >= 400:
        error = orjson.loads(r.data)
        if door == "messages":
            assert error["type"] == "error" and "message" in error["error"], error
        elif door == "gemini":
            assert {"code", "message", "status"} <= set(error["error"]), error
        else:
            assert "message" in error["error"], error


def _dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # beyond orjson's own limits (deep nesting, huge ints): hand-written JSON
        import json

        return json.dumps(body).encode()


def _door(door: str, model: str) -> tuple[dict[str, Any], str]:
    base = dict(_BASES[door])
    if door == "gemini":
        return base, f"/v1beta/models/{model}:generateContent"
    base["model"] = model
    return base, _PATHS[door]


@pytest.mark.parametrize("door", ["chat", "responses", "messages", "gemini"])
def test_fuzzed_bodies_never_break_a_door(router: RouterProcess, door: str) -> None:
    paths = _paths(_BASES[door])

    @settings(max_examples=CASES_PER_DOOR, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(model=st.sampled_from(MODELS), where=st.sampled_from(paths), value=_VALUES,
           stream=st.booleans())
    def case(model: str, where: tuple[Any, ...], value: Any, stream: bool) -> None:
        base, path = _door(door, model)
        body = _mutated(base, where, value) if where[0] != "model" else {**base, "model": value}
        if stream and door != "gemini":
            body["stream"] = True
        _check(router, door, path, body)

    case()
    assert http.request("GET", f"{router.base_url}/healthz").status == 200
    assert "unhandled error" not in router.log() and "Traceback" not in router.log()


@pytest.mark.parametrize("door", ["chat", "responses", "messages", "gemini"])
@pytest.mark.parametrize("raw", [
    b"[" * 300 + b"]" * 300, b'{"model": "gpt", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"model": "gpt", "seed": 123456789012345678901234567890, "messages": []}', b"\xff\xfe", b"{", b"null",
    b'{"model": "gpt", "messages": [{"role": "user", "content": [{"type": {}}]}]}',
])
def test_hostile_raw_bodies(router: RouterProcess, door: str, raw: bytes) -> None:
    _, path = _door(door, "gpt")
    _check(router, door, path, None, raw)


def test_fuzzed_websocket_frames_get_error_frames(router: RouterProcess) -> None:
    import asyncio

    import aiohttp

    base, _ = _door("responses", "gpt")
    paths = _paths(base)
    frames: list[str] = [
        "not json", "[]", "null", '{"type": 5}', '{"type": "response.create"}', "{" * 300 + "}" * 300,
        orjson.dumps({"type": "response.create", "model": "gpt", "input": [{"type": {}}]}).decode(),
        orjson.dumps({"type": "response.create", "model": "gpt", "input": "x" * 100, "seed": 2**70}).decode()
        if False else '{"type": "response.create", "model": "gpt", "input": "x", "seed": 123456789012345678901234567}',
    ]

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(where=st.sampled_from(paths), value=_VALUES)
    def collect(where: tuple[Any, ...], value: Any) -> None:
        body = _mutated(base, where, value)
        frames.append(_dumps({"type": "response.create", **body}).decode())

    collect()

    async def run() -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []
        url = router.base_url.replace("http", "ws") + "/v1/responses"
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, headers={"authorization": f"Bearer {CLIENT_KEY}"}, max_msg_size=0) as ws:
            for frame in frames:
                await ws.send_str(frame)
                while True:  # read until this frame's answer is complete
                    message = await asyncio.wait_for(ws.receive(), timeout=20)
                    assert message.type == aiohttp.WSMsgType.TEXT, (frame[:200], message)
                    event = orjson.loads(message.data)
                    answers.append(event)
                    if event.get("type") in ("error", "response.completed", "response.failed", "response.incomplete"):
                        break
        return answers

    answers = asyncio.run(run())
    errors = [a for a in answers if a.get("type") == "error"]
    assert errors and all(a.get("status") != 500 for a in errors), router.log()[-4000:]
    assert "unhandled error" not in router.log()


def test_an_oversized_websocket_frame_gets_an_error_frame(router: RouterProcess) -> None:
    import asyncio

    import aiohttp

    async def run() -> dict[str, Any]:
        url = router.base_url.replace("http", "ws") + "/v1/responses"
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, headers={"authorization": f"Bearer {CLIENT_KEY}"}) as ws:
            # over the router's limit (8 MB here); frames over 16 MB are refused by granian itself, which
            # drops the connection before the application sees them (README: limits)
            await ws.send_str('{"type": "response.create", "model": "gpt", "input": "' + "x" * (10 << 20) + '"}')
            message = await asyncio.wait_for(ws.receive(), timeout=20)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            return dict(orjson.loads(message.data))

    answer = asyncio.run(run())
    assert answer["type"] == "error" and answer["status"] == 413


_MANAGEMENT_ROUTES = [("GET", "/v0/management/usage"), ("GET", "/v0/management/cooldowns"),
                      ("POST", "/v0/management/reset-quota"), ("POST", "/v0/management/oauth-callback"),
                      ("GET", "/v0/management/get-auth-status"), ("GET", "/v0/management/claude-auth-url"),
                      ("GET", "/v0/management/nothing-here"), ("PUT", "/v0/management/usage")]


def test_fuzzed_management_requests(router: RouterProcess) -> None:
    @settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(_MANAGEMENT_ROUTES), body=_VALUES, query=st.text(max_size=30),
           secret=st.sampled_from(["", "wrong", "mgmt"]))
    def case(route: tuple[str, str], body: Any, query: str, secret: str) -> None:
        method, path = route
        r = http.request(method, f"{router.base_url}{path}", fields=None, body=_dumps(body),
                         headers={"authorization": f"Bearer {secret}", "content-type": "application/json"}
                         ) if method != "GET" else http.request(
            method, f"{router.base_url}{path}?state={query}", headers={"authorization": f"Bearer {secret}"})
        assert r.status != 500, (method, path, r.data[:300])
        assert b"Traceback" not in r.data

    case()
    assert "unhandled error" not in router.log()
