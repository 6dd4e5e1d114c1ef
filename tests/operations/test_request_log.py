"""Request ids and the request log, against the real router and fake upstreams."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import urllib3

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "sk-upstream-secret-0123456789"
ANTHROPIC_KEY = "sk-ant-upstream-secret-987654"
GEMINI_KEY = "AIzaUpstreamSecret0123456789"
CLIENT = "client-secret-key-abcdef"
NAMED = "named-client-key-123456"
MANAGEMENT = "management-secret-xyz"


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    servers = {"bad": FakeOpenAIChat(api_keys=[KEY]).start(), "good": FakeOpenAIChat(api_keys=[KEY]).start(),
               "anthropic": FakeAnthropic(api_keys=[ANTHROPIC_KEY]).start(),
               "gemini": FakeGemini(api_keys=[GEMINI_KEY]).start()}
    yield servers
    for server in servers.values():
        server.stop()


def config(fakes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "api-keys": [CLIENT, {"key": NAMED, "name": "team-a"}],
        "remote-management": {"secret-key": MANAGEMENT},
        "routing": {"strategy": "fill-first"},
        "openai-compatibility": [
            {"name": "first", "base-url": f"{fakes['bad'].base_url}/v1", "api-key-entries": [{"api-key": KEY}],
             "models": [{"name": "gpt-4o-mini", "alias": "pool"}]},
            {"name": "second", "base-url": f"{fakes['good'].base_url}/v1", "api-key-entries": [{"api-key": KEY}],
             "models": [{"name": "gpt-4o-mini", "alias": "pool"}]},
        ],
        "claude-api-key": [{"api-key": ANTHROPIC_KEY, "base-url": fakes["anthropic"].base_url}],
        "gemini-api-key": [{"api-key": GEMINI_KEY, "base-url": fakes["gemini"].base_url}],
        **extra,
    }


@pytest.fixture(scope="module")
def router(fakes: dict[str, Any]) -> Iterator[RouterProcess]:
    with RouterProcess(config(fakes)) as process:
        yield process


def chat(router: RouterProcess, key: str = CLIENT, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=key, max_retries=0,
                         default_headers=headers or None)


HTTP = urllib3.PoolManager()


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    return HTTP.request("POST", url, json=body, headers=headers or {})


def get(url: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    return HTTP.request("GET", url, headers=headers or {})


def lines_for(router: RouterProcess, request_id: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in router.log().splitlines() if request_id in line and "crossroads.requests" in line]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_client_request_id_is_kept_returned_and_sent_upstream(router: RouterProcess,
                                                                fakes: dict[str, Any]) -> None:
    raw = chat(router, **{"x-request-id": "trace-42"}).chat.completions.with_raw_response.create(
        model="pool", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-request-id"] == "trace-42"
    upstream = [r for r in fakes["bad"].requests if r.path.endswith("/chat/completions")][-1]
    assert upstream.headers.get("x-request-id") == "trace-42"
    (line,) = lines_for(router, "trace-42")
    assert "status=200" in line and "in=openai-chat" in line and "model=pool" in line


def test_an_unsafe_client_id_is_cleaned_and_a_missing_one_generated(router: RouterProcess) -> None:
    messy = "a" * 120 + "<script> \"x\" ;" + "b" * 200
    response = post(f"{router.base_url}/v1/chat/completions",
                    {"model": "pool", "messages": [{"role": "user", "content": "x"}]},
                    {"authorization": f"Bearer {CLIENT}", "x-request-id": messy})
    assert response.status == 200
    assert response.headers["x-request-id"] == "a" * 120 + "scriptx" + "b"
    generated = get(f"{router.base_url}/healthz").headers["x-request-id"]
    other = get(f"{router.base_url}/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated) and generated != other


def test_every_error_carries_the_id_in_its_dialect(router: RouterProcess) -> None:
    oa = post(f"{router.base_url}/v1/chat/completions", {"model": "pool", "messages": []},
              {"x-request-id": "err-openai"})
    assert oa.status == 401 and oa.headers["x-request-id"] == "err-openai"
    assert oa.json()["request_id"] == "err-openai" and "error" in oa.json()

    client = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT, max_retries=0,
                                 default_headers={"x-request-id": "err-anthropic"})
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    body = caught.value.response.json()
    assert body["type"] == "error" and body["request_id"] == "err-anthropic"
    assert caught.value.response.headers["x-request-id"] == "err-anthropic"

    gem = post(f"{router.base_url}/v1beta/models/no-such:generateContent?key={CLIENT}", {"contents": []},
               {"x-request-id": "err-gemini"})
    error = gem.json()["error"]
    assert gem.status >= 400 and gem.headers["x-request-id"] == "err-gemini"
    assert {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": "err-gemini"} in error["details"]

    missing = get(f"{router.base_url}/no/such/path", {"x-request-id": "err-404"})
    assert missing.status == 404 and missing.json()["request_id"] == "err-404"


def test_the_line_names_attempts_key_tokens_and_masks_secrets(router: RouterProcess,
                                                                fakes: dict[str, Any]) -> None:
    fakes["bad"].push(Scenario.fail(429, f"quota gone for key {KEY}", retry_after=1))
    reply = chat(router, NAMED, **{"x-request-id": "failover-1"}).chat.completions.create(
        model="pool", messages=[{"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content
    (line,) = lines_for(router, "failover-1")
    assert "key=team-a" in line
    assert re.search(r"attempts=\[first#?\S*:429/rate_limit,second\S*:ok\]", line), line
    assert re.search(r"tokens=in:\d+ out:\d+ cached:\d+ reasoning:", line), line
    assert "account=second" in line and re.search(r"latency=\d+ms", line)
    log = router.log()
    assert KEY not in log and CLIENT not in log and NAMED not in log
    assert "quota gone for key sk-u" in log  # the upstream's message, its key masked


def test_streams_log_ttft_when_they_end_and_when_the_client_leaves(router: RouterProcess,
                                                                   fakes: dict[str, Any]) -> None:
    stream = chat(router, **{"x-request-id": "stream-1"}).chat.completions.create(
        model="pool", messages=[{"role": "user", "content": "a b c"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    (line,) = lines_for(router, "stream-1")
    assert re.search(r"ttft=\d+ms", line) and "client-disconnected" not in line

    for name in ("bad", "good"):  # whichever serves (the first may still be cooling)
        fakes[name].push(Scenario(text="one two three four five six seven", chunk_delay=0.4))
    body = json.dumps({"model": "pool", "stream": True, "messages": [{"role": "user", "content": "slow"}]})
    with socket.create_connection(("127.0.0.1", router.port)) as sock:
        sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT}\r\n"
                      f"x-request-id: leaver-1\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        assert b"200" in sock.recv(4096)
    (line,) = lines_for(router, "leaver-1")
    assert "client-disconnected" in line and "status=200" in line


def test_json_format_debug_upstream_and_files(fakes: dict[str, Any], tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    settings = config(fakes, **{"log-format": "json", "debug": True, "request-log": True,
                                "logs-dir": str(logs), "request-log-max-body-bytes": 64})
    with RouterProcess(settings) as router:
        long_text = "x" * 500
        chat(router, **{"x-request-id": "json-1"}).chat.completions.create(
            model="pool", messages=[{"role": "user", "content": long_text}])
        (line,) = lines_for(router, "json-1")
        entry = json.loads(line[line.index("{"):])
        assert entry["request_id"] == "json-1" and entry["status"] == 200 and entry["model"] == "pool"
        assert entry["attempts"][-1]["outcome"] == "ok" and entry["input_tokens"] > 0
        assert isinstance(entry["reasoning_tokens"], int) and entry["ttft_ms"] is None  # not a stream
        assert entry["upstream_url"].endswith("/v1/chat/completions")
        assert entry["upstream_headers"]["authorization"].startswith("Bearer sk-u")
        assert KEY not in line
        deadline = time.monotonic() + 5
        while not list(logs.glob("*json-1.log")) and time.monotonic() < deadline:
            time.sleep(0.05)
        (path,) = logs.glob("*json-1.log")
        text = path.read_text()
        for section in ("REQUEST INFO", "HEADERS", "REQUEST BODY", "API REQUEST", "RESPONSE"):
            assert f"=== {section} ===" in text
        assert "more bytes cut" in text and KEY not in text and CLIENT not in text
        assert not list(logs.glob("healthz-*.log"))  # probes are not requests worth a file


def test_failed_requests_keep_error_files_and_logging_to_file(fakes: dict[str, Any], tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    settings = config(fakes, **{"logging-to-file": True, "logs-dir": str(logs), "error-logs-max-files": 2})
    with RouterProcess(settings) as router:
        client = chat(router)
        for i in range(4):
            with pytest.raises(openai.NotFoundError):
                client.with_options(default_headers={"x-request-id": f"fail-{i}"}).chat.completions.create(
                    model="missing", messages=[{"role": "user", "content": "x"}])
        client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "fine"}])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "fail-3" not in " ".join(p.name for p in logs.glob("error-*")):
            time.sleep(0.05)
        names = sorted(p.name for p in logs.glob("error-*.log"))
        assert len(names) == 2 and any("fail-3" in n for n in names), names
        while time.monotonic() < deadline and "fail-3" not in (logs / "main.log").read_text():
            time.sleep(0.05)  # request lines go out in batches, up to 50 ms after their request
        main = (logs / "main.log").read_text()
        (failed,) = [line for line in main.splitlines() if "fail-0" in line and "crossroads.requests" in line]
        assert "status=404" in failed and "tokens=in:? out:? cached:? reasoning:?" in failed  # unknown
        assert "fail-0" not in router.log()  # the file instead of the console


def test_request_log_and_format_follow_a_reload(fakes: dict[str, Any], tmp_path: Path) -> None:
    from tests.runtime.test_reload_survival import current_config, rewrite_config

    logs = tmp_path / "logs"
    with RouterProcess(config(fakes, **{"logs-dir": str(logs)})) as router:
        chat(router, **{"x-request-id": "before-reload"}).chat.completions.create(
            model="pool", messages=[{"role": "user", "content": "x"}])
        rewrite_config(router, {**current_config(router), "request-log": True, "log-format": "json"})
        chat(router, **{"x-request-id": "after-reload"}).chat.completions.create(
            model="pool", messages=[{"role": "user", "content": "x"}])
        (line,) = lines_for(router, "after-reload")
        assert json.loads(line)["request_id"] == "after-reload"
        deadline = time.monotonic() + 5
        while not list(logs.glob("*after-reload.log")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(logs.glob("*after-reload.log")) and not list(logs.glob("*before-reload.log"))


def test_a_stream_cut_midway_names_the_request_in_its_error_event(router: RouterProcess,
                                                                  fakes: dict[str, Any]) -> None:
    for name in ("bad", "good"):
        fakes[name].push(Scenario(text="one two three four five six", cut_after=2))
    reply = post(f"{router.base_url}/v1/chat/completions",
                 {"model": "pool", "stream": True, "messages": [{"role": "user", "content": "cut"}]},
                 {"authorization": f"Bearer {CLIENT}", "x-request-id": "cut-1"})
    assert reply.status == 200 and b"error" in reply.data
    assert b"request id cut-1" in reply.data
    (line,) = lines_for(router, "cut-1")
    assert "status=200" in line and "error=" in line and "client-disconnected" not in line
