"""Refusing an address that keeps presenting wrong keys.

After ``attempts`` wrong keys within ``window`` seconds an address is refused
for ``duration`` seconds — every request from it, right key or not, so a
guesser learns nothing while locked out. The counts are per process and per
kind of key (client keys and the management secret are counted apart)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class LockoutPolicy:
    attempts: int = 10  # 0 disables
    window: float = 60.0
    duration: float = 300.0


class Lockout:
    __slots__ = ("_failures", "_locked", "policy")

    MAX_TRACKED = 10_000  # addresses remembered at once; the oldest are forgotten first

    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy
        self._failures: dict[str, list[float]] = {}
        self._locked: dict[str, float] = {}

    def locked_for(self, address: str | None) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        if not self._locked or address is None:
            return 0.0
        until = self._locked.get(address)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._locked[address]
            return 0.0
        return left

    def failed(self, address: str | None) -> None:
        if address is None or self.policy.attempts <= 0:
            return
        now = time.monotonic()
        recent = [t for t in self._failures.get(address, ()) if now - t < self.policy.window]
        recent.append(now)
        if len(recent) >= self.policy.attempts:
            self._failures.pop(address, None)
            self._locked[address] = now + self.policy.duration
            if len(self._locked) > self.MAX_TRACKED:
                self._locked.pop(next(iter(self._locked)))
            return
        self._failures[address] = recent
        if len(self._failures) > self.MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str | None) -> None:
        if self._failures and address is not None:
            self._failures.pop(address, None)
