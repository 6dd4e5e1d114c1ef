"""Selection cost vs pool size: picking an account must not grow with the
number of accounts. Prints ns per pick for 10 ... 10,000 accounts and the
ratio to the 10-account pool, per strategy, with a few accounts cooling down
(and, for "+ windows", every account with 5-hour and weekly quota windows, a
few of them exhausted or past pause-at, the soonest reset preferred).

    python bench/selection.py
"""

from __future__ import annotations

import time

from crossroads import config, ir, quota
from crossroads.routing.health import Health
from crossroads.routing.registry import Registry
from crossroads.routing.selection import FillFirst, RoundRobin, Selector, Strategy, WeightedRoundRobin
from crossroads.routing.sticky import Affinity
from crossroads.snapshot import preview

SIZES = (10, 100, 1_000, 10_000)
PICKS = 20_000


def registry_of(size: int) -> Registry:
    keys = "\n".join(f"      - api-key: k{i}" for i in range(size))
    text = f"""
openai-compatibility:
  - name: pool
    base-url: http://127.0.0.1:9/v1
    api-key-entries:
{keys}
    models: [{{name: up, alias: m}}]
"""
    return preview(config.parse(text)).registry


def ns_per_pick(size: int, strategy: Strategy, sticky: bool, windows: bool = False) -> float:
    registry = registry_of(size)
    pool = registry.pool("m")
    assert pool is not None
    health = Health()
    for cand in pool.candidates[:3]:  # a few accounts cooling, as in real life
        health.record_failure(cand.account.id, "up", ir.Error(429, "rate_limit", "x", retry_after=600))
    if windows:
        now = time.time()
        for i, cand in enumerate(pool.candidates):
            health.observe(cand.account.id, [
                quota.window("five-hour", 0.97 if i % 50 == 7 else (i % 10) / 10, now + 600 + i, "header"),
                quota.window("weekly", 1.0 if i % 50 == 3 else 0.2, now + 86400, "usage-endpoint")])
    affinity = Affinity() if sticky else None
    selector = Selector(health, strategy, affinity)
    if affinity is not None:
        affinity.remember("m", "s", pool.candidates[size // 2].account.id)
    session = "s" if sticky else None
    start = time.perf_counter_ns()
    for _ in range(PICKS):
        next(selector.candidates(pool, session))
    return (time.perf_counter_ns() - start) / PICKS


def main() -> None:
    print(f"{'strategy':<24}" + "".join(f"{n:>12,}" for n in SIZES) + "   ratio 10k/10")
    for name, factory, sticky, windows in (
            ("round-robin", RoundRobin, False, False), ("fill-first", FillFirst, False, False),
            ("weighted-round-robin", WeightedRoundRobin, False, False),
            ("round-robin + affinity", RoundRobin, True, False), ("round-robin + windows", RoundRobin, False, True),
            ("fill-first + windows", FillFirst, False, True)):
        costs = [ns_per_pick(n, factory(), sticky, windows) for n in SIZES]
        print(f"{name:<24}" + "".join(f"{c:>10.0f}ns" for c in costs) + f"   {costs[-1] / costs[0]:>8.2f}x")


if __name__ == "__main__":
    main()
