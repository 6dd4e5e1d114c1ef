"""The quota model: each provider's signals read into windows, how routing
assesses them, and selection by them (soonest reset, pause-at, pinned keys)."""

from __future__ import annotations

import time

import orjson
import pytest

from crossroads import config, ir, quota
from crossroads.access.policy import parse_key
from crossroads.providers import anthropic, claude_oauth, codex, openai_compatible
from crossroads.routing.health import Health
from crossroads.routing.registry import Registry
from crossroads.routing.selection import QuotaRules, RoundRobin, Selector
from crossroads.snapshot import preview
from crossroads.state import MemoryState

POOL = """
openai-compatibility:
  - name: a
    base-url: http://127.0.0.1:1/v1
    api-key-entries: [{api-key: k1}, {api-key: k2}, {api-key: k3}, {api-key: k4, pause-at: 50%}]
    models: [{name: m-up, alias: m}]
"""


def registry() -> Registry:
    return preview(config.parse(POOL)).registry


def ids(reg: Registry) -> dict[str, str]:
    pool = reg.pool("m")
    assert pool is not None
    return {c.account.secret: c.account.id for c in pool.candidates}


def order(selector: Selector, reg: Registry, **kwargs: object) -> list[str]:
    pool = reg.pool("m")
    assert pool is not None
    return [c.account.secret for c in selector.candidates(pool, **kwargs)]  # type: ignore[arg-type]


def test_claude_unified_headers_become_windows() -> None:
    reset = int(time.time()) + 3600
    windows = {w.key: w for w in claude_oauth.PROVIDER.headroom({
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": "seven_day_opus",
        "anthropic-ratelimit-unified-reset": str(reset + 100),
        "anthropic-ratelimit-unified-5h-utilization": "0.42", "anthropic-ratelimit-unified-5h-reset": str(reset),
        "anthropic-ratelimit-unified-7d-utilization": "0.8", "anthropic-ratelimit-unified-7d-reset": str(reset)})}
    assert windows["five-hour"].used == pytest.approx(0.42) and windows["five-hour"].resets_at == reset
    assert windows["weekly"].used == pytest.approx(0.8)
    opus = windows["weekly-family:opus"]
    assert opus.used == 1.0 and opus.resets_at == reset + 100 and opus.family == "opus"
    assert opus.applies_to("claude-opus-4-5") and not opus.applies_to("claude-sonnet-4-5")


def test_anthropic_api_key_headers_are_per_minute_windows() -> None:
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30))
    windows = {w.key: w for w in anthropic.PROVIDER.headroom({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "5",
        "anthropic-ratelimit-requests-reset": reset, "anthropic-ratelimit-tokens-limit": "1000",
        "anthropic-ratelimit-tokens-remaining": "900", "anthropic-ratelimit-tokens-reset": reset})}
    assert windows["requests-per-minute"].used == pytest.approx(0.9)
    assert windows["requests-per-minute"].resets_at == pytest.approx(time.time() + 30, abs=2)
    assert windows["tokens-per-minute"].used == pytest.approx(0.1) and windows["tokens-per-minute"].limit == 1000


def test_claude_usage_endpoint_body_becomes_windows() -> None:
    windows = {w.key: w for w in claude_oauth.usage_windows({
        "five_hour": {"utilization": 37.0, "resets_at": "2030-01-01T10:00:00+00:00"},
        "seven_day": {"utilization": 12.5, "resets_at": "2030-01-05T00:00:00Z"},
        "seven_day_opus": {"utilization": 100.0, "resets_at": "2030-01-05T00:00:00Z"},
        "seven_day_oauth_apps": None, "extra_usage": {"is_enabled": False}})}
    assert set(windows) == {"five-hour", "weekly", "weekly-family:opus"}
    assert windows["five-hour"].used == pytest.approx(0.37) and windows["five-hour"].source == "usage-endpoint"
    assert windows["weekly-family:opus"].used == 1.0


def test_codex_headers_body_and_errors_become_windows() -> None:
    now = time.time()
    windows = {w.key: w for w in codex.PROVIDER.headroom({
        "x-codex-primary-used-percent": "12", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(int(now + 600)), "x-codex-secondary-used-percent": "77",
        "x-codex-secondary-window-minutes": "10080", "x-codex-secondary-reset-after-seconds": "86400",
        "x-codex-credits-has-credits": "false", "x-codex-credits-balance": "0"})}
    assert windows["five-hour"].used == pytest.approx(0.12) and windows["five-hour"].resets_at == int(now + 600)
    assert windows["weekly"].used == pytest.approx(0.77)
    assert windows["weekly"].resets_at == pytest.approx(now + 86400, abs=2)
    assert windows["credits"].used == 1.0
    [monthly] = codex.usage_windows({"rate_limit": {"primary_window": {
        "used_percent": 50, "limit_window_seconds": 30 * 86400, "reset_after_seconds": 100}}})
    assert monthly.kind == "monthly" and monthly.used == 0.5  # some plans have only a monthly window
    body = orjson.dumps({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                   "resets_in_seconds": 3 * 86400}})
    [spent] = codex.PROVIDER.error_windows(429, body)
    assert (spent.kind, spent.used, spent.source) == ("weekly", 1.0, "error")
    assert spent.resets_at == pytest.approx(now + 3 * 86400, abs=2)
    assert codex.PROVIDER.error_windows(429, b'{"error": {"message": "slow down"}}') == []
    assert codex.PROVIDER.error_windows(500, body) == []


def test_unreadable_signals_stay_unknown() -> None:
    assert claude_oauth.PROVIDER.headroom({"anthropic-ratelimit-unified-5h-utilization": "lots"}) == []
    assert codex.PROVIDER.headroom({"x-codex-primary-used-percent": ""}) == []
    assert openai_compatible.PROVIDER.headroom({"x-ratelimit-limit-requests": "0",
                                                "x-ratelimit-remaining-requests": "0"}) == []
    assert claude_oauth.usage_windows({"five_hour": {"resets_at": "soon"}}) == []
    assert quota.from_wire({"k": "weekly"}) is None


def test_assessment_exhausted_paused_low_and_reset() -> None:
    now = time.time()
    spent = {"weekly": quota.window("weekly", 1.0, now + 60, "header", now=now)}
    assert quota.assess(spent, "m", None, now).blocked_until == now + 60
    assert quota.assess(spent, "m", None, now + 61) is quota.CLEAR  # reset since: says nothing any more
    near = {"five-hour": quota.window("five-hour", 0.95, now + 60, "header", now=now)}
    assert quota.assess(near, "m", None, now).low and quota.assess(near, "m", None, now).blocked_until is None
    assert quota.assess(near, "m", 0.9, now).blocked_until == now + 60  # pause-at 90 %
    burst = {"requests-per-minute": quota.window("requests-per-minute", 0.92, now + 5, "header", now=now)}
    assert quota.assess(burst, "m", 0.9, now).blocked_until is None  # pause-at is for a plan's windows
    assert quota.fraction("90%", "x") == 0.9 and quota.fraction(0.5, "x") == 0.5 and quota.fraction(80, "x") == 0.8
    with pytest.raises(ValueError, match="between"):
        quota.fraction("150%", "x")


def test_selection_prefers_the_soonest_reset_and_skips_blocked_and_paused() -> None:
    reg = registry()
    by_secret = ids(reg)
    health = Health()
    selector = Selector(health, RoundRobin())
    now = time.time()
    health.observe(by_secret["k1"], [quota.window("five-hour", 0.3, now + 4 * 3600, "header")])
    health.observe(by_secret["k2"], [quota.window("five-hour", 0.3, now + 600, "header")])  # expires first
    health.observe(by_secret["k3"], [quota.window("weekly", 1.0, now + 3600, "usage-endpoint")])
    health.observe(by_secret["k4"], [quota.window("five-hour", 0.6, now + 60, "header")])  # past its own 50 %
    for _ in range(3):
        assert order(selector, reg) == ["k2", "k1"]
    selector.rules = QuotaRules(prefer_soonest_reset=False)
    assert sorted(order(selector, reg)) == ["k1", "k2"]
    selector.rules = QuotaRules(pause_at=(("m-*", 0.25),))
    assert order(selector, reg) == []  # every plan window is past the pool's 25 %
    pool = reg.pool("m")
    assert pool is not None
    recovery = selector.soonest_recovery(pool)
    assert recovery is not None and recovery - time.monotonic() == pytest.approx(60, abs=2)


def test_a_key_pinned_to_accounts_uses_only_them() -> None:
    reg = registry()
    selector = Selector(Health(), RoundRobin())
    policy = parse_key({"key": "team", "accounts": ["a#1", "nobody"]}, "api-keys[0]")
    pool = reg.pool("m")
    assert pool is not None
    labels = {c.account.secret: c.account.label for c in pool.candidates}
    assert policy.accounts and policy.may_use("x", labels["k2"]) and not policy.may_use("y", labels["k1"])
    assert order(selector, reg, allowed=policy.may_use) == ["k2"]
    with pytest.raises(ValueError, match="accounts"):
        parse_key({"key": "k", "accounts": "a"}, "api-keys[0]")


def test_memory_state_keeps_the_later_observation_of_each_window() -> None:
    state = MemoryState()
    now = time.time()
    state.put_quota("a", [quota.window("weekly", 0.5, now + 10, "usage-endpoint", now=now)])
    state.put_quota("a", [quota.window("weekly", 0.2, now + 10, "header", now=now - 5)])  # older: ignored
    state.put_quota("a", [quota.window("five-hour", 0.1, now + 10, "header", now=now)])
    assert state.quotas["a"]["weekly"].used == 0.5 and set(state.quotas["a"]) == {"weekly", "five-hour"}
    rows = quota.describe(state.quotas["a"], now)
    assert [r["kind"] for r in rows] == ["five-hour", "weekly"] and rows[1]["bar"].endswith("50%")


def test_google_quota_failures_become_windows_scoped_to_their_model() -> None:
    from crossroads.providers import gemini

    body = orjson.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
             "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
             "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"}, "quotaValue": "50"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}})
    [daily] = gemini.PROVIDER.error_windows(429, body)
    assert (daily.kind, daily.used, daily.family, daily.limit, daily.source) == (
        "daily", 1.0, "gemini-2.5-pro", 50.0, "error")
    assert daily.resets_at == pytest.approx(time.time() + 37, abs=2)
    assert quota.assess({daily.key: daily}, "gemini-2.5-pro", None, time.time()).blocked_until is not None
    assert quota.assess({daily.key: daily}, "gemini-2.5-flash", None, time.time()) is quota.CLEAR
    assert gemini.PROVIDER.error_windows(429, b'{"error": {"code": 429}}') == []


def test_an_account_with_a_spent_window_is_never_probed_after_an_outage() -> None:
    reg = registry()
    by_secret = ids(reg)
    health = Health()
    selector = Selector(health, RoundRobin())
    pool = reg.pool("m")
    assert pool is not None
    outage = ir.Error(503, "overloaded", "down")
    for secret in ("k1", "k2"):
        health.record_failure(by_secret[secret], "m-up", outage)
    health.observe(by_secret["k1"], [quota.window("weekly", 1.0, time.time() + 3600, "header")])
    probe = selector.soonest_transient(pool)
    assert probe is not None and probe.account.secret == "k2"
