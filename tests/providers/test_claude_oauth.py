"""Claude subscription end to end: login -> auth file -> every ingress
dialect -> refresh near expiry and after a 401 -> still works."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from crossroads.auth import flows, tokens
from crossroads.auth.callback import parse_redirect
from crossroads.auth.spec import LoginResult
from crossroads.providers import claude_oauth
from tests.auth.tables import oauth_table
from tests.auth.test_flows import follow
from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import ALL, via_anthropic, via_chat

MODEL = "claude-opus-4-8"


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as server:
        server.extra_token_fields = {"account": {"email_address": "max@example.com"}}
        yield server


@pytest.fixture(scope="module")
def upstream(identity: FakeIdentity) -> Iterator[FakeClaudeOAuth]:
    with FakeClaudeOAuth(identity) as server:
        yield server


def endpoints(identity: FakeIdentity, upstream: FakeClaudeOAuth) -> dict[str, object]:
    return {"claude": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                       "authorize-url": f"{identity.base_url}/oauth/authorize", "base-url": upstream.base_url}}


def login_to(auth_dir: Path, identity: FakeIdentity, upstream: FakeClaudeOAuth) -> Path:
    table = oauth_table(endpoints(identity, upstream))

    async def run() -> LoginResult:
        login = flows.start(table, "claude", loopback=False)
        [result] = await flows.complete(login, parse_redirect(await follow(login.url, into_callback=False)))
        return result

    result = asyncio.run(run())
    path = auth_dir / f"{result.record_id}.json"
    path.write_bytes(orjson.dumps(result.data))
    path.chmod(0o600)
    return path


@pytest.fixture
def router(tmp_path: Path, identity: FakeIdentity, upstream: FakeClaudeOAuth) -> Iterator[tuple[RouterProcess, Path]]:
    auth_file = login_to(tmp_path, identity, upstream)
    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path),
              "oauth-endpoints": endpoints(identity, upstream)}
    with RouterProcess(config) as process:
        yield process, auth_file


def test_every_ingress_dialect_then_refresh_near_expiry(router: tuple[RouterProcess, Path],
                                                       identity: FakeIdentity, upstream: FakeClaudeOAuth) -> None:
    process, auth_file = router
    upstream.clear()
    for name, ask in ALL.items():
        assert "You said: hello from " + name in ask(process, MODEL, f"hello from {name}"), name
    assert via_anthropic(process, MODEL, "streamed", stream=True).endswith("You said: streamed")
    assert "You said: streamed chat" in via_chat(process, MODEL, "streamed chat", stream=True)
    for request in upstream.requests:
        assert request.headers["anthropic-beta"].startswith("claude-code-20250219,oauth-2025-04-20")
        assert request.headers["user-agent"].startswith("claude-cli/")
        assert request.query == {"beta": "true"}
        assert request.body["system"][0] == {"type": "text", "text": claude_oauth.IDENTITY}
    # the client's own system prompt follows the identity block, untouched
    chat_request = upstream.requests[1]
    assert chat_request.body["system"][1]["text"] == "Be brief."
    calls_before = identity.refresh_calls
    data = orjson.loads(auth_file.read_bytes())
    old_refresh = data["refresh_token"]
    data["expired"] = tokens.format_time(time.time() + 60)  # inside Claude's 4h lead
    auth_file.write_bytes(orjson.dumps(data))
    deadline = time.monotonic() + 10
    while identity.refresh_calls == calls_before and time.monotonic() < deadline:
        assert "You said: after" in via_chat(process, MODEL, "after expiry")
        time.sleep(0.2)
    assert identity.refresh_calls == calls_before + 1
    stored = orjson.loads(auth_file.read_bytes())
    assert stored["refresh_token"] != old_refresh and identity.refresh_token_valid(stored["refresh_token"])
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {stored['access_token']}"
    assert oct(auth_file.stat().st_mode & 0o777) == "0o600"


def test_upstream_401_refreshes_once_and_retries(router: tuple[RouterProcess, Path], identity: FakeIdentity,
                                                 upstream: FakeClaudeOAuth) -> None:
    process, auth_file = router
    assert "You said: one" in via_anthropic(process, MODEL, "one")
    revoked = orjson.loads(auth_file.read_bytes())["access_token"]
    with identity._glock:  # the provider revoked the access token early
        identity.by_access.pop(revoked)
    calls_before = identity.refresh_calls
    assert "You said: two" in via_anthropic(process, MODEL, "two")
    assert identity.refresh_calls == calls_before + 1
    assert orjson.loads(auth_file.read_bytes())["access_token"] != revoked
    statuses = [r.headers["Authorization"] == f"Bearer {revoked}" for r in upstream.requests[-2:]]
    assert statuses == [True, False]


def test_identity_block_keeps_the_cacheable_prefix_stable() -> None:
    first = claude_oauth.PROVIDER.adapt_body(None, {"system": [{"type": "text", "text": "S",  # type: ignore[arg-type]
                                                                  "cache_control": {"type": "ephemeral"}}]})
    second = claude_oauth.PROVIDER.adapt_body(None, {"system": [{"type": "text", "text": "S",  # type: ignore[arg-type]
                                                                   "cache_control": {"type": "ephemeral"}}],
                                                     "messages": [1, 2]})
    assert first is not None and second is not None and first["system"] == second["system"]
    assert first["system"][1]["cache_control"] == {"type": "ephemeral"}
    already = {"system": [{"type": "text", "text": claude_oauth.IDENTITY}, {"type": "text", "text": "x"}]}
    assert claude_oauth.PROVIDER.adapt_body(None, already) is None  # type: ignore[arg-type]
    assert claude_oauth.merged_betas("context-1m-2025-08-07,oauth-2025-04-20").endswith(",context-1m-2025-08-07")


def test_auth_list_shows_the_running_servers_cooldowns(tmp_path: Path, identity: FakeIdentity,
                                                       upstream: FakeClaudeOAuth) -> None:
    from typer.testing import CliRunner

    from crossroads.cli import app
    from tests.fakes.common import Scenario

    login_to(tmp_path, identity, upstream)
    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "remote-management": {"secret-key": "m-key"},
              "oauth-endpoints": endpoints(identity, upstream)}
    with RouterProcess(config) as process:
        upstream.push(Scenario.fail(429, "five-hour limit reached", retry_after=600))
        with pytest.raises(Exception, match="cooling down"):
            via_anthropic(process, MODEL, "hit the limit")
        listed = CliRunner().invoke(app, ["auth", "list", "--json", "--config", str(process.config_path)])
        assert listed.exit_code == 0, listed.output
        [row] = orjson.loads(listed.output)
        assert row["provider"] == "claude" and row["status"] == "ok"
        assert row["cooldowns"].startswith(f"{MODEL} for ") and "five-hour limit" in row["cooldowns"]


def test_login_driven_through_the_management_api(tmp_path: Path, identity: FakeIdentity,
                                                 upstream: FakeClaudeOAuth) -> None:
    import urllib3

    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "remote-management": {"secret-key": "m-key"},
              "oauth-endpoints": endpoints(identity, upstream)}
    http = urllib3.PoolManager()
    auth = {"x-management-key": "m-key"}
    with RouterProcess(config) as process:
        base = f"{process.base_url}/v0/management"
        assert http.request("GET", f"{base}/anthropic-auth-url").status == 401
        started = http.request("GET", f"{base}/anthropic-auth-url", headers=auth).json()
        assert started["url"].startswith(identity.base_url) and started["state"]
        redirect = asyncio.run(follow(started["url"], into_callback=False))
        tampered = redirect.replace(started["state"], "not-the-state")
        refused = http.request("POST", f"{base}/oauth-callback", json={"redirect_url": tampered}, headers=auth)
        assert refused.status == 400 and "state" in refused.json()["error"]["message"]
        done = http.request("POST", f"{base}/oauth-callback", json={"redirect_url": redirect}, headers=auth)
        assert done.status == 200, done.data
        [record_id] = done.json()["accounts"]
        assert (tmp_path / f"{record_id}.json").exists()
        assert http.request("GET", f"{base}/get-auth-status?state={started['state']}",
                            headers=auth).json()["status"] == "ok"
        replay = http.request("POST", f"{base}/oauth-callback", json={"redirect_url": redirect}, headers=auth)
        assert replay.status == 400 and "already completed" in replay.json()["error"]["message"]
        deadline = time.monotonic() + 5  # hot reload picks the new account up
        while time.monotonic() < deadline:
            try:
                assert "You said: hi" in via_chat(process, MODEL, "hi")
                break
            except Exception:
                time.sleep(0.2)
        else:
            raise AssertionError("the new account was not served")
