"""Ordering a pool's candidates for one request."""

from __future__ import annotations

from itertools import count

from crossroads.routing.health import Health
from crossroads.routing.registry import Candidate


class RoundRobin:
    """Rotates the starting point per pool; healthy candidates first, in
    priority tiers (higher ``priority`` first)."""

    def __init__(self, health: Health, fill_first: bool = False) -> None:
        self._health = health
        self._cursors: dict[str, count[int]] = {}
        self._fill_first = fill_first

    def order(self, model: str, pool: list[Candidate]) -> list[Candidate]:
        n = len(pool)
        if n == 1:
            return pool
        if self._fill_first:
            rotated = pool
        else:
            cursor = self._cursors.get(model)
            if cursor is None:
                cursor = self._cursors[model] = count()
            start = next(cursor) % n
            rotated = pool[start:] + pool[:start]
        if any(c.account.priority for c in rotated):
            rotated = sorted(rotated, key=lambda c: -c.account.priority)  # stable: keeps rotation
        return rotated

    def available(self, model: str, pool: list[Candidate]) -> tuple[list[Candidate], float | None]:
        """Candidates not cooling down, in order, and the soonest cooldown end
        among the others (None when none is cooling)."""
        ready: list[Candidate] = []
        soonest: float | None = None
        for cand in self.order(model, pool):
            until = self._health.cooling_until(cand.account.id, cand.route.upstream)
            if until is None:
                ready.append(cand)
            elif soonest is None or until < soonest:
                soonest = until
        return ready, soonest
