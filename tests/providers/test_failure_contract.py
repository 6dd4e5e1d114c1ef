"""The failure-classification contract (README, "Failure classification"):
one test per row, for every provider the row applies to. Each test drives
``Provider.classify`` and ``Health`` as the pipeline does; the rows that
depend on an answer's headers go through the router and a fake."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossroads import ir, quota
from crossroads.providers import all_providers, claude_oauth, codex, gemini, gemini_web
from crossroads.providers.base import REQUEST_RATE_LIMIT, Provider
from crossroads.routing.health import AUTH_COOLDOWN, MODEL_MISSING_COOLDOWN, TRANSIENT_COOLDOWN, Health
from crossroads.state.base import ALL_MODELS
from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.common import Scenario
from tests.fakes.oauth import FakeIdentity
from tests.providers.ingress import via_anthropic
from tests.routing.test_quota_windows import MODEL, login, management, messages_to, router

PROVIDERS = all_providers()
IDS = [type(p).__name__ for p in PROVIDERS]


def cooled(provider: Provider, error: ir.Error, model: str = "m") -> tuple[bool, dict[str, float], Health]:
    """(retry elsewhere?, what got cooled -> seconds, the health) for one error."""
    health = Health()
    outcome = provider.classify(error)
    health.record_failure("acct", model, error, outcome)
    now = time.monotonic()
    return outcome.retry, {m: round(cd.until - now) for (_, m), cd in health.snapshot().items()}, health


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_an_invalid_request_cools_nothing_and_is_not_retried(provider: Provider) -> None:
    assert cooled(provider, ir.Error(400, "invalid_request", "messages: field required"))[:2] == (False, {})


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("error", [
    ir.Error(413, "request_too_large", "Request exceeds the maximum size"),
    ir.Error(400, "invalid_request", "prompt is too long: 212345 tokens > 200000 maximum"),
    ir.Error(400, "invalid_request", "This model's maximum context length is 128000 tokens",
             code="context_length_exceeded"),
], ids=["413", "prompt-too-long", "context-length"])
def test_an_oversized_request_cools_nothing_and_is_not_retried(provider: Provider, error: ir.Error) -> None:
    assert cooled(provider, error)[:2] == (False, {})


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("error", [
    ir.Error(400, "invalid_request", "Your request was rejected as a result of our safety system",
             code="content_policy_violation"),
    ir.Error(403, "permission", "The response was filtered due to the prompt triggering content_filter"),
], ids=["content-policy", "content-filter"])
def test_a_content_refusal_cools_nothing_and_is_not_retried(provider: Provider, error: ir.Error) -> None:
    assert cooled(provider, error)[:2] == (False, {})


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_missing_model_cools_that_model_for_12_hours_and_moves_on(provider: Provider) -> None:
    assert cooled(provider, ir.Error(404, "not_found", "model: gpt-9"))[:2] == (
        True, {"m": MODEL_MISSING_COOLDOWN})


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_rate_limit_cools_that_model_until_retry_after_else_backs_off(provider: Provider) -> None:
    assert cooled(provider, ir.Error(429, "rate_limit", "slow down", retry_after=37))[:2] == (True, {"m": 37})
    health = Health()
    error = ir.Error(429, "rate_limit", "slow down")
    lengths = [health.record_failure("acct", "m", error, provider.classify(error)) for _ in range(3)]
    assert lengths == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_429_without_any_quota_signal_is_only_this_request(provider: Provider) -> None:
    """The pipeline marks it (for upstreams that signal on every answer, see the end-to-end test below)."""
    error = ir.Error(429, "rate_limit", "Too many requests", code=REQUEST_RATE_LIMIT)
    assert cooled(provider, error)[:2] == (True, {})


@pytest.fixture
def claude_upstream() -> Iterator[tuple[FakeIdentity, FakeClaudeOAuth]]:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as identity, \
            FakeClaudeOAuth(identity) as upstream:
        identity.extra_token_fields = {"account": {"email_address": "max@example.com"}}
        yield identity, upstream


def test_a_429_without_quota_headers_through_the_router_cools_nothing(
        tmp_path: Path, claude_upstream: tuple[FakeIdentity, FakeClaudeOAuth]) -> None:
    identity, upstream = claude_upstream
    login(tmp_path, identity, upstream, "only")
    with router(tmp_path, identity, upstream.base_url, **{"quota-probe": False}) as process:
        windows = dict(upstream.windows)
        upstream.windows.clear()  # this 429 carries no unified headers and no Retry-After
        upstream.push(Scenario.fail(429, "Number of concurrent connections has exceeded your rate limit",
                                    type="rate_limit_error"))
        with pytest.raises(Exception, match=r"429|rate"):
            via_anthropic(process, MODEL, "burst")
        assert management(process, "cooldowns")["cooldowns"] == []
        upstream.windows.update(windows)
        assert via_anthropic(process, MODEL, "next").endswith("You said: next")  # at once, no cooldown
        # the same 429 with the window headers and a Retry-After: the account's limit
        upstream.push(Scenario.fail(429, "rate limited", type="rate_limit_error", retry_after=600))
        with pytest.raises(Exception, match=r"429|rate|cooling"):
            via_anthropic(process, MODEL, "quota")
        assert [row["model"] for row in management(process, "cooldowns")["cooldowns"]] == [MODEL]
        assert messages_to(upstream) == 3


def test_a_model_family_cap_holds_back_only_that_family() -> None:
    reset = time.time() + 3 * 86400
    windows = claude_oauth.PROVIDER.headroom({
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": "seven_day_opus",
        "anthropic-ratelimit-unified-reset": str(int(reset))})
    health = Health()
    health.observe("acct", windows)
    assert health.assess("acct", "claude-opus-4-5", None).blocked_until == int(reset)
    assert health.assess("acct", "claude-sonnet-4-5", None).blocked_until is None


@pytest.mark.parametrize("provider,error", [
    (codex.PROVIDER, ir.Error(429, "rate_limit", "The usage limit has been reached", code="usage_limit_reached")),
    (codex.PROVIDER, ir.Error(403, "permission", "usage_not_included for this plan")),
    (gemini.PROVIDER, ir.Error(429, "rate_limit", "Quota exceeded for quota metric 'Generate Content'")),
], ids=["codex-usage-limit", "codex-not-included", "gemini-quota-metric"])
def test_a_providers_own_quota_markers_cool_the_whole_credential(provider: Provider, error: ir.Error) -> None:
    retry, cooling, _ = cooled(provider, error)
    assert retry and set(cooling) == {ALL_MODELS}


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("error", [
    ir.Error(402, "permission", "Payment required"),
    ir.Error(429, "rate_limit", "You exceeded your current quota, please check your plan and billing details",
             code="insufficient_quota"),
    ir.Error(400, "invalid_request", "Your credit balance is too low to access the Anthropic API"),
], ids=["402", "insufficient-quota", "credit-balance"])
def test_out_of_paid_credits_cools_the_credential_and_shows_a_spent_credits_window(
        provider: Provider, error: ir.Error) -> None:
    retry, cooling, health = cooled(provider, error)
    assert retry and cooling == {ALL_MODELS: AUTH_COOLDOWN}
    assert health.quotas["acct"]["credits"].used == 1.0 and health.quotas["acct"]["credits"].source == "error"


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_credential_refused_after_its_refresh_cools_every_model(provider: Provider) -> None:
    outcome = provider.classify(ir.Error(401, "authentication", "invalid x-api-key"))
    assert outcome.scope == "credential" and not outcome.needs_login
    assert cooled(provider, ir.Error(401, "authentication", "invalid x-api-key"))[1] == {ALL_MODELS: AUTH_COOLDOWN}


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("error", [
    ir.Error(401, "authentication", "the refresh token was refused", code="needs_login"),
    ir.Error(401, "authentication", "OAuth token has been revoked"),
    ir.Error(403, "permission", "This organization has been disabled; account has been disabled"),
], ids=["invalid-grant", "revoked", "disabled"])
def test_a_credential_that_needs_a_new_login_cools_every_model(provider: Provider, error: ir.Error) -> None:
    outcome = provider.classify(error)
    assert outcome.retry and outcome.scope == "credential" and outcome.needs_login


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_a_refused_permission_cools_that_model(provider: Provider) -> None:
    assert cooled(provider, ir.Error(403, "permission", "model not enabled for this project"))[:2] == (
        True, {"m": AUTH_COOLDOWN})


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("status", [408, 502, 503, 504, 529])
def test_outages_and_timeouts_cool_that_model_briefly(provider: Provider, status: int) -> None:
    assert cooled(provider, ir.Error(status, "server_error", "upstream unavailable"))[:2] == (
        True, {"m": TRANSIENT_COOLDOWN})


def test_gemini_web_usage_limit_and_blocked_ip() -> None:
    limit = ir.Error(429, "rate_limit", "usage limit (1037)", retry_after=3600, code="usage_limit")
    assert cooled(gemini_web.PROVIDER, limit)[:2] == (True, {"m": 3600})
    blocked = ir.Error(403, "permission", "IP blocked (1060)", retry_after=6 * 3600, code="ip_blocked")
    assert cooled(gemini_web.PROVIDER, blocked)[:2] == (True, {ALL_MODELS: 6 * 3600})


def test_a_side_services_own_state_cools_nothing() -> None:
    from crossroads.providers import side_services
    from crossroads.providers.side_service import _OWN_ERRORS

    for code in _OWN_ERRORS:
        assert cooled(side_services.PROVIDER, ir.Error(503, "overloaded", "down", code=code))[:2] == (True, {})


def test_a_quota_error_naming_its_reset_holds_the_account_until_then() -> None:
    body = b'{"error": {"type": "usage_limit_reached", "resets_in_seconds": 7200}}'
    health = Health()
    health.observe("acct", codex.PROVIDER.error_windows(429, body))
    blocked = health.assess("acct", "gpt-5.1-codex", None).blocked_until
    assert blocked is not None and blocked == pytest.approx(time.time() + 7200, abs=2)
    assert health.assess("other", "gpt-5.1-codex", None) == quota.CLEAR
