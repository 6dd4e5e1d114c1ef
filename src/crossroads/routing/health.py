"""Cooldowns per (account, model) after upstream failures."""

from __future__ import annotations

import time
from dataclasses import dataclass

from crossroads import ir

TRANSIENT_COOLDOWN = 10.0
AUTH_COOLDOWN = 30 * 60.0
MODEL_MISSING_COOLDOWN = 12 * 3600.0
QUOTA_BACKOFF_BASE = 1.0
QUOTA_BACKOFF_MAX = 30 * 60.0


@dataclass(slots=True)
class Cooldown:
    until: float
    reason: str
    strikes: int = 1


class Health:
    def __init__(self) -> None:
        self._cooldowns: dict[tuple[str, str], Cooldown] = {}
        self._now = time.monotonic

    def cooling_until(self, account_id: str, model: str) -> float | None:
        cd = self._cooldowns.get((account_id, model))
        if cd is None:
            return None
        if cd.until <= self._now():
            return None
        return cd.until

    def record_success(self, account_id: str, model: str) -> None:
        if self._cooldowns:
            self._cooldowns.pop((account_id, model), None)

    def record_failure(self, account_id: str, model: str, error: ir.Error) -> float:
        """Cool the account down for this model; returns the cooldown length."""
        key = (account_id, model)
        previous = self._cooldowns.get(key)
        strikes = (previous.strikes + 1) if previous else 1
        if error.status == 429:
            seconds = error.retry_after if error.retry_after is not None else min(
                QUOTA_BACKOFF_BASE * 2 ** (strikes - 1), QUOTA_BACKOFF_MAX)
        elif error.status in (401, 402, 403):
            seconds = AUTH_COOLDOWN
        elif error.status == 404:
            seconds = MODEL_MISSING_COOLDOWN
        else:
            seconds = TRANSIENT_COOLDOWN
        self._cooldowns[key] = Cooldown(self._now() + seconds, f"{error.status} {error.kind}", strikes)
        return seconds

    def snapshot(self) -> dict[tuple[str, str], Cooldown]:
        now = self._now()
        return {k: v for k, v in self._cooldowns.items() if v.until > now}
