"""The front doors under abuse: keys checked before bodies are read, bodies
bounded in size and time, wrong keys locked out, and a client that leaves
cancels the upstream call without cooling the account."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.hardening.conftest import FAKE_KEY
from tests.harness import CLIENT_KEY, RouterProcess

http = urllib3.PoolManager(retries=False)



@pytest.fixture(scope="module")
def router(chat: FakeOpenAIChat) -> Iterator[RouterProcess]:
    config = {
        "api-keys": [CLIENT_KEY],
        "request-body": {"max-bytes": 1_000_000, "read-timeout": 1.5},
        "auth-lockout": {"attempts": 5, "window": 60, "duration": 2},
        "remote-management": {"secret-key": "mgmt-secret"},
        "openai-compatibility": [{"name": "chat", "base-url": f"{chat.base_url}/v1",
                                  "api-key-entries": [{"api-key": FAKE_KEY}],
                                  "models": [{"name": "gpt-4o-mini", "alias": "mini"}]}],
    }
    with RouterProcess(config) as r:
        yield r


def _raw(router: RouterProcess, head: bytes, body: bytes = b"", *, wait: float = 5.0) -> bytes:
    """Send bytes on a fresh connection and read what comes back within ``wait`` seconds."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=wait) as sock:
        sock.sendall(head + body)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass
        return received


def _head(path: str, length: int, key: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_a_request_without_a_key_is_refused_before_its_body_arrives(router: RouterProcess) -> None:
    # the body never comes: the refusal must not wait for it
    started = time.monotonic()
    answer = _raw(router, _head("/v1/chat/completions", 50_000_000))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert time.monotonic() - started < 1.0


def test_a_declared_length_over_the_limit_is_refused_at_once(router: RouterProcess) -> None:
    started = time.monotonic()
    answer = _raw(router, _head("/v1/chat/completions", 5_000_000, CLIENT_KEY))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 1.0


def test_a_body_that_stalls_times_out(router: RouterProcess) -> None:
    body = orjson.dumps({"model": "mini", "messages": [{"role": "user", "content": "hi"}]})
    started = time.monotonic()
    answer = _raw(router, _head("/v1/chat/completions", len(body) + 10, CLIENT_KEY), body, wait=6)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 1.0 <= elapsed < 4.0
    assert b"not received in time" in answer


def test_wrong_keys_lock_the_address_out_for_a_while(router: RouterProcess) -> None:
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}

    def call(key: str) -> urllib3.BaseHTTPResponse:
        return http.request("POST", f"{router.base_url}/v1/chat/completions", body=orjson.dumps(body),
                            headers={"authorization": f"Bearer {key}", "content-type": "application/json"})

    assert call(CLIENT_KEY).status == 200
    statuses = [call(f"guess-{n}").status for n in range(5)]
    assert statuses == [401] * 5
    locked = call(CLIENT_KEY)  # even the right key: a guesser learns nothing while locked out
    assert locked.status == 429 and int(locked.headers["retry-after"]) >= 1
    time.sleep(2.2)
    assert call(CLIENT_KEY).status == 200


def test_management_secret_guesses_are_locked_out(router: RouterProcess) -> None:
    def call(secret: str) -> int:
        return http.request("GET", f"{router.base_url}/v0/management/usage",
                            headers={"authorization": f"Bearer {secret}"}).status

    assert call("mgmt-secret") == 200
    assert [call(f"guess-{n}") for n in range(5)] == [401] * 5
    assert call("mgmt-secret") == 429
    time.sleep(2.2)
    assert call("mgmt-secret") == 200


def test_auth_token_query_parameter_is_not_a_client_key(router: RouterProcess) -> None:
    r = http.request("GET", f"{router.base_url}/v1/models?auth_token={CLIENT_KEY}")
    assert r.status == 401
    assert http.request("GET", f"{router.base_url}/v1/models?key={CLIENT_KEY}").status == 200


def _cooldowns(router: RouterProcess) -> list[Any]:
    r = http.request("GET", f"{router.base_url}/v0/management/cooldowns",
                     headers={"authorization": "Bearer mgmt-secret"})
    return list(orjson.loads(r.data)["cooldowns"])


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_cancels_the_upstream_call(router: RouterProcess, chat: FakeOpenAIChat,
                                                        stream: bool) -> None:
    chat.clear()
    before = chat.abandoned
    chat.push(Scenario(delay=3.0))
    body = orjson.dumps({"model": "mini", "stream": stream, "messages": [{"role": "user", "content": "slow"}]})
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(_head("/v1/chat/completions", len(body), CLIENT_KEY) + body)
        deadline = time.monotonic() + 5
        while not chat.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert chat.requests, "the request never reached the upstream"
    # the client has gone at ~0 s; the upstream would think until 3 s unless the router hangs up
    deadline = time.monotonic() + 2
    while chat.abandoned == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert chat.abandoned == before + 1, "the router kept waiting for an answer nobody wants"
    assert _cooldowns(router) == []  # an abandoned request never cools an account
    r = http.request("POST", f"{router.base_url}/v1/chat/completions",
                     body=orjson.dumps({"model": "mini", "messages": [{"role": "user", "content": "next"}]}),
                     headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
    assert r.status == 200


def test_count_tokens_honours_the_keys_model_allowlist(chat: FakeOpenAIChat) -> None:
    config = {"api-keys": [{"key": "narrow-key", "models": ["mini"]}, CLIENT_KEY],
              "openai-compatibility": [{"name": "chat", "base-url": f"{chat.base_url}/v1",
                                        "api-key-entries": [{"api-key": FAKE_KEY}],
                                        "models": [{"name": "gpt-4o-mini", "alias": "mini"},
                                                   {"name": "gpt-4o", "alias": "big"}]}]}
    with RouterProcess(config) as router:
        def count(key: str, model: str) -> int:
            return http.request("POST", f"{router.base_url}/v1/messages/count_tokens",
                                body=orjson.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]}),
                                headers={"x-api-key": key, "content-type": "application/json"}).status

        assert count("narrow-key", "mini") == 200
        assert count("narrow-key", "big") == 403
        assert count(CLIENT_KEY, "big") == 200
