"""Per-client-key policy: allowed models, requests and tokens per minute, and
a token budget per period.

A key in ``api-keys`` may be a plain string (no limits) or a mapping::

    api-keys:
      - key: team-a
        models: ["claude-*", "gpt-5*"]
        rpm: 60
        tpm: 200000
        budget: {tokens: 5000000, period: day}   # day | week | month | seconds
"""

from __future__ import annotations

import calendar
import fnmatch
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from crossroads import ir

PERIODS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


@dataclass(slots=True, frozen=True)
class KeyPolicy:
    key: str
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    budget_period: str = "day"

    @property
    def limited(self) -> bool:
        return bool(self.models) or any(v is not None for v in (self.rpm, self.tpm, self.budget_tokens))


def parse_key(entry: Any, where: str) -> KeyPolicy:
    if isinstance(entry, str):
        return KeyPolicy(entry)
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
        raise ValueError(f"{where}: each api-keys entry is a string or a mapping with 'key'")
    models = entry.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ValueError(f"{where}: 'models' must be a list of model names or wildcards")
    budget = entry.get("budget") or {}
    if not isinstance(budget, dict):
        raise ValueError(f"{where}: 'budget' must be a mapping like {{tokens: 1000000, period: day}}")
    period = str(budget.get("period", "day"))
    if period not in PERIODS and period != "month" and not period.isdigit():
        raise ValueError(f"{where}: budget period must be minute, hour, day, week, month or seconds")
    return KeyPolicy(entry["key"], tuple(models), _int(entry.get("rpm"), where, "rpm"),
                     _int(entry.get("tpm"), where, "tpm"), _int(budget.get("tokens"), where, "budget.tokens"),
                     period)


def _int(value: Any, where: str, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: '{name}' must be a non-negative integer")
    return value


@dataclass(slots=True)
class _Window:
    events: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def prune(self, now: float, span: float) -> None:
        while self.events and self.events[0][0] <= now - span:
            self.total -= self.events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount


@dataclass(slots=True)
class _KeyState:
    requests: _Window = field(default_factory=_Window)
    tokens: _Window = field(default_factory=_Window)
    period_start: float = 0.0
    period_tokens: int = 0


class Limiter:
    def __init__(self, policies: dict[str, KeyPolicy]) -> None:
        self.policies = {k: p for k, p in policies.items() if p.limited}
        self._state: dict[str, _KeyState] = {}

    def admit(self, key: str | None, model: str) -> None:
        """Raise an ir.Error when this key may not make this request now."""
        if key is None or not self.policies:
            return
        policy = self.policies.get(key)
        if policy is None:
            return
        if policy.models and not any(fnmatch.fnmatchcase(model, p) for p in policy.models):
            raise ir.Error(403, "permission", f"this client key may not use model {model!r}",
                           code="model_not_allowed")
        state = self._state.setdefault(key, _KeyState())
        now = time.time()
        if policy.rpm is not None:
            state.requests.prune(now, 60)
            if state.requests.total >= policy.rpm:
                wait = state.requests.events[0][0] + 60 - now
                raise ir.Error(429, "rate_limit", f"client key exceeded {policy.rpm} requests per minute",
                               retry_after=max(1.0, wait), code="rate_limit_exceeded")
            state.requests.add(now, 1)
        if policy.tpm is not None:
            state.tokens.prune(now, 60)
            if state.tokens.total >= policy.tpm:
                wait = state.tokens.events[0][0] + 60 - now
                raise ir.Error(429, "rate_limit", f"client key exceeded {policy.tpm} tokens per minute",
                               retry_after=max(1.0, wait), code="rate_limit_exceeded")
        if policy.budget_tokens is not None:
            start, end = _period(policy.budget_period, now)
            if state.period_start != start:
                state.period_start, state.period_tokens = start, 0
            if state.period_tokens >= policy.budget_tokens:
                raise ir.Error(429, "rate_limit",
                               f"client key used its budget of {policy.budget_tokens} tokens for this "
                               f"{policy.budget_period}; it renews at "
                               f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(end))}",
                               retry_after=max(1.0, end - now), code="budget_exceeded")

    def settle(self, key: str | None, usage: ir.Usage | None) -> None:
        """Count the tokens a finished request used."""
        if key is None or usage is None or key not in self.policies:
            return
        tokens = usage.total_tokens or 0
        state = self._state.setdefault(key, _KeyState())
        now = time.time()
        state.tokens.add(now, tokens)
        policy = self.policies[key]
        if policy.budget_tokens is not None:
            start, _ = _period(policy.budget_period, now)
            if state.period_start != start:
                state.period_start, state.period_tokens = start, 0
            state.period_tokens += tokens


def _period(name: str, now: float) -> tuple[float, float]:
    if name == "month":
        t = time.gmtime(now)
        month_start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return float(month_start), float(calendar.timegm((year, month, 1, 0, 0, 0)))
    span = PERIODS.get(name) or int(name)
    window_start = now - (now % span)
    return window_start, window_start + span
