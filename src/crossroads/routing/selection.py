"""Choosing accounts from a pool: strategies, priority tiers, affinity, headroom.

``Selector.candidates`` is a generator: the first (usually only) candidate
costs O(1) amortised whatever the pool size (O(log n) for weighted), and
further candidates are produced only when the pipeline fails over.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from itertools import count
from typing import Protocol

from crossroads.routing.health import Health
from crossroads.routing.registry import Candidate, Pool
from crossroads.routing.sticky import Affinity

HEADROOM_LOOKAHEAD = 8  # how far to look for an account with rate-limit headroom


class Strategy(Protocol):
    def order(self, key: str, tier: list[Candidate]) -> Iterator[Candidate]: ...


class RoundRobin:
    """A cursor per pool tier; each request starts one further along.

    The cursors are this replica's: sharing one (an INCR per pick) would put
    the network on every request. Each replica is fair on its own, so all of
    them together are fair within one pick per replica; ``start_at`` (the
    replica's number) makes replicas begin at different accounts."""

    def __init__(self, start_at: Callable[[], int] | None = None) -> None:
        self._cursors: dict[str, count[int]] = {}
        self._start_at = start_at

    def order(self, key: str, tier: list[Candidate]) -> Iterator[Candidate]:
        n = len(tier)
        cursor = self._cursors.get(key)
        if cursor is None:
            cursor = self._cursors[key] = count(self._start_at() if self._start_at is not None else 0)
        start = next(cursor) % n
        for i in range(n):
            yield tier[(start + i) % n]


class FillFirst:
    """Always the first available account; the next only when it is unavailable."""

    def order(self, key: str, tier: list[Candidate]) -> Iterator[Candidate]:
        yield from tier


class WeightedRoundRobin:
    """Smooth weighted round robin. Up to ``SMALL_TIER`` accounts it works as
    nginx does (every pick adds each weight to its score, takes the highest
    and subtracts the total), so 5:1:1 gives a a b a c a a. Larger tiers use
    stride scheduling on a heap (each account advances by total/weight when
    picked; the lowest position goes next): the same proportions in
    O(log n) per pick. Accounts with weight <= 0 are never picked."""

    SMALL_TIER = 64
    _SCALE = 1 << 40

    def __init__(self) -> None:
        self._scores: dict[str, list[int]] = {}
        self._heaps: dict[str, list[tuple[int, int]]] = {}

    def order(self, key: str, tier: list[Candidate]) -> Iterator[Candidate]:
        best = self._pick_small(key, tier) if len(tier) <= self.SMALL_TIER else self._pick_large(key, tier)
        if best < 0:
            return
        yield tier[best]
        n = len(tier)
        for i in range(1, n):  # failover: the rest in order
            cand = tier[(best + i) % n]
            if cand.account.weight > 0:
                yield cand

    def _pick_small(self, key: str, tier: list[Candidate]) -> int:
        scores = self._scores.get(key)
        if scores is None or len(scores) != len(tier):
            scores = self._scores[key] = [0] * len(tier)
        best = -1
        total = 0
        for i, cand in enumerate(tier):
            weight = cand.account.weight
            if weight <= 0:
                continue
            total += weight
            scores[i] += weight
            if best < 0 or scores[i] > scores[best]:
                best = i
        if best >= 0:
            scores[best] -= total
        return best

    def _pick_large(self, key: str, tier: list[Candidate]) -> int:
        heap = self._heaps.get(key)
        if heap is None:
            heap = [(self._SCALE // c.account.weight // 2, i) for i, c in enumerate(tier) if c.account.weight > 0]
            heapq.heapify(heap)
            self._heaps[key] = heap
        if not heap:
            return -1
        position, index = heap[0]
        heapq.heapreplace(heap, (position + self._SCALE // tier[index].account.weight, index))
        return index


STRATEGIES: dict[str, type[RoundRobin] | type[FillFirst] | type[WeightedRoundRobin]] = {
    "round-robin": RoundRobin,
    "fill-first": FillFirst,
    "weighted-round-robin": WeightedRoundRobin,
    "weighted": WeightedRoundRobin,
}


def make_strategy(name: str, start_at: Callable[[], int] | None = None) -> Strategy:
    """``start_at`` gives round-robin cursors their first value (the replica's number)."""
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown routing strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    return RoundRobin(start_at) if factory is RoundRobin else factory()


class Selector:
    """Lives as long as the server: its strategy's cursors and scores survive
    config reloads and credential writes (a reload that changes the strategy
    starts the new one afresh)."""

    def __init__(self, health: Health, strategy: Strategy, affinity: Affinity | None = None,
                 strategy_name: str = "") -> None:
        self.health = health
        self.strategy = strategy
        self.affinity = affinity
        self.strategy_name = strategy_name

    def use_strategy(self, name: str, start_at: Callable[[], int] | None = None) -> None:
        if name != self.strategy_name:
            self.strategy = make_strategy(name, start_at)
            self.strategy_name = name

    def candidates(self, pool: Pool, session: str | None = None) -> Iterator[Candidate]:
        """Available candidates in preference order, each once."""
        health = self.health
        sticky_id: str | None = None
        if session is not None and self.affinity is not None:
            sticky_id = self.affinity.get(pool.model, session)
            if sticky_id is not None:
                cand = pool.by_account.get(sticky_id)
                if cand is not None and health.available(sticky_id, cand.route.upstream):
                    yield cand
        for number, tier in enumerate(pool.tiers):
            deferred: list[Candidate] = []
            looked = 0
            for cand in self.strategy.order(f"{pool.model}#{number}", tier):
                account_id = cand.account.id
                if account_id == sticky_id or not health.available(account_id, cand.route.upstream):
                    continue
                if looked < HEADROOM_LOOKAHEAD and health.short_of_headroom(account_id):
                    looked += 1
                    deferred.append(cand)
                    continue
                yield cand
            yield from deferred

    def soonest_transient(self, pool: Pool) -> Candidate | None:
        """The account cooling after a transient failure (an outage, a refused
        connection, a broken stream) that recovers first, if any."""
        best: tuple[float, Candidate] | None = None
        for cand in pool.candidates:
            until = self.health.transient_until(cand.account.id, cand.route.upstream)
            if until is not None and (best is None or until < best[0]):
                best = (until, cand)
        return None if best is None else best[1]

    def soonest_recovery(self, pool: Pool) -> float | None:
        """When the first rate-limited account of the pool becomes usable
        again (accounts cooling for other causes are not waited for)."""
        soonest: float | None = None
        for cand in pool.candidates:
            until = self.health.recovering_until(cand.account.id, cand.route.upstream)
            if until is not None and (soonest is None or until < soonest):
                soonest = until
        return soonest
