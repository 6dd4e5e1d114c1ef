"""CLIProxyAPI's tool routes against the real router: usage-queue,
api-key-usage, api-call, DELETE oauth-session, latest-version, and the
MANAGEMENT_PASSWORD environment secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from crossroads import __version__
from tests.fakes.oauth import FakeIdentity
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "sk-upstream-tools-0123456789"
CLIENT = "tools-client-key-0000111"
MANAGEMENT = "tools-management-secret-22"
HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    server = FakeOpenAIChat(api_keys=[KEY]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", encoding="json") as server:
        yield server


@pytest.fixture(scope="module")
def router(fake: FakeOpenAIChat, identity: FakeIdentity) -> Iterator[RouterProcess]:
    config = {"api-keys": [CLIENT], "remote-management": {"secret-key": MANAGEMENT},
              "oauth-endpoints": {"claude": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                                             "authorize-url": f"{identity.base_url}/oauth/authorize"}},
              "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                        "api-key-entries": [{"api-key": KEY}],
                                        "models": [{"name": "gpt-4o-mini", "alias": "m1"}]}]}
    with RouterProcess(config) as process:
        yield process


def call(router: RouterProcess, method: str, path: str, body: object = None,
         secret: str = MANAGEMENT) -> urllib3.BaseHTTPResponse:
    return HTTP.request(method, f"{router.base_url}/v0/management/{path}",
                        body=json.dumps(body) if body is not None else None,
                        headers={"x-management-key": secret, "content-type": "application/json"})


def ask(router: RouterProcess) -> str:
    reply = HTTP.request("POST", f"{router.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {CLIENT}"},
                         json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status == 200
    return reply.headers["x-request-id"]


def test_usage_queue_pops_oldest_first_then_is_empty(router: RouterProcess) -> None:
    call(router, "GET", "usage-queue?count=1000")  # whatever other tests left
    first, second = ask(router), ask(router)
    [popped] = call(router, "GET", "usage-queue").json()  # count defaults to 1
    assert popped["request_id"] == first and popped["alias"] == "m1" and popped["endpoint"] == "/v1/chat/completions"
    assert popped["tokens"]["total_tokens"] == popped["tokens"]["input_tokens"] + popped["tokens"]["output_tokens"] > 0
    assert popped["failed"] is False and popped["fail"]["status_code"] == 200 and popped["auth_index"] == "up#0"
    assert [r["request_id"] for r in call(router, "GET", "usage-queue?count=5").json()] == [second]
    assert call(router, "GET", "usage-queue?count=5").json() == []
    assert call(router, "GET", "usage-queue?count=0").status == 400
    assert call(router, "GET", "usage-queue", secret="wrong-secret-000").status == 401


def test_api_key_usage_counts_each_key_with_recent_buckets(router: RouterProcess, fake: FakeOpenAIChat) -> None:
    before = call(router, "GET", "api-key-usage").json()
    ask(router)
    answer = call(router, "GET", "api-key-usage")
    assert KEY not in answer.data.decode()  # masked, as every management answer
    [(name, entry)] = answer.json()["openai-compatibility"].items()
    assert name.startswith(f"{fake.base_url}/v1|")
    old = before.get("openai-compatibility", {}).get(name, {"success": 0})
    assert entry["success"] == old["success"] + 1 and entry["failed"] == 0
    buckets = entry["recent_requests"]
    assert len(buckets) == 20 and sum(b["success"] for b in buckets) == entry["success"]
    assert all(len(b["time"]) == 11 and b["time"][5] == "-" for b in buckets)


def test_api_call_substitutes_the_accounts_token(router: RouterProcess, fake: FakeOpenAIChat) -> None:
    probe = {"method": "get", "url": f"{fake.base_url}/v1/models", "header": {"Authorization": "Bearer $TOKEN$"}}
    answer = call(router, "POST", "api-call", {**probe, "auth_index": "up#0"}).json()
    assert answer["status_code"] == 200 and json.loads(answer["body"])["object"] == "list"
    assert answer["header"]["Content-Type"][0].startswith("application/json")
    without = call(router, "POST", "api-call", probe).json()  # no account: the token stays as it is
    assert without["status_code"] == 401
    assert call(router, "POST", "api-call", {**probe, "url": "/v1/models"}).status == 400
    assert call(router, "POST", "api-call", {**probe, "method": ""}).status == 400
    gone = call(router, "POST", "api-call", {**probe, "url": "http://127.0.0.1:9/"})
    assert gone.status == 502
    audit = (Path(router.config["auth-dir"]) / "logs" / "audit.log").read_text()
    assert f"api-call GET {fake.base_url} as up#0" in audit


def test_a_login_in_progress_can_be_cancelled(router: RouterProcess, identity: FakeIdentity) -> None:
    started = call(router, "GET", "anthropic-auth-url").json()
    state = started["state"]
    assert call(router, "DELETE", f"oauth-session?state={state}").json() == {"status": "ok", "cancelled": True}
    status = call(router, "GET", f"get-auth-status?state={state}").json()
    assert status["status"] == "error" and "cancelled" in status["error"]
    redirect = HTTP.request("GET", started["url"], redirect=False).headers["location"]
    refused = call(router, "POST", "oauth-callback", {"redirect_url": redirect})
    assert refused.status == 400
    assert call(router, "DELETE", f"oauth-session?state={state}").json()["cancelled"] is False
    assert call(router, "DELETE", "oauth-session").status == 400


def test_latest_version_is_the_running_one(router: RouterProcess) -> None:
    assert call(router, "GET", "latest-version").json()["latest-version"] == __version__


def test_management_password_from_the_environment(fake: FakeOpenAIChat, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", "env-management-password-9")
    with RouterProcess({"api-keys": [CLIENT]}) as router:  # no secret-key: the environment's turns management on
        assert call(router, "GET", "latest-version", secret="env-management-password-9").status == 200
        assert call(router, "GET", "latest-version", secret="not-the-password").status == 401
    monkeypatch.delenv("MANAGEMENT_PASSWORD")
    with RouterProcess({"api-keys": [CLIENT]}) as router:
        assert call(router, "GET", "latest-version", secret="env-management-password-9").status == 404
