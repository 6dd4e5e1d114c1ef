"""One runtime per server: what a hot reload (config.yaml edited, a credential file
rewritten) must keep, what it must change, and what a rejected config must not touch.

Black box: a real ``crossroads serve`` subprocess, loopback fakes, HTTP and files only.
Cooldowns are read from the management API and rows are identified by their ``label``
(the account's human name, e.g. ``claude-api-key[0]``), since account ids are digests.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
import yaml

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.common import Scenario
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess, free_port

MANAGEMENT_KEY = "mgmt-key"
MODEL = "claude-haiku-4-5"
OAUTH_MODEL = "claude-opus-4-8"
HIGH_BUDGET = 24576  # README: reasoning level "high" is a 24576-token budget
CATALOGUE_BUDGET = 2000  # what the rejected config's model-catalogue would clamp it to

http = urllib3.PoolManager()


# ---------------------------------------------------------------------------- helpers


def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def replace_file(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".new")
    temp.write_text(text)
    os.replace(temp, path)


def current_config(router: RouterProcess) -> dict[str, Any]:
    loaded = yaml.safe_load(router.config_path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def rewrite_config(router: RouterProcess, config: dict[str, Any], *, expect: str = "config reloaded") -> None:
    """Write ``config`` to the router's config file and wait until the log reports ``expect``
    once more than before."""
    before = router.log().count(expect)
    replace_file(router.config_path, yaml.safe_dump(config))
    eventually(lambda: router.log().count(expect) > before, f"log says {expect!r} after the config edit")


def ask(router: RouterProcess, model: str = MODEL, *, stream: bool = False) -> urllib3.BaseHTTPResponse:
    body = {"model": model, "max_tokens": 32, "stream": stream,
            "messages": [{"role": "user", "content": "hello"}]}
    return http.request("POST", f"{router.base_url}/v1/messages", body=orjson.dumps(body),
                        headers={"content-type": "application/json", "x-api-key": CLIENT_KEY,
                                 "anthropic-version": "2023-06-01"},
                        retries=False, timeout=urllib3.Timeout(total=20))


def cooldowns(router: RouterProcess) -> list[dict[str, Any]]:
    response = http.request("GET", f"{router.base_url}/v0/management/cooldowns",
                            headers={"X-Management-Key": MANAGEMENT_KEY}, retries=False)
    assert response.status == 200, response.data
    rows: list[dict[str, Any]] = response.json()["cooldowns"]
    return rows


def cooling_labels(router: RouterProcess, model: str = MODEL) -> dict[str, float]:
    """label -> seconds_left, for the rows of ``model``."""
    return {row["label"]: float(row["seconds_left"]) for row in cooldowns(router) if row["model"] == model}


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def api_key_entry(fake: FakeAnthropic, key: str, model: str = MODEL) -> dict[str, Any]:
    return {"api-key": key, "base-url": fake.base_url, "models": [{"name": model}]}


@pytest.fixture
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys=["key-one", "key-two", "key-one-rotated"]) as fake:
        yield fake


# ---------------------------------------------------------------------------- client limits


def limited_config(fake: FakeAnthropic, auth_dir: Path) -> dict[str, Any]:
    return {"api-keys": [{"key": CLIENT_KEY, "rpm": 1}], "auth-dir": str(auth_dir), "request-retry": 3,
            "claude-api-key": [api_key_entry(fake, "key-one")]}


def test_rpm_limit_survives_a_config_reload(tmp_path: Path, anthropic_fake: FakeAnthropic) -> None:
    with RouterProcess(limited_config(anthropic_fake, tmp_path)) as router:
        first = ask(router)
        assert first.status == 200, first.data
        assert ask(router).status == 429  # rpm 1: the second request of the minute is refused

        rewrite_config(router, {**current_config(router), "request-retry": 2})  # unrelated change
        again = ask(router)
        assert again.status == 429, f"the key's request window was reset by the reload: {again.status}"


def test_rpm_limit_survives_a_credential_file_rewrite(tmp_path: Path, anthropic_fake: FakeAnthropic) -> None:
    stored = tmp_path / "claude-idle@example.com.json"
    # a subscription credential that serves no model here (nothing may reach the real API)
    record = {"type": "claude", "email": "idle@example.com", "access_token": "at-1", "excluded_models": ["*"]}
    stored.write_text(orjson.dumps(record).decode())
    with RouterProcess(limited_config(anthropic_fake, tmp_path)) as router:
        first = ask(router)
        assert first.status == 200, first.data
        assert ask(router).status == 429

        before = router.log().count("credentials reloaded")
        replace_file(stored, orjson.dumps({**record, "access_token": "at-2"}).decode())
        eventually(lambda: router.log().count("credentials reloaded") > before, "credential rewrite applied")
        again = ask(router)
        assert again.status == 429, f"the key's request window was reset by the reload: {again.status}"


# ---------------------------------------------------------------------------- rejected config


def test_rejected_config_changes_nothing(tmp_path: Path) -> None:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as identity_a, \
            FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as identity_b, \
            FakeClaudeOAuth(identity_a) as upstream:
        grant = identity_a.issue(expires_in=8 * 3600)
        # the file says the token is good for hours (so no refresh happens on its own), but the
        # upstream no longer takes it: the first request gets a 401 and needs a refresh
        credential = {"type": "claude", "email": "max@example.com", "access_token": "at-expired-long-ago",
                      "refresh_token": grant.refresh_token,
                      "expired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 8 * 3600))}
        (tmp_path / "claude-max@example.com.json").write_text(orjson.dumps(credential).decode())

        def endpoints(identity: FakeIdentity) -> dict[str, Any]:
            return {"claude": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                               "base-url": upstream.base_url}}

        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints(identity_a)}
        with RouterProcess(config) as router:
            rejected = {**config, "oauth-endpoints": endpoints(identity_b),
                        "model-catalogue": {OAUTH_MODEL: {"max-budget": CATALOGUE_BUDGET}},
                        "claude-api-key": [{"api-key": "k", "base-url": "not a url"}]}
            rewrite_config(router, rejected, expect="rejected")
            assert identity_a.refresh_calls == 0 and not identity_b.requests  # nothing refreshed yet

            body = {"model": OAUTH_MODEL, "max_tokens": 30000, "reasoning_effort": "high",
                    "messages": [{"role": "user", "content": "think hard"}]}
            response = http.request("POST", f"{router.base_url}/v1/chat/completions", body=orjson.dumps(body),
                                    headers={"content-type": "application/json",
                                             "authorization": f"Bearer {CLIENT_KEY}"},
                                    retries=False, timeout=urllib3.Timeout(total=20))
            sent = [r.body for r in upstream.requests if r.path.endswith("/messages")]
            observed = {
                "token calls to B (rejected config)": len(identity_b.requests),
                "refreshes at A (running config)": identity_a.refresh_calls,
                "thinking budget sent upstream": (sent[-1].get("thinking") or {}).get("budget_tokens")
                if sent else None,
                "status": response.status,
            }
            assert observed == {
                "token calls to B (rejected config)": 0,
                "refreshes at A (running config)": 1,
                "thinking budget sent upstream": HIGH_BUDGET,  # not the rejected catalogue's 2000
                "status": 200,
            }, response.data


# ---------------------------------------------------------------------------- cooldowns


def test_changed_secret_clears_only_that_accounts_cooldown(tmp_path: Path,
                                                           anthropic_fake: FakeAnthropic) -> None:
    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path),
              "remote-management": {"secret-key": MANAGEMENT_KEY}, "max-retry-interval": 1,
              "claude-api-key": [api_key_entry(anthropic_fake, "key-one"),
                                 api_key_entry(anthropic_fake, "key-two")]}
    with RouterProcess(config) as router:
        anthropic_fake.push(Scenario.fail(429, "slow down", retry_after=600),
                            Scenario.fail(429, "slow down", retry_after=600))
        assert ask(router).status == 429  # both accounts refused: both cool for 600 s
        eventually(lambda: set(cooling_labels(router)) == {"claude-api-key[0]", "claude-api-key[1]"},
                   "both accounts cooling")

        changed = current_config(router)
        changed["claude-api-key"][0]["api-key"] = "key-one-rotated"
        rewrite_config(router, changed)
        cooling = cooling_labels(router)
        assert "claude-api-key[0]" not in cooling, f"the re-keyed account still cools: {cooldowns(router)}"
        assert cooling.get("claude-api-key[1]", 0) > 500, f"the other account's cooldown went: {cooldowns(router)}"

        anthropic_fake.clear()
        served = ask(router)
        assert served.status == 200, served.data
        assert anthropic_fake.requests[-1].headers["x-api-key"] == "key-one-rotated"


def test_transient_cooldown_length_follows_the_reloaded_config(tmp_path: Path,
                                                               anthropic_fake: FakeAnthropic) -> None:
    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "transient-error-cooldown-seconds": 5,
              "max-retry-interval": 0,  # answer at once instead of waiting for the cooldown to end
              "remote-management": {"secret-key": MANAGEMENT_KEY},
              "claude-api-key": [api_key_entry(anthropic_fake, "key-one")]}
    with RouterProcess(config) as router:
        rewrite_config(router, {**current_config(router), "transient-error-cooldown-seconds": 300})
        anthropic_fake.push(Scenario.fail(503, "upstream is down"))
        assert ask(router).status >= 500
        eventually(lambda: "claude-api-key[0]" in cooling_labels(router), "the account cooling after a 503")
        left = cooling_labels(router)["claude-api-key[0]"]
        assert 250 < left <= 300, f"cooldown of {left}s: the reloaded transient cooldown (300 s) is not used"


def test_stream_cut_after_its_first_event_cools_the_account(tmp_path: Path,
                                                            anthropic_fake: FakeAnthropic) -> None:
    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "transient-error-cooldown-seconds": 60,
              "remote-management": {"secret-key": MANAGEMENT_KEY},
              "claude-api-key": [api_key_entry(anthropic_fake, "key-one")]}
    with RouterProcess(config) as router:
        anthropic_fake.push(Scenario(text="a long answer " * 20, cut_after=3))
        response = ask(router, stream=True)
        assert response.status == 200  # the first events reached the client before the cut
        received = response.data.decode()
        assert "event: message_start" in received and "message_stop" not in received
        assert "event: error" in received, received  # ended with an error event, not silently
        eventually(lambda: "claude-api-key[0]" in cooling_labels(router),
                   f"the account cooling for {MODEL} after its stream broke", timeout=3)
        assert cooling_labels(router)["claude-api-key[0]"] > 30


# ---------------------------------------------------------------------------- restart-only settings


def test_port_change_is_reported_as_needing_a_restart(tmp_path: Path) -> None:
    with RouterProcess({"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path)}) as router:
        new_port = free_port()
        replace_file(router.config_path, yaml.safe_dump({**current_config(router), "port": new_port}))

        def restart_notice() -> bool:
            return any("port" in line.lower() and "restart" in line.lower() for line in router.log().splitlines())

        eventually(restart_notice, "a log line saying the port change needs a restart")
        assert healthy(router.port), "the server stopped answering on its running port"
