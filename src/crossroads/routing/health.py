"""Account health: cooldowns per (account, model) with their cause, and the
quota windows upstreams report (``crossroads.quota``).

Both live in a ``State`` (shared by replicas when it is Redis); reads use its
local view, so a pick never waits on the network."""

from __future__ import annotations

import time
from collections.abc import Callable

from crossroads import ir, quota
from crossroads.providers.base import Outcome, classify
from crossroads.state import MemoryState, State
from crossroads.state.base import ALL_MODELS, Cooldown

TRANSIENT_COOLDOWN = 10.0  # 408 / 5xx / connection errors / timeouts
AUTH_COOLDOWN = 30 * 60.0  # 401 after the refresh-and-retry, 402, 403
MODEL_MISSING_COOLDOWN = 12 * 3600.0  # 404 / model not supported: that model only
QUOTA_BACKOFF_BASE = 1.0  # 429 without a reset time: 1 s, doubling...
QUOTA_BACKOFF_MAX = 30 * 60.0  # ...up to 30 min


class Health:
    def __init__(self, transient_cooldown: float = TRANSIENT_COOLDOWN, state: State | None = None) -> None:
        self.state: State = state if state is not None else MemoryState()
        self._cooldowns = self.state.cooldowns  # kept current by the state
        self.quotas = self.state.quotas  # account -> windows, kept current by the state
        self.planned = self.state.planned  # accounts with a plan's window
        self.transient_cooldown = transient_cooldown

    def cooling_until(self, account_id: str, model: str) -> float | None:
        return self._until_if(account_id, model, None)

    def recovering_until(self, account_id: str, model: str) -> float | None:
        """When a rate-limited account may be used again: only a 429 is worth
        waiting for (a refused connection, an outage or a refused credential
        will not be over within a retry interval)."""
        return self._until_if(account_id, model, lambda status: status == 429)

    def transient_until(self, account_id: str, model: str) -> float | None:
        """When an account cooling only for transient failures (408, 5xx,
        connection errors, broken streams) recovers; None for other causes."""
        return self._until_if(account_id, model, lambda status: status == 408 or status >= 500)

    def _until_if(self, account_id: str, model: str, cause: Callable[[int], bool] | None) -> float | None:
        """When the account's cooldowns for ``model`` end, if each was for a
        status ``cause`` accepts (None: any cause)."""
        if not self._cooldowns:
            return None
        now = time.monotonic()
        until: float | None = None
        for key in ((account_id, model), (account_id, ALL_MODELS)):
            cd = self._cooldowns.get(key)
            if cd is None or cd.until <= now:
                continue
            if cause is not None:
                status = cd.reason.split(" ", 1)[0]
                if not status.isdigit() or not cause(int(status)):
                    return None
            until = cd.until if until is None else max(until, cd.until)
        return until

    def available(self, account_id: str, model: str) -> bool:
        return not self._cooldowns or self.cooling_until(account_id, model) is None

    def record_success(self, account_id: str, model: str) -> None:
        if self._cooldowns and (account_id, model) in self._cooldowns:
            self.state.drop_cooldown(account_id, model)

    def record_failure(self, account_id: str, model: str, error: ir.Error,
                       outcome: Outcome | None = None) -> float:
        """Cool the account down for this model (or for all its models when the
        provider says the error is credential-wide); returns the cooldown
        length in seconds (0: nothing to cool)."""
        if outcome is None:
            outcome = classify(error)
        if outcome.scope == "none":
            return 0.0
        if outcome.out_of_credits:  # shown with the account's windows until a top-up is seen
            self.observe(account_id, [quota.window("credits", 1.0, None, "error")])
        scope = ALL_MODELS if outcome.scope == "credential" else model
        key = (account_id, scope)
        previous = self._cooldowns.get(key)
        strikes = (previous.strikes + 1) if previous else 1
        if outcome.seconds is not None:
            seconds = outcome.seconds
        elif outcome.needs_login or outcome.out_of_credits:
            seconds = AUTH_COOLDOWN
        elif error.status == 429:
            seconds = error.retry_after if error.retry_after is not None else min(
                QUOTA_BACKOFF_BASE * 2 ** (strikes - 1), QUOTA_BACKOFF_MAX)
        elif error.status in (401, 402, 403):
            seconds = AUTH_COOLDOWN
        elif error.status == 404:
            seconds = MODEL_MISSING_COOLDOWN
        else:
            seconds = self.transient_cooldown
        if seconds <= 0:
            return 0.0
        self.state.put_cooldown(account_id, scope, Cooldown(time.monotonic() + seconds, f"{error.status} "
                                                            f"{error.kind}: {error.message[:200]}", strikes))
        return seconds

    def clear(self) -> None:
        self.state.drop_all_cooldowns()

    def snapshot(self) -> dict[tuple[str, str], Cooldown]:
        now = time.monotonic()
        return {k: v for k, v in self._cooldowns.items() if v.until > now}

    # ---------------------------------------------------------------- quota windows

    def observe(self, account_id: str, windows: list[quota.Window]) -> None:
        """What an upstream just said about the account's windows."""
        if windows:
            self.state.put_quota(account_id, windows)

    def assess(self, account_id: str, model: str, pause_at: float | None) -> quota.Assessment:
        """The account's windows for one request for ``model`` (no windows known: clear)."""
        windows = self.quotas.get(account_id) if self.quotas else None
        if not windows:
            return quota.CLEAR
        return quota.assess(windows, model, pause_at, time.time())

    def quota_until(self, account_id: str, model: str, pause_at: float | None) -> float | None:
        """When an account held back by its windows may be used again (monotonic), else None."""
        blocked = self.assess(account_id, model, pause_at).blocked_until
        return None if blocked is None else time.monotonic() + max(0.0, blocked - time.time())
