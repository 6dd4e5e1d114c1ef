"""Reading usage endpoints in the background, gently.

Guarantees:
- an account is read only when its provider has a usage endpoint
  (``Provider.quota_probe_interval``), and never more often than that interval;
- an account whose windows were seen less than an interval ago (passively,
  from the headers of the traffic it served, or by another replica's probe
  shared through the state) is not read at all: the headers come first;
- one read at a time, spaced by ``SPACING`` seconds, so a large pool is
  probed as a trickle rather than a burst;
- a failed read is logged by the provider's module and retried after the
  interval, never sooner; nothing a read does can fail a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from crossroads.providers.base import Account
from crossroads.routing.health import Health
from crossroads.transport import Transport

log = logging.getLogger("crossroads.quota")

TICK = 1.0  # seconds between looks at which accounts are due
SPACING = 0.2  # seconds between two reads


class QuotaProber:
    def __init__(self, health: Health, transport: Transport, accounts: Callable[[], list[Account]],
                 enabled: Callable[[], bool]) -> None:
        self.health = health
        self.transport = transport
        self.accounts = accounts
        self.enabled = enabled
        self._next: dict[str, float] = {}  # account id -> earliest next read (epoch)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crossroads-quota-probe")
        return self._task

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            if self.enabled():
                for account in self.due():
                    await self.probe(account)
                    await asyncio.sleep(SPACING)
            await asyncio.sleep(TICK)

    def due(self) -> list[Account]:
        now = time.time()
        due = []
        for account in self.accounts():
            interval = account.provider.quota_probe_interval
            if interval is None or account.disabled or self._next.get(account.id, 0.0) > now:
                continue
            windows = self.health.quotas.get(account.id)
            seen = max((w.observed_at for w in windows.values()), default=0.0) if windows else 0.0
            if now - seen < interval:
                self._next[account.id] = seen + interval
                continue
            due.append(account)
        return due

    async def probe(self, account: Account) -> None:
        interval = account.provider.quota_probe_interval or 0.0
        self._next[account.id] = time.time() + interval
        try:
            windows = await account.provider.probe_quota(account, self.transport)
        except Exception as exc:  # a refresh that fails, a provider bug: never the server's problem
            log.info("quota: reading %s's usage failed (%s)", account.label, type(exc).__name__)
            return
        if windows:
            self.health.observe(account.id, windows)
