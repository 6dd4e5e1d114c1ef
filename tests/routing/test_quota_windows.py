"""Subscription windows drive routing, end to end: Claude and Codex fakes send
their real quota headers and usage-endpoint bodies; the router reads the
usage endpoints at start and the headers on every answer, and routes by
what they say (an account nearly out of its 5-hour window gets nothing while
another has room; a weekly-exhausted one is skipped until its reset, without
a request, and used again afterwards; ``pause-at`` holds)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from crossroads.auth import flows
from crossroads.auth.callback import parse_redirect
from crossroads.auth.spec import LoginResult
from tests.auth.tables import oauth_table
from tests.auth.test_flows import follow
from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import via_anthropic

MODEL = "claude-opus-4-8"
MANAGEMENT = "quota-mgmt"


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as server:
        server.extra_token_fields = {"account": {"email_address": "max@example.com"}}
        yield server


@pytest.fixture
def upstreams(identity: FakeIdentity) -> Iterator[tuple[FakeClaudeOAuth, FakeClaudeOAuth]]:
    with FakeClaudeOAuth(identity) as first, FakeClaudeOAuth(identity) as second:
        yield first, second


def endpoints(identity: FakeIdentity, base_url: str) -> dict[str, Any]:
    return {"claude": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                       "authorize-url": f"{identity.base_url}/oauth/authorize", "base-url": base_url}}


def login(auth_dir: Path, identity: FakeIdentity, upstream: FakeClaudeOAuth, name: str,
          **extra: Any) -> None:
    """A Claude subscription whose requests go to ``upstream`` (the auth file's ``base_url``)."""
    table = oauth_table(endpoints(identity, upstream.base_url))

    async def run() -> LoginResult:
        started = flows.start(table, "claude", loopback=False)
        [result] = await flows.complete(started, parse_redirect(await follow(started.url, into_callback=False)))
        return result

    data = {**asyncio.run(run()).data, "email": f"{name}@example.com", "base_url": upstream.base_url, **extra}
    path = auth_dir / f"claude-{name}.json"
    path.write_bytes(orjson.dumps(data))
    path.chmod(0o600)


def router(tmp_path: Path, identity: FakeIdentity, base_url: str, **routing: Any) -> RouterProcess:
    return RouterProcess({"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path),
                          "oauth-endpoints": endpoints(identity, base_url),
                          "remote-management": {"secret-key": MANAGEMENT}, "routing": routing})


def messages_to(upstream: FakeClaudeOAuth) -> int:
    return sum(1 for r in upstream.requests if r.path.endswith("/messages"))


def wait_for_probes(*upstreams: FakeClaudeOAuth, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(u.usage_reads for u in upstreams):
            time.sleep(0.2)  # the last read's windows reach the state
            return
        time.sleep(0.05)
    raise AssertionError("the router did not read the usage endpoints at start")


def management(process: RouterProcess, path: str) -> Any:
    response = urllib3.request("GET", f"{process.base_url}/v0/management/{path}",
                               headers={"X-Management-Key": MANAGEMENT}, timeout=5)
    assert response.status == 200, response.data
    return orjson.loads(response.data)


def test_an_account_at_95_percent_of_its_5_hour_window_gets_no_traffic(
        tmp_path: Path, identity: FakeIdentity, upstreams: tuple[FakeClaudeOAuth, FakeClaudeOAuth]) -> None:
    nearly_out, roomy = upstreams
    nearly_out.set_window("5h", 0.95, 3600)
    nearly_out.set_window("7d", 0.40, 5 * 86400)
    roomy.set_window("5h", 0.20, 4000)
    login(tmp_path, identity, nearly_out, "nearly-out")
    login(tmp_path, identity, roomy, "roomy")
    with router(tmp_path, identity, nearly_out.base_url) as process:
        wait_for_probes(nearly_out, roomy)
        for i in range(6):
            assert via_anthropic(process, MODEL, f"turn {i}").endswith(f"You said: turn {i}")
        assert messages_to(nearly_out) == 0 and messages_to(roomy) == 6
        report = {row["label"]: row for row in management(process, "quota")["accounts"]}
        five_hour = next(w for w in report["claude:nearly-out@example.com"]["windows"] if w["kind"] == "five-hour")
        assert five_hour["used_percent"] == 95.0 and five_hour["bar"].endswith("95%")
        assert five_hour["source"] in ("usage-endpoint", "header") and five_hour["resets_in_seconds"] > 3000
        weekly = next(w for w in report["claude:nearly-out@example.com"]["windows"] if w["kind"] == "weekly")
        assert weekly["used_percent"] == 40.0
        dashboard = {row["label"]: row for row in management(process, "accounts")["accounts"]}
        nearly = dashboard["claude:nearly-out@example.com"]
        assert nearly["quota"]["remaining_fraction"] == 0.05 and nearly["quota"]["resets_in"] > 3000
        assert {w["window"] for w in nearly["windows"]} == {"five-hour", "weekly"}
        # the roomy account's headers, read on every answer, keep its picture current
        roomy.set_window("5h", 0.55, 4000)
        via_anthropic(process, MODEL, "one more")
        report = {row["label"]: row for row in management(process, "quota")["accounts"]}
        [roomy_5h] = [w for w in report["claude:roomy@example.com"]["windows"] if w["kind"] == "five-hour"]
        assert roomy_5h["used_percent"] == 55.0 and roomy_5h["source"] == "header"


def test_a_weekly_exhausted_account_is_skipped_until_its_reset_then_used_again(
        tmp_path: Path, identity: FakeIdentity, upstreams: tuple[FakeClaudeOAuth, FakeClaudeOAuth]) -> None:
    spent, other = upstreams
    spent.set_window("7d", 1.0, 15)  # long enough for a loaded machine to start the router and check
    login(tmp_path, identity, spent, "spent")
    login(tmp_path, identity, other, "other")
    with router(tmp_path, identity, spent.base_url, **{"prefer-soonest-reset": False}) as process:
        wait_for_probes(spent, other)
        for i in range(4):
            via_anthropic(process, MODEL, f"before {i}")
        assert messages_to(spent) == 0, "an exhausted window must not cost a request to find out"
        assert messages_to(other) == 4
        [row] = [r for r in management(process, "quota")["accounts"] if r["label"] == "claude:spent@example.com"]
        assert row["exhausted_until"]
        time.sleep(max(0.0, spent.windows["7d"][1] - time.time()) + 0.5)
        for i in range(4):
            via_anthropic(process, MODEL, f"after {i}")
        assert messages_to(spent) >= 1, "after its reset the account is used again"


def test_a_family_scoped_weekly_window_holds_back_only_that_family(
        tmp_path: Path, identity: FakeIdentity, upstreams: tuple[FakeClaudeOAuth, FakeClaudeOAuth]) -> None:
    opus_spent, other = upstreams
    opus_spent.set_window("7d_opus", 1.0, 3600)
    opus_spent.set_window("7d", 0.3, 3600)
    other.set_window("7d", 0.3, 3600)
    login(tmp_path, identity, opus_spent, "opus-spent")
    login(tmp_path, identity, other, "other")
    with router(tmp_path, identity, other.base_url, **{"prefer-soonest-reset": False}) as process:
        wait_for_probes(opus_spent, other)
        for i in range(3):
            via_anthropic(process, "claude-opus-4-8", f"opus {i}")
        assert messages_to(opus_spent) == 0
        opus_spent.windows.pop("7d_opus")  # (the fake would refuse every model otherwise)
        for i in range(4):
            via_anthropic(process, "claude-sonnet-4-5", f"sonnet {i}")
        assert messages_to(opus_spent) >= 1, "a window scoped to Opus leaves the other models alone"


def test_pause_at_holds_per_pool_and_per_account(
        tmp_path: Path, identity: FakeIdentity, upstreams: tuple[FakeClaudeOAuth, FakeClaudeOAuth]) -> None:
    reserve, working = upstreams
    reserve.set_window("5h", 0.65, 3600)
    working.set_window("5h", 0.70, 3600)
    login(tmp_path, identity, reserve, "reserve", pause_at="60%")  # the owner keeps 40 % for themself
    login(tmp_path, identity, working, "working")
    with router(tmp_path, identity, working.base_url, **{"pause-at": "90%"}) as process:
        wait_for_probes(reserve, working)
        for i in range(4):
            via_anthropic(process, MODEL, f"turn {i}")
        assert messages_to(reserve) == 0 and messages_to(working) == 4
        working.set_window("5h", 0.91, 3600)  # past the pool's 90 %: the next answer's headers say so
        via_anthropic(process, MODEL, "the last one")
        response = urllib3.request(
            "POST", f"{process.base_url}/v1/messages", timeout=10,
            headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"},
            body=orjson.dumps({"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}))
        assert response.status == 429, response.data
        assert int(response.headers["retry-after"]) > 3000
        assert messages_to(reserve) == 0 and messages_to(working) == 5


def test_auth_list_shows_each_accounts_windows_with_bars_and_resets(
        tmp_path: Path, identity: FakeIdentity, upstreams: tuple[FakeClaudeOAuth, FakeClaudeOAuth]) -> None:
    from typer.testing import CliRunner

    from crossroads.cli import app

    upstream, _ = upstreams
    upstream.windows.clear()
    upstream.set_window("5h", 0.5, 3600)
    upstream.set_window("7d_opus", 0.25, 86400)
    login(tmp_path, identity, upstream, "listed")
    with router(tmp_path, identity, upstream.base_url) as process:
        wait_for_probes(upstream)
        listed = CliRunner().invoke(app, ["auth", "list", "--config", str(process.config_path)])
        assert listed.exit_code == 0, listed.output
        lines = listed.output.splitlines()
        five_hour = next(line for line in lines if line.strip().startswith("five-hour"))
        assert "[##########..........] 50%" in five_hour and "resets 20" in five_hour and "usage-endpoint" in five_hour
        assert any(line.strip().startswith("weekly-family:opus") and "25%" in line for line in lines)
        as_json = CliRunner().invoke(app, ["auth", "list", "--json", "--config", str(process.config_path)])
        [row] = orjson.loads(as_json.output)
        assert {w["window"] for w in row["windows"]} == {"five-hour", "weekly-family:opus"}
