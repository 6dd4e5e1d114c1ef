"""Truthful cost labels: every usage record says how it was paid for
(subscription, per-token with a price from the table or config, credits,
unknown) and never makes a number up; the management usage answer and
``crossroads usage`` sum by label; the request log shows it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from crossroads import config, cost, ir, quota
from crossroads.providers import anthropic, claude_oauth, codex, openai_compatible
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.common import Scenario
from tests.fakes.oauth import FakeIdentity
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import CLIENT_KEY, RouterProcess
from tests.routing.test_quota_windows import endpoints, login

MANAGEMENT = "cost-management"
KEY = "sk-ant-cost-0000111122223333"


def test_per_token_prices_are_the_tables_or_configs_and_nothing_else() -> None:
    usage = ir.Usage(input_tokens=1_000_000 + 200_000, output_tokens=100_000, cache_read_tokens=200_000)
    sonnet = cost.price_of("claude-sonnet-4-5-20250929", {})
    assert cost.dollars(sonnet, usage) == pytest.approx(3.0 + 0.06 + 1.5)
    assert cost.price_of("some-local-model", {}) is None
    assert cost.dollars(None, usage) is None
    assert cost.dollars(sonnet, ir.Usage(output_tokens=10)) is None  # input not reported: unknown, not 0
    flash = cost.price_of("gemini-2.5-flash", {})
    assert cost.dollars(flash, ir.Usage(input_tokens=10, output_tokens=1, cache_read_tokens=5)) is None
    pro = cost.price_of("gemini-2.5-pro", {})
    assert cost.dollars(pro, ir.Usage(input_tokens=300_000, output_tokens=0)) == pytest.approx(0.75)
    overrides = cost.parse_prices({"gpt-4o-mini": {"input": 1, "output": 2}})
    assert cost.price_of("gpt-4o-mini", overrides, list_prices=False) == cost.Price(1.0, 2.0)
    assert cost.price_of("gpt-4o-mini", {}, list_prices=False) is None  # any server: its own prices
    with pytest.raises(config.ConfigError, match=r"prices\.x needs 'input'"):
        config.parse("prices: {x: {output: 1}}")


def test_labels_by_provider_and_credits_when_the_plan_is_spent() -> None:
    assert claude_oauth.PROVIDER.billing == codex.PROVIDER.billing == "subscription"
    assert anthropic.PROVIDER.billing == openai_compatible.PROVIDER.billing == "per-token"
    now = time.time()
    plan = {w.key: w for w in codex.PROVIDER.headroom({
        "x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": "600", "x-codex-credits-has-credits": "true",
        "x-codex-credits-balance": "12.5"})}
    assert cost.label("subscription", plan, now) == "credits"
    plan["five-hour"] = quota.window("five-hour", 0.4, now + 600, "header")
    assert cost.label("subscription", plan, now) == "subscription"
    assert cost.label("unknown", plan, now) == "unknown"


def test_usage_records_carry_labels_summed_in_management_and_the_cli(tmp_path: Path) -> None:
    auth_dir, logs = tmp_path / "auth", tmp_path / "logs"
    auth_dir.mkdir()
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as identity, \
            FakeClaudeOAuth(identity) as subscription, FakeAnthropic(api_keys=[KEY]) as api, \
            FakeOpenAIChat(api_keys=[KEY]) as local:
        identity.extra_token_fields = {"account": {"email_address": "max@example.com"}}
        login(auth_dir, identity, subscription, "sub")
        settings = {
            "api-keys": [CLIENT_KEY], "auth-dir": str(auth_dir), "logs-dir": str(logs),
            "remote-management": {"secret-key": MANAGEMENT},
            "oauth-endpoints": endpoints(identity, subscription.base_url),
            "usage": {"flush-interval": 0.1, "path": str(tmp_path / "usage.sqlite3")},
            "claude-api-key": [{"api-key": KEY, "base-url": api.base_url,
                                "models": [{"name": "claude-sonnet-4-5", "alias": "api-sonnet"}]}],
            "openai-compatibility": [{"name": "local", "base-url": f"{local.base_url}/v1",
                                      "api-key-entries": [{"api-key": KEY}],
                                      "models": [{"name": "llama-3", "alias": "local"},
                                                 {"name": "gpt-4o-mini", "alias": "priced"}]}],
            "prices": {"gpt-4o-mini": {"input": 0.15, "output": 0.60}},
        }
        with RouterProcess(settings) as router:
            http = urllib3.PoolManager(retries=False)
            asks = [("claude-opus-4-8", "anthropic"), ("api-sonnet", "anthropic"), ("local", "chat"),
                    ("priced", "chat")]
            api.push(Scenario(usage={"input_tokens": 1000, "output_tokens": 100, "cached_tokens": 0}))
            for model, door in asks:
                if door == "anthropic":
                    reply = http.request("POST", f"{router.base_url}/v1/messages", headers={
                        "x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-request-id": f"cost-{model}"},
                        json={"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
                else:
                    reply = http.request("POST", f"{router.base_url}/v1/chat/completions", headers={
                        "authorization": f"Bearer {CLIENT_KEY}", "x-request-id": f"cost-{model}"},
                        json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
                assert reply.status == 200, reply.data
            time.sleep(0.5)
            report = http.request("GET", f"{router.base_url}/v0/management/usage",
                                  headers={"authorization": f"Bearer {MANAGEMENT}"})
            by_cost = json.loads(report.data)["by_cost"]
            assert set(by_cost) == {"subscription", "per-token"}
            assert by_cost["subscription"]["requests"] == 1 and by_cost["subscription"]["cost_usd"] is None
            per_token = by_cost["per-token"]
            assert per_token["requests"] == 3 and per_token["unpriced_requests"] == 1  # llama-3 has no price
            expected = (1000 * 3.0 + 100 * 15.0) / 1e6  # the Anthropic key's reply, at Sonnet 4.5 list price
            assert per_token["cost_usd"] > expected  # plus the configured gpt-4o-mini price
            grouped = json.loads(http.request("GET", f"{router.base_url}/v0/management/usage?group=cost,model",
                                              headers={"authorization": f"Bearer {MANAGEMENT}"}).data)["rows"]
            sonnet = next(r for r in grouped if r["model"] == "api-sonnet")
            assert sonnet["cost"] == "per-token" and sonnet["cost_usd"] == pytest.approx(expected)
            lines = [line for line in router.log().splitlines() if "crossroads.requests" in line]
            assert any("cost-api-sonnet" in line and "cost=per-token:$" in line for line in lines)
            assert any("cost-claude-opus-4-8" in line and "cost=subscription" in line for line in lines)
            assert any("cost-local" in line and re.search(r"cost=per-token(\s|$)", line) for line in lines)  # no price
            listed = subprocess.run([sys.executable, "-m", "crossroads", "usage", "--config", str(router.config_path),
                                     "--group", "cost", "--format", "json"], capture_output=True, text=True,
                                    env={**os.environ, "COLUMNS": "200"})
            assert listed.returncode == 0, listed.stderr
            rows = {row["cost"]: row for row in json.loads(listed.stdout)}
            assert set(rows) == {"subscription", "per-token"} and rows["per-token"]["requests"] == 3
            table = subprocess.run([sys.executable, "-m", "crossroads", "usage", "--config", str(router.config_path)],
                                   capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
            assert "by cost label" in table.stdout and "subscription" in table.stdout
