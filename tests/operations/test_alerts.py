"""Alert webhooks against a real router and a loopback receiver: a pool with
no account, a nearly spent budget, a login that died, a side service that
went down and came back; generic JSON, Slack and Discord bodies;
deduplicated and rate-limited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.common import Scenario
from tests.fakes.oauth import FakeIdentity
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.side_services import FakeWebAI
from tests.fakes.webhook import FakeWebhooks
from tests.harness import RouterProcess, free_port
from tests.providers.test_claude_oauth import endpoints, login_to

KEY = "sk-upstream-alerts-0123456"
CLIENT = "alerts-client-key-000111"
MANAGEMENT = "alerts-management-222333"
HOOK_TOKEN = "hook-token-secret-444555"
HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture
def hooks() -> Iterator[FakeWebhooks]:
    with FakeWebhooks() as server:
        yield server


def alerts(hooks: FakeWebhooks, **extra: object) -> dict[str, object]:
    return {"check-interval": 0.2, "webhooks": [
        {"url": f"{hooks.base_url}/json", "headers": {"authorization": f"Bearer {HOOK_TOKEN}"}},
        {"url": f"{hooks.base_url}/slack", "format": "slack", "events": ["no-account", "budget"]},
        {"url": f"{hooks.base_url}/discord", "format": "discord"}], "max-per-minute": 1, **extra}


def ask(router: RouterProcess, key: str = CLIENT) -> int:
    return HTTP.request("POST", f"{router.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                        json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]}).status


def test_no_account_and_budget_alerts_deduplicated_and_rate_limited(hooks: FakeWebhooks) -> None:
    fake = FakeOpenAIChat(api_keys=[KEY]).start()
    config = {"api-keys": [{"key": CLIENT, "name": "team-a", "budget": {"tokens": 50, "period": "day"}}],
              "remote-management": {"secret-key": MANAGEMENT}, "request-retry": 0,
              "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                        "api-key-entries": [{"api-key": KEY}],
                                        "models": [{"name": "gpt-4o-mini", "alias": "m1"}]}],
              "alerts": {**alerts(hooks), "max-per-minute": 5}}
    config["alerts"]["webhooks"][2]["url"] = f"{hooks.base_url}/discord"  # type: ignore[index]
    try:
        with RouterProcess(config) as router:
            fake.push(Scenario.fail(429, "slow down", retry_after=600))
            assert ask(router) == 429
            assert ask(router) == 429  # the pool is still empty: the same alert, not sent twice
            [first] = hooks.wait_for("/json", 1)
            assert first["event"] == "no-account" and first["details"]["model"] == "m1"
            assert first["severity"] == "critical" and first["title"] == "No account available for m1"
            assert hooks.received[0][2]["Authorization"] == f"Bearer {HOOK_TOKEN}"
            [slack] = hooks.wait_for("/slack", 1)
            assert slack["text"].startswith("*No account available for m1*\n")
            [discord] = hooks.wait_for("/discord", 1)
            assert discord["content"].startswith("**No account available for m1**\n")
            assert discord["allowed_mentions"] == {"parse": []}

            HTTP.request("POST", f"{router.base_url}/v0/management/reset-quota",
                         headers={"x-management-key": MANAGEMENT})
            assert ask(router) == 200 and ask(router) == 200  # about 26 tokens each: over 90 % of 50
            bodies = hooks.wait_for("/json", 2)
            budget = bodies[1]
            assert budget["event"] == "budget" and budget["details"]["key"] == "team-a"
            assert budget["details"]["spent"] >= 45 and budget["details"]["budget"] == 50
            assert "team-a" in hooks.wait_for("/slack", 2)[1]["text"]
            time.sleep(1.0)  # later checks find the same budget: not sent again
            assert [b["event"] for b in hooks.bodies("/json")] == ["no-account", "budget"]
            state = json.loads((Path(router.config["auth-dir"]) / "logs" / "alerts-state.json").read_text())
            assert set(state) == {"no-account:m1", f"budget:team-a:{int(time.time() // 86400 * 86400)}"}
    finally:
        fake.stop()
    assert HOOK_TOKEN not in router.log() and hooks.base_url not in router.log()


def test_a_webhook_over_its_rate_is_dropped_not_queued(hooks: FakeWebhooks) -> None:
    fake = FakeOpenAIChat(api_keys=[KEY]).start()
    config = {"api-keys": [CLIENT], "request-retry": 0,
              "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                        "api-key-entries": [{"api-key": KEY}],
                                        "models": [{"name": "gpt-4o-mini", "alias": "m1"},
                                                   {"name": "gpt-4o", "alias": "m2"}]}],
              "alerts": alerts(hooks)}
    try:
        with RouterProcess(config) as router:
            for model in ("m1", "m2"):
                fake.push(Scenario.fail(429, "slow down", retry_after=600))
                status = HTTP.request("POST", f"{router.base_url}/v1/chat/completions",
                                      headers={"authorization": f"Bearer {CLIENT}"},
                                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]}).status
                assert status == 429
            hooks.wait_for("/json", 1)
            time.sleep(1.0)
            assert len(hooks.bodies("/json")) == 1  # max-per-minute: 1
            log = router.log()
    finally:
        fake.stop()
    assert "webhook #0 sent 1 alerts this minute; dropped 'No account available for m" in log


def test_a_dead_login_raises_needs_login(hooks: FakeWebhooks, tmp_path: Path) -> None:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as identity, \
            FakeClaudeOAuth(identity) as upstream:
        auth_file = login_to(tmp_path, identity, upstream)
        data = json.loads(auth_file.read_text())
        data["expired"] = "2020-01-01T00:00:00Z"
        auth_file.write_text(json.dumps(data))
        identity.fail_refresh(400, "invalid_grant", "Refresh token revoked")
        config = {"api-keys": [CLIENT], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints(identity, upstream),
                  "alerts": alerts(hooks)}
        with RouterProcess(config) as router:
            HTTP.request("POST", f"{router.base_url}/v1/messages",
                         headers={"x-api-key": CLIENT, "anthropic-version": "2023-06-01"},
                         json={"model": "claude-opus-4-8", "max_tokens": 10,
                               "messages": [{"role": "user", "content": "hi"}]})
            [alert] = hooks.wait_for("/json", 1)
            assert alert["event"] == "needs-login" and alert["details"]["account"] == auth_file.stem
            assert hooks.bodies("/slack") == []  # not among that webhook's events
            hooks.wait_for("/discord", 1)


def test_a_side_service_going_down_and_coming_back(hooks: FakeWebhooks) -> None:
    port = free_port()
    service = FakeWebAI("0.5", port=port).start()
    config = {"api-keys": [CLIENT], "alerts": {**alerts(hooks), "max-per-minute": 10},
              "side-services": [{"enabled": True, "endpoint": service.base_url, "name": "gemweb",
                                 "health-interval": 0.2}]}
    with RouterProcess(config) as router:
        time.sleep(0.6)
        assert hooks.bodies("/json") == []  # up from the start: nothing to say
        service.stop()
        [down] = hooks.wait_for("/json", 1)
        assert down["event"] == "service-down" and down["details"]["service"] == "side-services[gemweb]"
        service = FakeWebAI("0.5", port=port).start()
        up = hooks.wait_for("/json", 2)[1]
        assert up["event"] == "service-up" and up["title"] == "Side service side-services[gemweb] is back up"
        service.stop()
        assert hooks.wait_for("/json", 3)[2]["event"] == "service-down"  # a new outage alerts again
        assert router.process.poll() is None


@pytest.mark.parametrize(("section", "words"), [
    ({"webhooks": [{"url": "ftp://x"}]}, "needs an http"),
    ({"webhooks": [{"url": "http://x", "format": "teams"}]}, "format"),
    ({"webhooks": [{"url": "http://x", "events": ["everything"]}]}, "events"),
    ({"budget-threshold": 1.5}, "budget-threshold"),
])
def test_a_bad_alerts_section_is_a_config_error(section: dict[str, object], words: str) -> None:
    from crossroads import config as config_module

    with pytest.raises(config_module.ConfigError, match=words):
        config_module.parse(json.dumps({"alerts": section}), source="t")
