"""In-process state: the default for a single replica, and what the Redis
backend falls back to while Redis is unreachable."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from crossroads import quota
from crossroads.state.base import USAGE_TABLES, Cooldown, Limits, Refusal, UsageTables

WINDOW = 60.0  # rpm / tpm span in seconds
MAX_AFFINITY_ENTRIES = 100_000


@dataclass(slots=True)
class _Window:
    events: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def prune(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - WINDOW:
            self.total -= self.events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount


@dataclass(slots=True)
class _KeyWindows:
    requests: _Window = field(default_factory=_Window)
    tokens: _Window = field(default_factory=_Window)
    period_start: float = 0.0
    period_tokens: int = 0

    def period(self, limits: Limits) -> int:
        if self.period_start != limits.period_start:
            self.period_start, self.period_tokens = limits.period_start, 0
        return self.period_tokens


class MemoryState:
    shared = False

    def __init__(self) -> None:
        self.replica_number = 0
        self.cooldowns: dict[tuple[str, str], Cooldown] = {}
        self.quotas: dict[str, quota.Windows] = {}
        self.planned: set[str] = set()  # accounts with a plan's window (not only per-minute ones)
        self._affinity: dict[tuple[str, str], tuple[str, float]] = {}
        self._windows: dict[str, _KeyWindows] = {}
        self._usage: UsageTables = {table: {} for table in USAGE_TABLES}
        self._cursors: dict[str, int] = {}

    # ---------------------------------------------------------------- cooldowns

    def put_cooldown(self, account: str, model: str, cooldown: Cooldown) -> None:
        self.cooldowns[(account, model)] = cooldown

    def drop_cooldown(self, account: str, model: str) -> None:
        self.cooldowns.pop((account, model), None)

    def drop_all_cooldowns(self) -> None:
        self.cooldowns.clear()

    # ---------------------------------------------------------------- quota windows

    def put_quota(self, account: str, windows: list[quota.Window]) -> None:
        known = self.quotas.get(account)
        if known is None:
            known = self.quotas[account] = {}
        quota.merge_into(known, windows)
        if account not in self.planned and any(w.kind not in quota.RATE_KINDS for w in windows):
            self.planned.add(account)

    # ---------------------------------------------------------------- affinity

    async def get_affinity(self, model: str, session: str) -> str | None:
        entry = self._affinity.get((model, session))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def set_affinity(self, model: str, session: str, account: str, ttl: float) -> None:
        now = time.monotonic()
        if len(self._affinity) >= MAX_AFFINITY_ENTRIES:
            self._affinity = {k: v for k, v in self._affinity.items() if v[1] >= now}
            if len(self._affinity) >= MAX_AFFINITY_ENTRIES:
                self._affinity.clear()
        self._affinity[(model, session)] = (account, now + ttl)

    # ---------------------------------------------------------------- rate windows and budgets

    async def reserve(self, key: str, limits: Limits) -> Refusal | None:
        return self.reserve_now(key, limits)

    def reserve_now(self, key: str, limits: Limits) -> Refusal | None:
        """Counts the request when every limit has room; else says which limit
        refused and for how long."""
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = _KeyWindows()
        now = time.time()
        if limits.rpm is not None:
            windows.requests.prune(now)
            if windows.requests.total >= limits.rpm:
                return Refusal("rpm", _wait(windows.requests, now))
        if limits.tpm is not None:
            windows.tokens.prune(now)
            if windows.tokens.total >= limits.tpm:
                return Refusal("tpm", _wait(windows.tokens, now))
        if limits.budget_tokens is not None and windows.period(limits) >= limits.budget_tokens:
            return Refusal("budget", limits.period_end - now)
        if limits.rpm is not None:
            windows.requests.add(now, 1)
        return None

    def settle(self, key: str, tokens: int, limits: Limits) -> None:
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = _KeyWindows()
        windows.tokens.add(time.time(), tokens)
        if limits.budget_tokens is not None:
            windows.period(limits)
            windows.period_tokens += tokens

    # ---------------------------------------------------------------- usage

    def add_usage(self, client_key: str, account: str, model: str, counts: Mapping[str, int]) -> None:
        for table, name in (("by_key", client_key), ("by_account", account), ("by_model", model)):
            row = self._usage[table].setdefault(name, {})
            for name_of_count, amount in counts.items():
                if amount:
                    row[name_of_count] = row.get(name_of_count, 0) + amount

    async def usage(self) -> UsageTables:
        return {table: {name: dict(row) for name, row in rows.items()} for table, rows in self._usage.items()}

    # ---------------------------------------------------------------- cursors

    async def next_cursor(self, name: str) -> int:
        value = self._cursors.get(name, 0) + 1
        self._cursors[name] = value
        return value

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _wait(window: _Window, now: float) -> float:
    """Until the oldest counted event leaves the window (a limit of 0: a whole window)."""
    return window.events[0][0] + WINDOW - now if window.events else WINDOW
