"""Fault injection through the real router: pools, cooldowns, failover,
affinity, fallbacks, per-key policy and usage accounting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
import urllib3

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "test-key"
MANAGEMENT = "mgmt-secret"


def chat_entry(fake: FakeOpenAIChat, alias: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": KEY}],
            "models": [{"name": "gpt-4o-mini", "alias": alias}], **extra}


@pytest.fixture
def three_fakes() -> Iterator[list[FakeOpenAIChat]]:
    fakes = [FakeOpenAIChat(api_keys=[KEY]).start() for _ in range(3)]
    yield fakes
    for fake in fakes:
        fake.stop()


def generated(fake: FakeOpenAIChat) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


async def fire(base_url: str, count: int, concurrency: int, model: str = "pool",
               key: str = "anything", stream: bool = False) -> list[BaseException | str]:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with gate:
            if stream:
                text = ""
                async for chunk in await client.chat.completions.create(
                        model=model, stream=True, messages=[{"role": "user", "content": f"request {i}"}]):
                    text += "".join(c.delta.content or "" for c in chunk.choices)
                return text
            reply = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"request {i}"}])
            return reply.choices[0].message.content or ""

    try:
        return await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    finally:
        await client.close()


def test_quota_and_outage_accounts_cause_no_client_failures(three_fakes: list[FakeOpenAIChat]) -> None:
    limited, broken, healthy = three_fakes
    limited.push(*[Scenario.fail(429, "quota", retry_after=120)] * 50)
    broken.push(*[Scenario.fail(500, "boom")] * 50)
    config = {"transient-error-cooldown-seconds": 120,
              "openai-compatibility": [chat_entry(f, "pool", f"acct{i}") for i, f in enumerate(three_fakes)]}
    with RouterProcess(config) as router:
        warmup = asyncio.run(fire(router.base_url, 3, 1))
        assert all(isinstance(r, str) for r in warmup), warmup
        assert generated(limited) == 1 and generated(broken) == 1  # each failed once, then cooled
        results = asyncio.run(fire(router.base_url, 200, 16))
        failures = [r for r in results if not isinstance(r, str)]
        assert failures == []
        assert all("You said: request" in r for r in results if isinstance(r, str))
        assert generated(limited) == 1, "the 429 account was retried before its reset"
        assert generated(broken) == 1
        assert generated(healthy) == 203


def test_round_robin_is_fair_under_concurrency(three_fakes: list[FakeOpenAIChat]) -> None:
    config = {"openai-compatibility": [chat_entry(f, "pool", f"acct{i}") for i, f in enumerate(three_fakes)]}
    with RouterProcess(config) as router:
        results = asyncio.run(fire(router.base_url, 300, 30))
        assert all(isinstance(r, str) for r in results)
        counts = [generated(f) for f in three_fakes]
        assert max(counts) - min(counts) <= 1 and sum(counts) == 300, counts


def test_stream_failure_before_first_byte_fails_over_silently(three_fakes: list[FakeOpenAIChat]) -> None:
    first, second, _ = three_fakes
    first.push(Scenario(cut_after=0))
    config = {"routing": {"strategy": "fill-first"},
              "openai-compatibility": [chat_entry(first, "pool", "a"), chat_entry(second, "pool", "b")]}
    with RouterProcess(config) as router:
        results = asyncio.run(fire(router.base_url, 1, 1, stream=True))
        assert isinstance(results[0], str) and "You said: request 0" in results[0], results
        assert generated(first) == 1 and generated(second) == 1


def test_all_cooling_waits_for_the_soonest_when_short(three_fakes: list[FakeOpenAIChat]) -> None:
    fake = three_fakes[0]
    fake.push(Scenario.fail(429, "brief quota", retry_after=1))
    config = {"max-retry-interval": 5, "openai-compatibility": [chat_entry(fake, "pool", "only")]}
    with RouterProcess(config) as router:
        started = time.monotonic()
        results = asyncio.run(fire(router.base_url, 1, 1))
        assert isinstance(results[0], str), results
        assert 0.9 <= time.monotonic() - started < 5


def test_all_cooling_beyond_the_interval_is_a_clear_429(three_fakes: list[FakeOpenAIChat]) -> None:
    fake = three_fakes[0]
    fake.push(Scenario.fail(429, "long quota", retry_after=300))
    config = {"max-retry-interval": 5, "openai-compatibility": [chat_entry(fake, "pool", "only")]}
    with RouterProcess(config) as router:
        client = anthropic.Anthropic(base_url=router.base_url, api_key="x", max_retries=0)
        for _ in range(2):  # the second request does not even reach the upstream
            with pytest.raises(anthropic.RateLimitError) as caught:
                client.messages.create(model="pool", max_tokens=10, messages=[{"role": "user", "content": "x"}])
            assert "all accounts for pool are cooling down until" in caught.value.message
            assert 290 <= int(caught.value.response.headers["retry-after"]) <= 300
        assert generated(fake) == 1


def test_session_affinity_keeps_a_conversation_on_one_account() -> None:
    fakes = [FakeAnthropic(api_keys=[KEY]).start() for _ in range(3)]
    try:
        config = {"claude-api-key": [{"api-key": KEY, "base-url": f.base_url, "models": [
            {"name": "claude-sonnet-4-5", "alias": "pool"}]} for f in fakes]}
        with RouterProcess(config) as router:
            client = anthropic.Anthropic(base_url=router.base_url, api_key="x", max_retries=0)
            messages: list[Any] = [{"role": "user", "content": "let us talk"}]
            for turn in range(50):
                reply = client.messages.create(model="pool", max_tokens=64, messages=messages)
                messages += [{"role": "assistant", "content": reply.content[0].text},  # type: ignore[union-attr]
                             {"role": "user", "content": f"turn {turn}"}]
            counts = [len(f.requests) for f in fakes]
            assert sorted(counts) == [0, 0, 50], counts
            sticky = fakes[counts.index(50)]
            sticky.push(Scenario.fail(429, "slow down", retry_after=120))
            for turn in range(5):
                client.messages.create(model="pool", max_tokens=64, messages=[*messages, {
                    "role": "user", "content": f"after {turn}"}][:1] + messages[1:])
            after = [len(f.requests) for f in fakes]
            assert after[counts.index(50)] == 51  # tried once, then cooled down
            moved = [a - c for a, c in zip(after, counts, strict=True) if a - c and a != 51]
            assert moved == [5], after  # the conversation moved to one other account and stayed
    finally:
        for fake in fakes:
            fake.stop()


def test_fallback_chain_reports_what_answered(three_fakes: list[FakeOpenAIChat]) -> None:
    primary, backup, _ = three_fakes
    primary.push(*[Scenario.fail(503, "overloaded")] * 5)
    config = {"fallbacks": {"big": ["small"]}, "max-retry-interval": 0,
              "openai-compatibility": [chat_entry(primary, "big", "p"), chat_entry(backup, "small", "b")]}
    with RouterProcess(config) as router:
        client = anthropic.Anthropic(base_url=router.base_url, api_key="x", max_retries=0)
        reply = client.messages.create(model="big", max_tokens=32, messages=[{"role": "user", "content": "hi"}])
        assert reply.model == "small"
        assert generated(primary) == 1 and generated(backup) == 1


def test_client_key_policy_and_usage_accounting(three_fakes: list[FakeOpenAIChat]) -> None:
    fake = three_fakes[0]
    config = {
        "api-keys": [{"key": "limited-key", "models": ["pool"], "rpm": 3},
                     {"key": "budget-key", "budget": {"tokens": 10, "period": "day"}}, "open-key"],
        "remote-management": {"secret-key": MANAGEMENT},
        "openai-compatibility": [chat_entry(fake, "pool", "only"), chat_entry(fake, "other", "o")],
    }
    with RouterProcess(config) as router:
        client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="limited-key", max_retries=0)
        with pytest.raises(openai.PermissionDeniedError, match="may not use model 'other'"):
            client.chat.completions.create(model="other", messages=[{"role": "user", "content": "x"}])
        fake.push(Scenario(usage={"input_tokens": 11, "output_tokens": 7, "cached_tokens": 5}),
                  Scenario(usage={"input_tokens": 13, "output_tokens": 2}))
        client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "x"}])
        text = ""
        for chunk in client.chat.completions.create(model="pool", stream=True,
                                                    messages=[{"role": "user", "content": "y"}]):
            assert chunk.choices, "the usage chunk the router asked for leaked to a client that did not"
            text += chunk.choices[0].delta.content or ""
        assert "You said: y" in text
        client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "z"}])
        with pytest.raises(openai.RateLimitError, match="3 requests per minute") as limited:
            client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "w"}])
        assert limited.value.response.headers.get("retry-after")

        budget = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="budget-key", max_retries=0)
        budget.chat.completions.create(model="pool", messages=[{"role": "user", "content": "spend"}])
        with pytest.raises(openai.RateLimitError, match="budget of 10 tokens"):
            budget.chat.completions.create(model="pool", messages=[{"role": "user", "content": "more"}])

        http = urllib3.PoolManager()
        assert http.request("GET", f"{router.base_url}/v0/management/usage").status == 401
        report = http.request("GET", f"{router.base_url}/v0/management/usage",
                              headers={"authorization": f"Bearer {MANAGEMENT}"}).json()
        limited_totals = next(v for k, v in report["by_key"].items() if k.startswith("limi"))
        assert limited_totals["requests"] == 3
        assert limited_totals["input_tokens"] >= 11 + 13 and limited_totals["cached_tokens"] == 5
        assert limited_totals["output_tokens"] >= 7 + 2 and limited_totals["unreported"] == 0
        assert "limited-key" not in str(report)  # keys are masked
        assert report["by_model"]["pool"]["requests"] == 4


def test_per_upstream_timeouts(three_fakes: list[FakeOpenAIChat]) -> None:
    slow, fast, stalling = three_fakes
    slow.push(Scenario(delay=1.5))
    stalling.push(Scenario(text="one two three four five six", chunk_delay=1.5))
    config = {"routing": {"strategy": "fill-first"}, "openai-compatibility": [
        chat_entry(slow, "pool", "slow", timeouts={"first-byte": 0.5}),
        chat_entry(fast, "pool", "fast"),
        chat_entry(stalling, "stall", "stalling", timeouts={"idle": 0.5})]}
    with RouterProcess(config) as router:
        started = time.monotonic()
        results = asyncio.run(fire(router.base_url, 1, 1))
        assert isinstance(results[0], str) and time.monotonic() - started < 2.5, results
        assert generated(slow) == 1 and generated(fast) == 1
        results = asyncio.run(fire(router.base_url, 1, 1, model="stall", stream=True))
        assert isinstance(results[0], openai.APIError) and "stalled" in str(results[0]), results
