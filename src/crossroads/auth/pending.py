"""Logins in progress for one server (driven through the management API):
browser logins waiting for their redirect, device logins being polled, and
the outcome of each, looked up by the ``state`` handed out at the start."""

from __future__ import annotations

from typing import Any

from crossroads.auth.device import PendingDeviceLogins
from crossroads.auth.flows import PendingLogins

MAX_OUTCOMES = 1000  # beyond this, the oldest half is forgotten


class Logins:
    def __init__(self) -> None:
        self.browser = PendingLogins()
        self.devices = PendingDeviceLogins()
        self._outcomes: dict[str, dict[str, Any]] = {}

    def waiting(self, state: str) -> None:
        """A browser login was handed out: its status is "wait" until it ends."""
        if len(self._outcomes) > MAX_OUTCOMES:
            for old in list(self._outcomes)[:MAX_OUTCOMES // 2]:
                del self._outcomes[old]
        self._outcomes[state] = {"status": "wait"}

    def succeeded(self, state: str, accounts: list[str]) -> None:
        self._outcomes[state] = {"status": "ok", "accounts": accounts}

    def failed(self, state: str, error: str) -> None:
        self._outcomes[state] = {"status": "error", "error": error}

    def status(self, state: str) -> dict[str, Any]:
        """The outcome of a browser or device login; KeyError for unknown states."""
        outcome = self._outcomes.get(state)
        if outcome is not None:
            return outcome
        return self.devices.status(state)

    def cancel(self, state: str) -> bool:
        """Abandon a login in progress, browser or device; False when none was in progress."""
        if self.browser.cancel(state):
            self.failed(state, "the login was cancelled")
            return True
        return self.devices.cancel(state)

    def close(self) -> None:
        """Stop polling device logins (server shutdown)."""
        self.devices.cancel_all()
