"""Failing fast and saying everything: unreachable accounts are not waited
for, a request two accounts choke on cools neither, a malformed body never
reaches an upstream, and the final error names every account tried."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.hardening.conftest import FAKE_KEY, OTHER_KEY
from tests.harness import CLIENT_KEY, RouterProcess, free_port

http = urllib3.PoolManager(retries=False)
MANAGEMENT = {"authorization": "Bearer mgmt"}



@pytest.fixture(scope="module")
def router(chat: FakeOpenAIChat) -> Iterator[RouterProcess]:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    entry = {"base-url": f"{chat.base_url}/v1", "models": [{"name": "gpt-4o-mini", "alias": "pair"}]}
    config = {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": "mgmt"},
              "timeouts": {"connect": 10, "first-byte": 30},
              "openai-compatibility": [
                  {"name": "gone", "base-url": closed, "api-key-entries": [{"api-key": FAKE_KEY}],
                   "models": [{"name": "gpt-4o-mini", "alias": "unreachable"}]},
                  {"name": "first", "api-key-entries": [{"api-key": FAKE_KEY}], **entry},
                  {"name": "second", "api-key-entries": [{"api-key": OTHER_KEY}], **entry}]}
    with RouterProcess(config) as r:
        yield r


def _chat(router: RouterProcess, model: str, body: dict[str, Any] | None = None) -> urllib3.BaseHTTPResponse:
    payload = body if body is not None else {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return http.request("POST", f"{router.base_url}/v1/chat/completions", body=orjson.dumps(payload),
                        headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})


def _cooling(router: RouterProcess) -> set[str]:
    r = http.request("GET", f"{router.base_url}/v0/management/cooldowns", headers=MANAGEMENT)
    return {row["label"] for row in orjson.loads(r.data)["cooldowns"]}


def _reset(router: RouterProcess) -> None:
    http.request("POST", f"{router.base_url}/v0/management/reset-quota", headers=MANAGEMENT)


def test_an_unreachable_account_fails_at_once(router: RouterProcess) -> None:
    for _ in range(2):  # the second request finds it cooling, tries it once anyway, and fails as fast
        started = time.monotonic()
        r = _chat(router, "unreachable")
        assert time.monotonic() - started < 2.0  # far below the connect timeout and the retry interval
        assert r.status == 502, r.data
        assert b"unreachable" in r.data


def test_a_request_two_accounts_choke_on_cools_neither(router: RouterProcess, chat: FakeOpenAIChat) -> None:
    _reset(router)
    chat.clear()
    chat.push(Scenario.fail(500, "Internal Server Error"), Scenario.fail(500, "Internal Server Error"))
    started = time.monotonic()
    r = _chat(router, "pair")
    assert time.monotonic() - started < 2.0
    assert r.status == 502 and b"upstream_rejected_request" in r.data
    assert b"first" in r.data and b"second" in r.data  # every account tried, with its outcome
    assert _cooling(router) == set()
    assert _chat(router, "pair").status == 200


def test_an_account_that_fails_where_another_succeeds_is_cooled(router: RouterProcess,
                                                                chat: FakeOpenAIChat) -> None:
    _reset(router)
    chat.clear()
    chat.push(Scenario.fail(500, "Internal Server Error"))
    assert _chat(router, "pair").status == 200
    assert len(_cooling(router)) == 1


def test_every_account_failing_is_answered_fast_naming_each(router: RouterProcess, chat: FakeOpenAIChat) -> None:
    _reset(router)
    chat.clear()
    chat.push(Scenario.fail(503, "overloaded"), Scenario.fail(503, "overloaded"))
    started = time.monotonic()
    r = _chat(router, "pair")
    assert time.monotonic() - started < 2.0
    assert r.status == 503, r.data
    assert b"first" in r.data and b"second" in r.data
    assert len(chat.requests) == 2  # no waiting rounds for accounts that just failed


@pytest.mark.parametrize("body", [
    {"model": "pair", "messages": "hello"},
    {"model": "pair", "messages": [{"role": "user", "content": 5}]},
    {"model": "pair", "messages": ["hello"]},
    {"model": "pair", "messages": [{"content": "no role"}]},
    {"model": "pair", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
])
def test_a_malformed_body_never_reaches_an_upstream(router: RouterProcess, chat: FakeOpenAIChat,
                                                    body: dict[str, Any]) -> None:
    _reset(router)
    chat.clear()
    r = _chat(router, "pair", body)
    assert r.status == 400, r.data
    assert orjson.loads(r.data)["error"]["param"]
    assert chat.requests == [] and _cooling(router) == set()


def test_an_unreachable_upstream_is_unavailable_to_the_gemini_sdk(router: RouterProcess) -> None:
    r = http.request("POST", f"{router.base_url}/v1beta/models/unreachable:generateContent",
                     body=orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
                     headers={"x-goog-api-key": CLIENT_KEY, "content-type": "application/json"})
    assert r.status == 503 and orjson.loads(r.data)["error"]["status"] == "UNAVAILABLE"


def test_count_tokens_checks_the_model(router: RouterProcess) -> None:
    r = http.request("POST", f"{router.base_url}/v1/messages/count_tokens",
                     body=orjson.dumps({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
                     headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"})
    assert r.status == 404
    ok = http.request("POST", f"{router.base_url}/v1/messages/count_tokens",
                      body=orjson.dumps({"model": "pair", "messages": [{"role": "user", "content": "x"}]}),
                      headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"})
    assert ok.status == 200
