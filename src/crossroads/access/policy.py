"""Per-client-key policy: allowed models, requests and tokens per minute, and
a token budget per period.

A key in ``api-keys`` may be a plain string (no limits) or a mapping::

    api-keys:
      - key: team-a
        name: Team A                             # how logs and usage name the key (else masked)
        models: ["claude-*", "gpt-5*"]
        rpm: 60
        tpm: 200000
        budget: {tokens: 5000000, period: day}   # day | week | month | seconds
"""

from __future__ import annotations

import calendar
import fnmatch
import time
from dataclasses import dataclass
from typing import Any

from crossroads import ir
from crossroads.state import Limits, MemoryState, Refusal, State

PERIODS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


@dataclass(slots=True, frozen=True)
class KeyPolicy:
    key: str
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    budget_period: str = "day"
    name: str | None = None  # shown in logs and usage instead of the masked key

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
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{where}: 'name' must be a string")
    return KeyPolicy(entry["key"], tuple(models), _int(entry.get("rpm"), where, "rpm"),
                     _int(entry.get("tpm"), where, "tpm"), _int(budget.get("tokens"), where, "budget.tokens"),
                     period, name or None)


def _int(value: Any, where: str, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: '{name}' must be a non-negative integer")
    return value


class Limiter:
    """Enforces key policies. Windows and budgets are counted in a ``State``:
    across all replicas when it is shared (``acquire`` then waits on it, for
    rate-limited keys only), else in this process."""

    def __init__(self, policies: dict[str, KeyPolicy], state: State | None = None) -> None:
        self.policies: dict[str, KeyPolicy] = {}
        self._local = MemoryState()
        self._state: State | None = state if state is not None and state.shared else None
        self.configure(policies)

    def configure(self, policies: dict[str, KeyPolicy]) -> None:
        """New policies from a reloaded config; the windows already counted stay."""
        self.policies = {k: p for k, p in policies.items() if p.limited}

    def admit(self, key: str | None, model: str) -> None:
        """Raise an ir.Error when this key may not make this request now (in-process windows)."""
        policy = self._policy(key, model)
        if policy is not None and key is not None:
            _refuse(policy, self._local.reserve_now(key, _limits(policy)))

    async def acquire(self, key: str | None, model: str) -> None:
        """``admit``, counted across replicas when the state is shared."""
        if self._state is None:
            self.admit(key, model)
            return
        policy = self._policy(key, model)
        if policy is not None and key is not None:
            _refuse(policy, await self._state.reserve(key, _limits(policy)))

    def check_model(self, key: str | None, model: str) -> None:
        """Raise (403) when the key's model allowlist excludes ``model``; counts nothing."""
        self._policy(key, model)

    def settle(self, key: str | None, usage: ir.Usage | None) -> None:
        """Count the tokens a finished request used."""
        if key is None or usage is None or key not in self.policies:
            return
        policy = self.policies[key]
        (self._state or self._local).settle(key, usage.total_tokens or 0, _limits(policy))

    def _policy(self, key: str | None, model: str) -> KeyPolicy | None:
        """The key's policy once its model allowlist passed; None when nothing is counted."""
        if key is None or not self.policies:
            return None
        policy = self.policies.get(key)
        if policy is None:
            return None
        if policy.models and not any(fnmatch.fnmatchcase(model, p) for p in policy.models):
            raise ir.Error(403, "permission", f"this client key may not use model {model!r}",
                           code="model_not_allowed")
        if policy.rpm is None and policy.tpm is None and policy.budget_tokens is None:
            return None
        return policy


def budget_window(policy: KeyPolicy, now: float) -> tuple[float, float]:
    """The budget period ``now`` falls in (epoch seconds, start and end)."""
    return _period(policy.budget_period, now)


def _limits(policy: KeyPolicy) -> Limits:
    start, end = _period(policy.budget_period, time.time()) if policy.budget_tokens is not None else (0.0, 0.0)
    return Limits(policy.rpm, policy.tpm, policy.budget_tokens, start, end)


def _refuse(policy: KeyPolicy, refusal: Refusal | None) -> None:
    if refusal is None:
        return
    wait = max(1.0, refusal.retry_after)
    if refusal.limit == "rpm":
        raise ir.Error(429, "rate_limit", f"client key exceeded {policy.rpm} requests per minute",
                       retry_after=wait, code="rate_limit_exceeded")
    if refusal.limit == "tpm":
        raise ir.Error(429, "rate_limit", f"client key exceeded {policy.tpm} tokens per minute",
                       retry_after=wait, code="rate_limit_exceeded")
    renews = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + refusal.retry_after))
    raise ir.Error(429, "rate_limit",
                   f"client key used its budget of {policy.budget_tokens} tokens for this "
                   f"{policy.budget_period}; it renews at {renews}",
                   retry_after=wait, code="budget_exceeded")


def _period(name: str, now: float) -> tuple[float, float]:
    if name == "month":
        t = time.gmtime(now)
        month_start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return float(month_start), float(calendar.timegm((year, month, 1, 0, 0, 0)))
    span = PERIODS.get(name) or int(name)
    window_start = now - (now % span)
    return window_start, window_start + span
