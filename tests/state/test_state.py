"""The State backends against a real redis-server: what one replica writes the
others see, limits hold across replicas, and an unreachable Redis degrades to
in-process state without failing anything."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from crossroads import ir
from crossroads.access.policy import Limiter, parse_key
from crossroads.routing.health import Health
from crossroads.routing.sticky import Affinity
from crossroads.state import Cooldown, Limits, MemoryState, StateUnavailable, parse_config
from crossroads.state.redis import RedisState
from crossroads.usage import Ledger
from tests.state.servers import RedisServer, free_port

_prefixes = itertools.count()


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[tuple[RedisState, RedisState]]:
    prefix = f"t{next(_prefixes)}"
    a, b = RedisState(redis_server.url, prefix), RedisState(redis_server.url, prefix)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_cooldowns_reach_other_replicas_and_late_starters(replicas: tuple[RedisState, RedisState],
                                                                redis_server: RedisServer) -> None:
    a, b = replicas
    assert a.connected and b.connected and a.replica_number != b.replica_number
    health_a, health_b = Health(state=a), Health(state=b)
    seconds = health_a.record_failure("acct1", "m", ir.Error(429, "rate_limit", "slow down", retry_after=40))
    assert seconds == 40
    await eventually(lambda: not health_b.available("acct1", "m"))
    until = health_b.cooling_until("acct1", "m")
    assert until is not None and 38 < until - time.monotonic() <= 40.5
    assert health_b.snapshot()[("acct1", "m")].reason.startswith("429 rate_limit: slow down")
    assert health_b.available("acct1", "other-model")
    health_a.record_failure("acct2", "m", ir.Error(402, "billing", "pay up"))  # credential-wide
    await eventually(lambda: not health_b.available("acct2", "any-model"))

    late = RedisState(redis_server.url, a.prefix)  # a replica started after the errors loads them
    await late.start()
    try:
        assert not Health(state=late).available("acct1", "m")
        health_b.record_success("acct1", "m")
        await eventually(lambda: health_a.available("acct1", "m") and Health(state=late).available("acct1", "m"))
        health_b.clear()
        await eventually(lambda: health_a.available("acct2", "x") and not late.cooldowns)
    finally:
        await late.close()


async def test_expired_cooldowns_end_on_every_replica(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    a.put_cooldown("acct", "m", Cooldown(time.monotonic() + 0.2, "brief"))
    await eventually(lambda: ("acct", "m") in b.cooldowns)
    assert not Health(state=b).available("acct", "m")
    await asyncio.sleep(0.25)
    assert Health(state=b).available("acct", "m")


async def test_rpm_is_exact_across_replicas_under_concurrency(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    limits = Limits(rpm=7)
    verdicts = await asyncio.gather(*(s.reserve("key-1", limits) for _ in range(15) for s in (a, b)))
    admitted = [v for v in verdicts if v is None]
    refused = [v for v in verdicts if v is not None]
    assert len(admitted) == 7
    assert {r.limit for r in refused} == {"rpm"} and all(0 < r.retry_after <= 60 for r in refused)
    assert await a.reserve("key-2", limits) is None  # windows are per key


async def test_tokens_and_budget_count_across_replicas(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    now = time.time()
    limits = Limits(tpm=100, budget_tokens=150, period_start=now - 10, period_end=now + 3600)
    assert await a.reserve("spender", limits) is None
    a.settle("spender", 120, limits)
    refusal = None
    for _ in range(200):  # settle is written in the background
        refusal = await b.reserve("spender", limits)
        if refusal is not None:
            break
        await asyncio.sleep(0.005)
    assert refusal is not None and refusal.limit == "tpm" and 55 < refusal.retry_after <= 60
    budget_only = Limits(budget_tokens=150, period_start=now - 10, period_end=now + 3600)
    assert await b.reserve("spender", budget_only) is None  # 120 of 150 used
    b.settle("spender", 40, budget_only)
    for _ in range(200):
        refusal = await a.reserve("spender", budget_only)
        if refusal is not None:
            break
        await asyncio.sleep(0.005)
    assert refusal is not None and refusal.limit == "budget" and 3500 < refusal.retry_after <= 3600
    next_period = Limits(budget_tokens=150, period_start=now + 3600, period_end=now + 7200)
    assert await a.reserve("spender", next_period) is None  # a new period starts empty


async def test_limiter_on_two_replicas_admits_rpm_in_total(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    policies = {"team": parse_key({"key": "team", "rpm": 4, "models": ["claude-*"]}, "api-keys[0]")}
    limiters = [Limiter(policies, a), Limiter(policies, b)]
    for i in range(4):
        await limiters[i % 2].acquire("team", "claude-x")
    with pytest.raises(ir.Error) as caught:
        await limiters[1].acquire("team", "claude-x")
    assert caught.value.status == 429 and "4 requests per minute" in caught.value.message
    with pytest.raises(ir.Error) as denied:
        await limiters[0].acquire("team", "gpt-5")
    assert denied.value.status == 403
    await limiters[0].acquire("someone-else", "gpt-5")  # keys without a policy are not counted


async def test_usage_totals_add_up_across_replicas(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    ledgers = [Ledger(state=a), Ledger(state=b)]
    ledgers[0].record("client-key-123456", "acct1", "m", ir.Usage(input_tokens=10, output_tokens=5,
                                                                  cache_read_tokens=3))
    ledgers[1].record("client-key-123456", "acct2", "m", ir.Usage(input_tokens=7, output_tokens=1,
                                                                  reasoning_tokens=2))
    ledgers[1].record(None, "acct2", "m", None)

    async def shared_requests() -> int:
        report = await ledgers[0].report()
        return int(report["by_model"].get("m", {}).get("requests", 0))

    for _ in range(200):
        if await shared_requests() == 3:
            break
        await asyncio.sleep(0.005)
    report = await ledgers[0].report()
    assert report["scope"] == "shared"
    assert report["by_model"]["m"] == {"requests": 3, "input_tokens": 17, "output_tokens": 6, "cached_tokens": 3,
                                       "reasoning_tokens": 2, "unreported": 1}
    assert report["by_key"]["clie…3456"]["requests"] == 2 and report["by_key"]["-"]["unreported"] == 1
    assert report["by_account"]["acct2"]["requests"] == 2
    assert "client-key-123456" not in str(report)
    assert (await ledgers[1].report())["by_model"] == report["by_model"]


async def test_affinity_is_shared_with_ttl(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    first, second = Affinity(ttl=0.3, state=a), Affinity(ttl=0.3, state=b)
    first.remember("m", "session-1", "acct7")
    assert second.get("m", "session-1") is None  # not fetched yet

    async def recalled() -> str | None:
        await second.recall("m", "session-1")
        return second.get("m", "session-1")

    for _ in range(100):
        if await recalled() == "acct7":
            break
        await asyncio.sleep(0.005)
    assert second.get("m", "session-1") == "acct7"
    await asyncio.sleep(0.35)
    assert await b.get_affinity("m", "session-1") is None


async def test_cursors_are_unique_across_replicas(replicas: tuple[RedisState, RedisState]) -> None:
    a, b = replicas
    values = await asyncio.gather(*(s.next_cursor("pool#0") for _ in range(20) for s in (a, b)))
    assert sorted(values) == list(range(1, 41))


async def test_memory_state_keeps_todays_semantics() -> None:
    state = MemoryState()
    verdicts = [await state.reserve("k", Limits(rpm=3)) for _ in range(5)]
    assert verdicts[:3] == [None, None, None] and verdicts[3] is not None and verdicts[3].limit == "rpm"
    zero = await state.reserve("z", Limits(rpm=0))
    assert zero is not None and zero.retry_after == 60
    state.add_usage("-", "acct", "m", {"requests": 1, "input_tokens": 4})
    state.add_usage("-", "acct", "m", {"requests": 1, "output_tokens": 2})
    assert (await state.usage())["by_model"]["m"] == {"requests": 2, "input_tokens": 4, "output_tokens": 2}
    assert [await state.next_cursor("c") for _ in range(3)] == [1, 2, 3]
    state.set_affinity("m", "s", "acct", 60)
    assert await state.get_affinity("m", "s") == "acct"
    report = await Ledger(state=state).report()
    assert report["scope"] == "replica"


async def test_unreachable_redis_falls_back_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    state = RedisState(f"redis://:secret-pw@127.0.0.1:{free_port()}/0", "down")
    with caplog.at_level(logging.WARNING, logger="crossroads.state"):
        await state.start()
        assert not state.connected
        limiter = Limiter({"k": parse_key({"key": "k", "rpm": 2}, "x")}, state)
        await limiter.acquire("k", "m")
        await limiter.acquire("k", "m")
        with pytest.raises(ir.Error, match="2 requests per minute"):
            await limiter.acquire("k", "m")  # still enforced, by this replica
        health = Health(state=state)
        health.record_failure("acct", "m", ir.Error(500, "server_error", "x"))
        assert not health.available("acct", "m")
        ledger = Ledger(state=state)
        ledger.record("k", "acct", "m", ir.Usage(input_tokens=1))
        report = await ledger.report()
        assert report["scope"] == "replica" and report["by_model"]["m"]["requests"] == 1
        with pytest.raises(StateUnavailable):
            await state.usage()
        assert await state.next_cursor("c") == 1
        await asyncio.sleep(1.2)  # a reconnect attempt fails quietly
    warnings = [r for r in caplog.records if r.name == "crossroads.state"]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert "secret-pw" not in warnings[0].getMessage()
    await state.close()


async def test_reconnects_and_writes_what_was_counted_meanwhile() -> None:
    server = RedisServer()
    state = RedisState(server.url, "late")
    await state.start()
    assert not state.connected
    Ledger(state=state).record("k", "acct", "m", ir.Usage(input_tokens=9))
    state.put_cooldown("acct", "m", Cooldown(time.monotonic() + 30, "learnt while down"))
    server.start()
    try:
        await eventually(lambda: state.connected, timeout=5)
        observer = RedisState(server.url, "late")
        await observer.start()
        try:
            assert ("acct", "m") in observer.cooldowns
            tables = await observer.usage()
            assert tables["by_model"]["m"]["input_tokens"] == 9
        finally:
            await observer.close()
    finally:
        await state.close()
        server.cleanup()


def test_state_config_is_validated() -> None:
    assert parse_config(None).backend == "memory"
    cfg = parse_config({"backend": "redis", "url": "redis://10.0.0.5:6380/2", "prefix": "cr"})
    assert (cfg.backend, cfg.url, cfg.prefix) == ("redis", "redis://10.0.0.5:6380/2", "cr")
    with pytest.raises(ValueError, match="backend must be one of memory, redis"):
        parse_config({"backend": "etcd"})
    with pytest.raises(ValueError, match="redis://"):
        parse_config({"backend": "redis", "url": "http://x"})
