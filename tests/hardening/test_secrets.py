"""No configured secret is ever shown: not in error bodies relayed from an
upstream that echoes them, not in the log, not in management answers."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import orjson
import pytest
import urllib3

from tests.fakes.echoing import FakeEchoingServer
from tests.harness import RouterProcess

UPSTREAM_KEY = "sk-live-UPSTREAM-0123456789abcdef"
CLIENT = "cr-client-SECRET-0987654321"
MANAGEMENT = "mgmt-SECRET-1122334455"
SECRETS = (UPSTREAM_KEY, CLIENT, MANAGEMENT)
MODELS = ("echo-key-json", "echo-key-429", "echo-headers-raw", "echo-key-stream")
http = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def echoing() -> Iterator[FakeEchoingServer]:
    with FakeEchoingServer(api_keys=[UPSTREAM_KEY]) as fake:
        yield fake


@pytest.fixture(scope="module")
def router(echoing: FakeEchoingServer) -> Iterator[RouterProcess]:
    config = {"api-keys": [CLIENT], "debug": True, "request-retry": 0,
              "remote-management": {"secret-key": MANAGEMENT},
              # one entry per habit, so one habit's cooldown does not hide the others
              "openai-compatibility": [{"name": f"echo-{n}", "base-url": f"{echoing.base_url}/v1",
                                        "api-key-entries": [{"api-key": UPSTREAM_KEY}],
                                        "models": [{"name": m}]} for n, m in enumerate((*MODELS, "plain"))]}
    with RouterProcess(config) as r:
        yield r


def _bodies(model: str, stream: bool) -> list[tuple[str, dict[str, object]]]:
    chat = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return [("/v1/chat/completions", chat),
            ("/v1/messages", {"model": model, "stream": stream, "max_tokens": 20,
                              "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/responses", {"model": model, "stream": stream, "input": "hi"}),
            (f"/v1beta/models/{model}:{'streamGenerateContent?alt=sse' if stream else 'generateContent'}",
             {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})]


def test_echoed_secrets_never_reach_clients_logs_or_management(router: RouterProcess,
                                                               echoing: FakeEchoingServer) -> None:
    seen: list[bytes] = []
    for model in MODELS:
        for stream in (False, True):
            for path, body in _bodies(model, stream):
                r = http.request("POST", f"{router.base_url}{path}", body=orjson.dumps(body),
                                 headers={"authorization": f"Bearer {CLIENT}", "content-type": "application/json"})
                assert b"internal error in crossroads" not in r.data, (path, r.status)
                seen.append(r.data)
        # an SDK's view of the same errors
        client = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT, max_retries=0)
        try:
            client.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        except anthropic.APIError as exc:
            seen.append(str(exc).encode())
    for route in ("usage", "cooldowns"):
        r = http.request("GET", f"{router.base_url}/v0/management/{route}",
                         headers={"authorization": f"Bearer {MANAGEMENT}"})
        assert r.status == 200
        seen.append(r.data)
    assert set(echoing.echoed) == set(MODELS), f"not every habit was exercised: {echoing.echoed}"
    assert any(b"echo-key-429" in chunk or b"Rate limit" in chunk for chunk in seen)
    seen.append(router.log().encode())
    for secret in SECRETS:
        leaks = [chunk[:300] for chunk in seen if secret.encode() in chunk]
        assert not leaks, f"{secret} leaked: {leaks[:3]}"


def test_raw_upstream_text_is_not_relayed(router: RouterProcess) -> None:
    http.request("POST", f"{router.base_url}/v0/management/reset-quota",
                 headers={"authorization": f"Bearer {MANAGEMENT}"})
    r = http.request("POST", f"{router.base_url}/v1/chat/completions",
                     body=orjson.dumps({"model": "echo-headers-raw", "messages": [{"role": "user", "content": "x"}]}),
                     headers={"authorization": f"Bearer {CLIENT}", "content-type": "application/json"})
    assert r.status >= 500
    assert b"authorization" not in r.data.lower() and b"Internal error while handling" not in r.data
    assert b"HTTP 500" in r.data
