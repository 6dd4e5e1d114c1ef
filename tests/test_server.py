"""The router end to end: access control, errors in each dialect, model
listings, pass-through fidelity, cut streams and client disconnects."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
import urllib3
from google import genai
from google.genai import types as gtypes

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import CLIENT_KEY, RouterProcess

FAKE_KEY = "test-key"
http = urllib3.PoolManager()


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    servers = {"anthropic": FakeAnthropic(api_keys=[FAKE_KEY]), "chat": FakeOpenAIChat(api_keys=[FAKE_KEY]),
               "gemini": FakeGemini(api_keys=[FAKE_KEY])}
    for s in servers.values():
        s.start()
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def router(fakes: dict[str, Any]) -> Iterator[RouterProcess]:
    config = {
        "api-keys": [CLIENT_KEY],
        "some-future-key": {"x": 1},
        "image-fetch": {"allowed-networks": ["127.0.0.0/8"]},  # the test's image server is on loopback
        "claude-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["anthropic"].base_url,
                            "models": [{"name": "claude-sonnet-4-5", "alias": "sonnet"},
                                       {"name": "claude-haiku-4-5"}]}],
        "gemini-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["gemini"].base_url,
                            "models": [{"name": "gemini-2.5-flash"}]}],
        "openai-compatibility": [{"name": "chat", "base-url": f"{fakes['chat'].base_url}/v1",
                                  "api-key-entries": [{"api-key": FAKE_KEY}],
                                  "models": [{"name": "gpt-4o-mini", "alias": "mini"}]}],
    }
    with RouterProcess(config) as r:
        yield r


def post(router: RouterProcess, path: str, body: Any, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> urllib3.BaseHTTPResponse:
    data = raw if raw is not None else orjson.dumps(body)
    return http.request("POST", f"{router.base_url}{path}", body=data,
                        headers={"content-type": "application/json", **(headers or {})}, retries=False)


AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}


def test_health_and_unknown_keys_reported(router: RouterProcess) -> None:
    anonymous = http.request("GET", f"{router.base_url}/healthz")
    assert anonymous.status == 200 and anonymous.json() == {"status": "ok"}  # nothing for strangers
    response = http.request("GET", f"{router.base_url}/healthz", headers=AUTH)
    assert response.status == 200 and response.json()["accounts"] == 3
    assert "some-future-key" in router.log()


def test_head_probe_like_claude_code(router: RouterProcess) -> None:
    assert http.request("HEAD", f"{router.base_url}/").status == 200


@pytest.mark.parametrize(("path", "headers", "check"), [
    ("/v1/chat/completions", {}, lambda b: b["error"]["code"] == "invalid_api_key"),
    ("/v1/messages", {}, lambda b: b["type"] == "error" and b["error"]["type"] == "authentication_error"),
    ("/v1beta/models/gemini-2.5-flash:generateContent", {},
     lambda b: b["error"]["status"] == "UNAUTHENTICATED"),
])
def test_missing_key_is_refused_in_the_callers_dialect(router: RouterProcess, path: str,
                                                       headers: dict[str, str], check: Any) -> None:
    response = post(router, path, {"model": "mini", "messages": []}, headers)
    assert response.status == 401
    assert check(response.json()), response.json()


def test_every_documented_key_location_works(router: RouterProcess) -> None:
    for headers, query in [({"x-api-key": CLIENT_KEY}, ""), ({"x-goog-api-key": CLIENT_KEY}, ""),
                           ({}, f"?key={CLIENT_KEY}"), (AUTH, "")]:
        response = http.request("GET", f"{router.base_url}/v1/models{query}", headers=headers)
        assert response.status == 200, (headers, query)


def test_malformed_json_gets_a_clear_400_per_dialect(router: RouterProcess) -> None:
    r = post(router, "/v1/chat/completions", None, AUTH, raw=b"{not json")
    assert r.status == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = post(router, "/v1/messages", None, AUTH, raw=b"[1,2]")
    assert r.status == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = post(router, "/v1beta/models/gemini-2.5-flash:generateContent", None, AUTH, raw=b"")
    assert r.status == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = post(router, "/v1/chat/completions", {"messages": []}, AUTH)
    assert r.status == 400 and r.json()["error"]["param"] == "model"


def test_unknown_model_is_404_naming_it(router: RouterProcess) -> None:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])


def test_model_listings_in_three_shapes(router: RouterProcess) -> None:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY)
    assert {m.id for m in client.models.list()} == {"sonnet", "claude-haiku-4-5", "gemini-2.5-flash", "mini"}
    ac = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT_KEY)
    assert {m.id for m in ac.models.list()} == {"sonnet", "claude-haiku-4-5", "gemini-2.5-flash", "mini"}
    gc = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=router.base_url,
                                                                           api_version="v1beta"))
    assert {m.name for m in gc.models.list()} == {"models/sonnet", "models/claude-haiku-4-5",
                                                 "models/gemini-2.5-flash", "models/mini"}


def test_same_dialect_passes_unknown_fields_and_beta_headers(router: RouterProcess,
                                                             fakes: dict[str, Any]) -> None:
    fake = fakes["anthropic"]
    fake.clear()
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "metadata": {"user_id": "u-1"}}
    raw = orjson.dumps(body)
    r = post(router, "/v1/messages?beta=true", None,
             {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01",
              "anthropic-beta": "context-management-2025-06-27"}, raw=raw)
    assert r.status == 200, r.data
    received = fake.requests[-1]
    assert received.raw == raw  # byte-identical when the model name needs no change
    assert received.headers["anthropic-beta"] == "context-management-2025-06-27"
    assert received.headers["x-api-key"] == FAKE_KEY  # the client's key never reaches the upstream


def test_alias_is_rewritten_for_the_upstream(router: RouterProcess, fakes: dict[str, Any]) -> None:
    client = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT_KEY)
    client.messages.create(model="sonnet", max_tokens=32, messages=[{"role": "user", "content": "hi"}])
    assert fakes["anthropic"].requests[-1].body["model"] == "claude-sonnet-4-5"


def test_google_genai_without_api_version_uses_v1_paths(router: RouterProcess) -> None:
    gc = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=router.base_url))
    reply = gc.models.generate_content(model="gemini-2.5-flash", contents="hello there")
    assert "You said: hello there" in (reply.text or "")


def test_gemini_stream_without_alt_sse_is_a_json_array(router: RouterProcess) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "array please"}]}]}
    for model in ("gemini-2.5-flash", "mini"):  # pass-through and translated
        r = post(router, f"/v1beta/models/{model}:streamGenerateContent", body, AUTH)
        assert r.status == 200, r.data
        chunks = json.loads(r.data)
        assert isinstance(chunks, list) and chunks
        text = "".join(p.get("text", "") for c in chunks for cand in c.get("candidates", [])
                       for p in cand.get("content", {}).get("parts", []))
        assert "You said: array please" in text


def test_gemini_json_array_pass_through_cut_mid_way_stays_valid_json(router: RouterProcess,
                                                                      fakes: dict[str, Any]) -> None:
    fakes["gemini"].push(Scenario(cut_after=1))
    body = {"contents": [{"role": "user", "parts": [{"text": "a longer answer, please, in several chunks"}]}]}
    r = post(router, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, AUTH)
    assert r.status == 200, r.data
    chunks = json.loads(r.data)  # the re-framed upstream chunks, then the error, closed as one array
    assert isinstance(chunks, list) and len(chunks) >= 2
    assert "candidates" in chunks[0]
    assert "stream" in chunks[-1]["error"]["message"]  # ended before completion, or broke


def test_same_dialect_reasoning_suffix_passes_the_reply_through(router: RouterProcess,
                                                                fakes: dict[str, Any]) -> None:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="mini(high)", stream=True,
                                                 messages=[{"role": "user", "content": "think first"}]))
    sent = fakes["chat"].requests[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["reasoning_effort"] == "high"
    assert sent["stream_options"] == {"include_usage": True}  # asked for accounting ...
    assert all(c.choices for c in chunks)  # ... and its usage-only chunk hidden from the client
    # the upstream's own chunks, not re-encoded ones (the router's encoder writes no fingerprint)
    assert {c.system_fingerprint for c in chunks} == {"fp_fake"}
    assert "You said: think first" in "".join(c.choices[0].delta.content or "" for c in chunks)
    reply = client.chat.completions.create(model="mini(low)", messages=[{"role": "user", "content": "x"}])
    assert reply.system_fingerprint == "fp_fake"
    assert fakes["chat"].requests[-1].body["reasoning_effort"] == "low"


@pytest.mark.parametrize("model", ["mini", "sonnet"])  # pass-through and translated
def test_stream_cut_mid_way_ends_with_an_error_event(router: RouterProcess, fakes: dict[str, Any],
                                                     model: str) -> None:
    fake = fakes["chat"] if model == "mini" else fakes["anthropic"]
    fake.push(Scenario(cut_after=3))
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(openai.APIError, match=r"before completion|broke|ended"):
        for _ in client.chat.completions.create(model=model, stream=True,
                                                messages=[{"role": "user", "content": "a long answer"}]):
            pass


def test_client_disconnect_is_quiet(router: RouterProcess, fakes: dict[str, Any]) -> None:
    fakes["chat"].push(Scenario(text="slow " * 40, chunk_delay=0.05))
    body = orjson.dumps({"model": "mini", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    with socket.create_connection(("127.0.0.1", router.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     + f"authorization: Bearer {CLIENT_KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                     + body)
        assert b"200" in sock.recv(4096)
    time.sleep(0.5)
    r = post(router, "/v1/chat/completions", {"model": "mini", "messages": [{"role": "user", "content": "y"}]},
             AUTH)
    assert r.status == 200
    assert "Traceback" not in router.log()


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.conformance.drivers import PNG

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = PNG if self.path == "/pixel.png" else PNG * 10_000
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_remote_image_urls_are_inlined_for_gemini(router: RouterProcess, fakes: dict[str, Any],
                                                  image_server: str) -> None:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    reply = client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": f"{image_server}/pixel.png"}}]}])
    assert "saw 1 image(s): image/png" in (reply.choices[0].message.content or "")
    parts = fakes["gemini"].requests[-1].body["contents"][0]["parts"]
    inline = [p for p in parts if "inlineData" in p]
    assert inline and inline[0]["inlineData"]["mimeType"] == "image/png"


def test_oversized_remote_image_is_refused_clearly(fakes: dict[str, Any], image_server: str) -> None:
    config = {"image-fetch": {"max-bytes": 1000, "allowed-networks": ["127.0.0.1"]},
              "gemini-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["gemini"].base_url,
                                  "models": ["gemini-2.5-flash"]}]}
    with RouterProcess(config) as small:
        client = openai.OpenAI(base_url=f"{small.base_url}/v1", api_key="anything", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="limit"):
            client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": f"{image_server}/big.png"}}]}])


def test_count_tokens_endpoints(router: RouterProcess) -> None:
    ac = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT_KEY)
    counted = ac.messages.count_tokens(model="sonnet", messages=[{"role": "user", "content": "x" * 400}])
    assert 90 <= counted.input_tokens <= 120
    gc = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=router.base_url,
                                                                           api_version="v1beta"))
    total = gc.models.count_tokens(model="gemini-2.5-flash", contents="y" * 400).total_tokens
    assert total is not None and 90 <= total <= 120


def test_legacy_completions_translated(router: RouterProcess) -> None:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    reply = client.completions.create(model="sonnet", prompt="complete me", max_tokens=50)
    assert "You said: complete me" in reply.choices[0].text
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="mini", prompt="stream me", max_tokens=50, stream=True) if c.choices)
    assert "You said: stream me" in streamed


@pytest.mark.parametrize(("model", "expected"), [
    ("sonnet(8192)", {"type": "enabled", "budget_tokens": 8192}),
    ("sonnet(high)", {"type": "enabled", "budget_tokens": 24576}),
    ("sonnet-thinking-4096", {"type": "enabled", "budget_tokens": 4096}),
    ("sonnet(none)", {"type": "disabled"}),
])
def test_reasoning_from_the_model_name(router: RouterProcess, fakes: dict[str, Any], model: str,
                                       expected: dict[str, Any]) -> None:
    for client_dialect in ("openai", "anthropic"):  # translated, and same dialect (which must be rewritten)
        if client_dialect == "openai":
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hmm"}])
        else:
            ac = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
            reply = ac.messages.create(model=model, max_tokens=1000, messages=[{"role": "user", "content": "hmm"}])
            assert reply.content
        body = fakes["anthropic"].requests[-1].body
        assert body["model"] == "claude-sonnet-4-5"
        assert {k: body["thinking"][k] for k in expected} == expected, body["thinking"]
        if expected["type"] == "enabled":
            assert body["max_tokens"] > expected["budget_tokens"]


def test_unknown_reasoning_suffix_is_a_clear_400(router: RouterProcess) -> None:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="unknown reasoning setting"):
        client.chat.completions.create(model="sonnet(extreme)", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize(("server", "interface"), [("uvicorn", "asgi"), ("granian", "asgi")])
def test_the_asgi_servers_serve_the_same_app(fakes: dict[str, Any], server: str, interface: str) -> None:
    config = {"api-keys": [CLIENT_KEY], "claude-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["anthropic"].base_url,
                                                            "models": [{"name": "claude-sonnet-4-5", "alias": "sonnet"}]}]}
    with RouterProcess(config, server=server, interface=interface) as router:
        client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="sonnet", stream=True, messages=[{"role": "user", "content": "via uvicorn"}]) if c.choices)
        assert "You said: via uvicorn" in text
        ac = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
        assert "You said: direct" in ac.messages.create(model="sonnet", max_tokens=64, messages=[
            {"role": "user", "content": "direct"}]).content[0].text  # type: ignore[union-attr]
