from __future__ import annotations

import time
from collections import Counter

import pytest

from crossroads import config, ir, quota
from crossroads.access import KeyCheck
from crossroads.access.policy import Limiter, parse_key
from crossroads.http import Request
from crossroads.providers import anthropic, claude_oauth, codex, gemini, openai_compatible
from crossroads.routing.health import Health
from crossroads.routing.registry import Registry
from crossroads.routing.selection import FillFirst, RoundRobin, Selector, WeightedRoundRobin
from crossroads.routing.sticky import Affinity, session_key
from crossroads.snapshot import preview


def _request(headers: dict[str, str] | None = None, query: bytes = b"") -> Request:
    return Request("POST", "/v1/messages", query, headers or {})


def test_key_accepted_from_every_documented_place() -> None:
    check = KeyCheck(["secret"])
    assert check.allows(_request({"authorization": "Bearer secret"}))
    assert check.allows(_request({"x-api-key": "secret"}))
    assert check.allows(_request({"x-goog-api-key": "secret"}))
    assert check.allows(_request(query=b"key=secret"))
    assert not check.allows(_request({"authorization": "Bearer wrong"}))
    assert not check.allows(_request())
    assert KeyCheck([]).allows(_request())


def _registry(entries: str) -> Registry:
    return preview(config.parse(entries)).registry


POOL = """
openai-compatibility:
  - name: a
    base-url: http://127.0.0.1:1/v1
    api-key-entries: [{api-key: k1}, {api-key: k2}, {api-key: k3}]
    models: [{name: m-up, alias: m}]
"""


def _first(selector: Selector, registry: Registry, model: str = "m", session: str | None = None) -> str:
    pool = registry.pool(model)
    assert pool is not None
    return next(selector.candidates(pool, session)).account.secret


def test_round_robin_rotates_and_skips_cooling_accounts() -> None:
    registry = _registry(POOL)
    health = Health()
    selector = Selector(health, RoundRobin())
    assert [_first(selector, registry) for _ in range(6)] == ["k1", "k2", "k3", "k1", "k2", "k3"]
    pool = registry.pool("m")
    assert pool is not None
    k2 = pool.candidates[1].account
    health.record_failure(k2.id, "m-up", ir.Error(429, "rate_limit", "slow down", retry_after=60))
    assert [c.account.secret for c in selector.candidates(pool)] in (["k1", "k3"], ["k3", "k1"])
    assert selector.soonest_recovery(pool) is not None


def test_fill_first_sticks_to_the_first_until_it_fails() -> None:
    registry = _registry(POOL)
    health = Health()
    selector = Selector(health, FillFirst())
    assert {_first(selector, registry) for _ in range(5)} == {"k1"}
    pool = registry.pool("m")
    assert pool is not None
    health.record_failure(pool.candidates[0].account.id, "m-up", ir.Error(503, "overloaded", "x"))
    assert _first(selector, registry) == "k2"


def test_priority_tiers_use_the_highest_available_tier() -> None:
    registry = _registry("""
claude-api-key:
  - {api-key: low, priority: 0, models: [m]}
  - {api-key: high-a, priority: 10, models: [m]}
  - {api-key: high-b, priority: 10, models: [m]}
""")
    health = Health()
    selector = Selector(health, RoundRobin())
    assert {_first(selector, registry) for _ in range(4)} == {"high-a", "high-b"}
    pool = registry.pool("m")
    assert pool is not None
    for cand in pool.tiers[0]:
        health.record_failure(cand.account.id, "m", ir.Error(500, "server_error", "x"))
    assert _first(selector, registry) == "low"


def test_smooth_weighted_round_robin_is_proportional_and_interleaved() -> None:
    registry = _registry("""
claude-api-key:
  - {api-key: a, weight: 5, models: [m]}
  - {api-key: b, weight: 1, models: [m]}
  - {api-key: c, weight: 1, models: [m]}
  - {api-key: zero, weight: 0, models: [m]}
""")
    selector = Selector(Health(), WeightedRoundRobin())
    picks = [_first(selector, registry) for _ in range(70)]
    assert Counter(picks) == {"a": 50, "b": 10, "c": 10}
    # smooth: never more than 5 'a' in a row
    longest = max(len(run) for run in "".join(picks).replace("b", " ").replace("c", " ").split())
    assert longest <= 5


def test_session_affinity_sticks_and_fails_over() -> None:
    registry = _registry(POOL)
    health = Health()
    affinity = Affinity(ttl=60)
    selector = Selector(health, RoundRobin(), affinity)
    pool = registry.pool("m")
    assert pool is not None
    chosen = next(selector.candidates(pool, "s1")).account
    affinity.remember("m", "s1", chosen.id)
    assert {_first(selector, registry, session="s1") for _ in range(10)} == {chosen.secret}
    health.record_failure(chosen.id, "m-up", ir.Error(429, "rate_limit", "x", retry_after=30))
    assert _first(selector, registry, session="s1") != chosen.secret


def test_session_key_sources_in_order() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    assert session_key({"x-claude-code-session-id": "abc"}, body) == "h:abc"
    assert session_key({}, {**body, "prompt_cache_key": "pk"}) == "p:pk"
    assert session_key({}, {**body, "metadata": {"user_id": "u"}}) == "u:u"
    later_turn = {"model": "m", "messages": [*body["messages"], {"role": "assistant", "content": "hi"},
                                             {"role": "user", "content": "more"}]}
    assert session_key({}, body) == session_key({}, later_turn)  # same opening, same conversation
    other = {"model": "m", "messages": [{"role": "user", "content": "different"}]}
    assert session_key({}, body) != session_key({}, other)


def test_cooldown_lengths_follow_the_cause() -> None:
    health = Health()
    assert health.record_failure("a", "m", ir.Error(429, "rate_limit", "x", retry_after=7)) == 7
    assert health.record_failure("b", "m", ir.Error(429, "rate_limit", "x")) == 1
    assert health.record_failure("b", "m", ir.Error(429, "rate_limit", "x")) == 2
    assert health.record_failure("c", "m", ir.Error(401, "authentication", "x")) == 1800
    assert health.record_failure("d", "m", ir.Error(503, "overloaded", "x")) == 10
    assert health.record_failure("e", "m", ir.Error(404, "not_found", "x")) == 12 * 3600
    assert health.cooling_until("a", "other-model") is None
    assert health.cooling_until("e", "other-model") is None  # a missing model is that model only
    health.record_success("a", "m")
    assert health.cooling_until("a", "m") is None


def test_credential_wide_quota_marks_every_model() -> None:
    health = Health()
    spent = ir.Error(429, "rate_limit", "The usage_limit_reached for plan", retry_after=60)
    health.record_failure("acct", "m1", spent, codex.PROVIDER.classify(spent))
    assert health.cooling_until("acct", "m2") is not None
    # the same words from an upstream that does not use them for its plan limit cool one model
    health.record_failure("other", "m1", spent, openai_compatible.PROVIDER.classify(spent))
    assert health.cooling_until("other", "m1") is not None and health.cooling_until("other", "m2") is None
    billing = ir.Error(402, "payment_required", "add credits")
    health.record_failure("third", "m1", billing, openai_compatible.PROVIDER.classify(billing))
    assert health.cooling_until("third", "m2") is not None


def test_errors_the_client_caused_cool_nothing() -> None:
    health = Health()
    invalid = ir.Error(400, "invalid_request", "bad field")
    outcome = anthropic.PROVIDER.classify(invalid)
    assert not outcome.retry
    assert health.record_failure("acct", "m1", invalid, outcome) == 0.0
    assert health.cooling_until("acct", "m1") is None


def test_headroom_from_headers() -> None:
    openai_headers = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "3",
                      "x-ratelimit-reset-requests": "6m0s"}
    assert openai_compatible.PROVIDER.headroom({}) == []
    [window] = openai_compatible.PROVIDER.headroom(openai_headers)
    assert window.kind == "requests-per-minute" and window.used == pytest.approx(0.97)
    assert window.resets_at == pytest.approx(time.time() + 360, abs=2) and window.limit == 100
    assert gemini.PROVIDER.headroom(openai_headers) == []  # not a header family Gemini sends
    [window] = claude_oauth.PROVIDER.headroom({"anthropic-ratelimit-unified-5h-utilization": "0.99"})
    assert (window.kind, window.used, window.source) == ("five-hour", pytest.approx(0.99), "header")
    [window] = codex.PROVIDER.headroom({"x-codex-primary-used-percent": "40",
                                        "x-codex-primary-reset-after-seconds": "100"})
    assert window.kind == "five-hour" and window.used == pytest.approx(0.4)
    assert window.resets_at == pytest.approx(time.time() + 100, abs=2)


def test_accounts_short_of_headroom_are_avoided() -> None:
    registry = _registry(POOL)
    health = Health()
    selector = Selector(health, FillFirst())
    pool = registry.pool("m")
    assert pool is not None
    health.observe(pool.candidates[0].account.id, [quota.window("requests-per-minute", 0.99, time.time() + 60,
                                                                "header")])
    assert _first(selector, registry) == "k2"
    assert [c.account.secret for c in selector.candidates(pool)] == ["k2", "k3", "k1"]


def test_key_policy_models_rpm_and_budget() -> None:
    limiter = Limiter({"k": parse_key({"key": "k", "models": ["claude-*"], "rpm": 2,
                                       "budget": {"tokens": 100, "period": "day"}}, "api-keys[0]")})
    with pytest.raises(ir.Error) as denied:
        limiter.admit("k", "gpt-5")
    assert denied.value.status == 403
    limiter.admit("k", "claude-x")
    limiter.admit("k", "claude-x")
    with pytest.raises(ir.Error) as limited:
        limiter.admit("k", "claude-x")
    assert limited.value.status == 429 and limited.value.retry_after
    spend = Limiter({"k": parse_key({"key": "k", "budget": {"tokens": 100}}, "x")})
    spend.admit("k", "m")
    spend.settle("k", ir.Usage(input_tokens=80, output_tokens=30))
    with pytest.raises(ir.Error, match="budget of 100 tokens"):
        spend.admit("k", "m")
    limiter.admit("someone-else", "gpt-5")  # unlimited keys pass


def test_weighted_round_robin_on_large_tiers_keeps_proportions() -> None:
    entries = "\n".join(f"  - {{api-key: k{i}, weight: {3 if i < 10 else 1}, models: [m]}}" for i in range(80))
    registry = _registry(f"claude-api-key:\n{entries}\n")
    selector = Selector(Health(), WeightedRoundRobin())
    picks = Counter(_first(selector, registry) for _ in range(100 * 10))  # 10 rounds of total weight 100
    assert all(picks[f"k{i}"] == 30 for i in range(10)), picks
    assert all(picks[f"k{i}"] == 10 for i in range(10, 80)), picks
