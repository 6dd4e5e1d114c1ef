"""The State interface: what several replicas of the router must share.

Cooldowns, quota windows, session affinity, per-client-key rate windows and budgets, usage
totals and round-robin cursors. ``memory.MemoryState`` keeps them in this
process (the default, and the fallback when Redis is unreachable);
``redis.RedisState`` shares them through Redis.

Hot-path rule: selection never waits on the network. ``cooldowns`` is this
replica's view, a plain dict read on every pick; writes update it at once and
are published to the other replicas in the background. Only what must be
exact across replicas waits on Redis: a rate-limited client key's
reservation, the first affinity lookup of a conversation on a replica, and
reading the usage report.

Measured with ``bench/state.py`` (loopback Redis, busy 2-core machine): a pick
costs the same with cooldowns mirrored from Redis as in memory (~3-5 us for
1,000 accounts, 3 cooling); a key without limits is admitted in ~0.5 us either
way; a rate-limited key costs one Lua call (~0.3-0.4 ms, versus ~3 us in
memory) -- the price of an exact limit across replicas; usage recording adds
~3 us per request, and 20,000 records reach Redis in a handful of pipelined
flushes (one per 50 ms); a cooldown reaches another replica in ~0.6-0.8 ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from crossroads.quota import Window, Windows

ALL_MODELS = "*"

USAGE_FIELDS = ("requests", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "unreported")
USAGE_TABLES = ("by_key", "by_account", "by_model")

# table -> name -> field -> count
UsageTables = dict[str, dict[str, dict[str, int]]]


@dataclass(slots=True)
class Cooldown:
    until: float  # time.monotonic() of this process
    reason: str
    strikes: int = 1


@dataclass(slots=True, frozen=True)
class Limits:
    """One client key's limits for one reservation; ``None`` = no such limit.
    The budget counts tokens between ``period_start`` and ``period_end`` (epoch seconds)."""

    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    period_start: float = 0.0
    period_end: float = 0.0


@dataclass(slots=True, frozen=True)
class Refusal:
    limit: str  # "rpm" | "tpm" | "budget"
    retry_after: float  # seconds


DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "crossroads"


@dataclass(slots=True, frozen=True)
class StateConfig:
    backend: str = "memory"  # memory | redis
    url: str = DEFAULT_URL
    prefix: str = DEFAULT_PREFIX


class StateUnavailable(Exception):
    """The shared state cannot answer now; callers use what this replica knows."""


class State(Protocol):
    shared: bool  # False: nothing leaves this process, callers may skip the async calls
    replica_number: int  # distinct per replica once started (0 in memory)
    cooldowns: dict[tuple[str, str], Cooldown]  # (account, model or ALL_MODELS) -> cooldown; this replica's view

    # cooldowns: reads are ``cooldowns`` lookups; writes never block
    def put_cooldown(self, account: str, model: str, cooldown: Cooldown) -> None: ...
    def drop_cooldown(self, account: str, model: str) -> None: ...
    def drop_all_cooldowns(self) -> None: ...

    # quota windows: reads are ``quotas`` lookups (account -> windows, this replica's
    # view); ``put_quota`` merges new observations (the later one of each window wins)
    quotas: dict[str, Windows]
    planned: set[str]  # accounts with a plan's window (5-hour, weekly...), not only per-minute ones
    def put_quota(self, account: str, windows: list[Window]) -> None: ...

    # session affinity
    async def get_affinity(self, model: str, session: str) -> str | None: ...
    def set_affinity(self, model: str, session: str, account: str, ttl: float) -> None: ...

    # per-client-key windows: atomic check-and-count of one request, then its tokens
    async def reserve(self, key: str, limits: Limits) -> Refusal | None: ...
    def settle(self, key: str, tokens: int, limits: Limits) -> None: ...

    # usage totals per client key (as displayed), account and model
    def add_usage(self, client_key: str, account: str, model: str, counts: Mapping[str, int]) -> None: ...
    async def usage(self) -> UsageTables: ...

    # round-robin cursors
    async def next_cursor(self, name: str) -> int: ...

    async def start(self) -> None: ...
    async def close(self) -> None: ...
