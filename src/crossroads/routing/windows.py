"""Client-side request limits per credential, for upstreams that publish one
(``Provider.requests_per_credential``) and punish going over it harder than a
429 would: the router holds back instead of sending."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0


class RequestWindows:
    """At most ``limit`` requests per credential in any ``window`` seconds
    (sliding); a full window answers how long until the next slot frees.
    Owned by the runtime, so reloads do not reset it."""

    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}

    def take(self, key: str, limit: int) -> float:
        """Claim a slot: 0.0 when granted, else the seconds to wait."""
        now = self.clock()
        sent = self._sent.get(key)
        if sent is None:
            sent = self._sent[key] = deque()
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        if len(sent) >= limit:
            return sent[0] + self.window - now
        sent.append(now)
        return 0.0
