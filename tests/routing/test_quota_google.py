"""Gemini API quota errors name their quota: a per-model daily quota that ran
out holds back that model on that key (and no other model), from the 429's
``QuotaFailure`` and ``RetryInfo``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai

from tests.fakes.common import Scenario
from tests.fakes.gemini import FakeGemini
from tests.harness import CLIENT_KEY, RouterProcess
from tests.routing.test_quota_windows import MANAGEMENT, management

KEYS = ("AIza-first-key-000000000000000", "AIza-second-key-00000000000000")


@pytest.fixture
def upstream() -> Iterator[FakeGemini]:
    with FakeGemini(api_keys=KEYS) as server:
        yield server


def ask(router: RouterProcess, model: str) -> str:
    client = genai.Client(api_key=CLIENT_KEY, http_options=genai.types.HttpOptions(
        base_url=router.base_url, api_version="v1beta"))
    return client.models.generate_content(model=model, contents="hello").text or ""


def keys_used(upstream: FakeGemini) -> list[str]:
    return [r.headers.get("x-goog-api-key", "") for r in upstream.requests]


def test_a_per_model_daily_quota_holds_back_only_that_model_on_that_key(upstream: FakeGemini) -> None:
    upstream.quota_violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"}, "quotaValue": "50"}
    config = {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": MANAGEMENT},
              "routing": {"strategy": "fill-first"},
              "gemini-api-key": [{"api-key": k, "base-url": upstream.base_url} for k in KEYS]}
    with RouterProcess(config) as router:
        upstream.push(Scenario.fail(429, "Resource has been exhausted (e.g. check quota).", retry_after=3600))
        assert ask(router, "gemini-2.5-pro")  # the first key's 429, then the second key answers
        assert keys_used(upstream) == [KEYS[0], KEYS[1]]
        assert ask(router, "gemini-2.5-pro") and keys_used(upstream)[-1] == KEYS[1]
        assert ask(router, "gemini-2.5-flash") and keys_used(upstream)[-1] == KEYS[0]  # other models unaffected
        [row] = [r for r in management(router, "quota")["accounts"] if r["windows"] and any(
            w["kind"] == "daily" for w in r["windows"])]
        [daily] = [w for w in row["windows"] if w["kind"] == "daily"]
        assert daily["family"] == "gemini-2.5-pro" and daily["source"] == "error" and daily["limit"] == 50
        assert daily["resets_in_seconds"] > 3500
