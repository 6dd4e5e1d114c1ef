"""Every request being answered, swept a few times a second.

Two jobs, both cheap for the common fast request:
- a body that has not fully arrived by its deadline cancels its request
  (which then answers 408);
- a request still running after ``watch_after`` seconds gets a watcher that
  waits for the client to leave (the wire's ``client_left``), and cancels the request
  when it does — before the first upstream byte as much as mid-stream — so an
  abandoned request stops its upstream call at once.

A request that is answered within ``watch_after`` never pays for a timer or a
watcher task: it costs one set insertion and removal. Detection is at most
one sweep period late, which is nothing next to an upstream call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

ClientLeft = Callable[[], Awaitable[None]]  # returns when the client goes away

WATCH_AFTER = 0.05
SWEEP_PERIOD = 0.05


class Exchange:
    """One request in flight."""

    __slots__ = ("client_left", "finished", "gone", "read_until", "since", "task", "timed_out", "watcher")

    def __init__(self, task: asyncio.Task[Any], client_left: ClientLeft, read_until: float) -> None:
        self.task = task
        self.client_left = client_left
        self.read_until: float | None = read_until  # None once the body is in
        self.since = 0.0
        self.watcher: asyncio.Task[None] | None = None
        self.gone = False  # the client left
        self.timed_out = False  # the body did not arrive in time
        self.finished = False

    def absorb(self) -> bool:
        """After a CancelledError in the request's task: True when this
        exchange caused it (the cancellation is then taken back, so the
        server can finish quietly or answer 408)."""
        if self.gone or self.timed_out:
            self.task.uncancel()
            return True
        return False


class InFlight:
    def __init__(self, watch_after: float = WATCH_AFTER, period: float = SWEEP_PERIOD) -> None:
        self.watch_after = watch_after
        self.period = period
        self._unwatched: set[Exchange] = set()

    def begin(self, client_left: ClientLeft, body_timeout: float) -> Exchange | None:
        """Track the current task's request (None outside a task)."""
        task = asyncio.current_task()
        if task is None:
            return None
        exchange = Exchange(task, client_left, time.monotonic() + body_timeout)
        self._unwatched.add(exchange)
        return exchange

    @staticmethod
    def body_read(exchange: Exchange | None) -> None:
        """From now on the wire's reading belongs to the watcher (when one starts)."""
        if exchange is not None:
            exchange.read_until = None
            exchange.since = time.monotonic()

    def end(self, exchange: Exchange | None) -> None:
        if exchange is None:
            return
        exchange.finished = True
        self._unwatched.discard(exchange)
        if exchange.watcher is not None:
            exchange.watcher.cancel()

    async def run(self) -> None:
        """The sweeper; runs for as long as the server does."""
        while True:
            await asyncio.sleep(self.period)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        for exchange in [e for e in self._unwatched if e.read_until is not None or now - e.since >= self.watch_after]:
            if exchange.read_until is not None:
                if now > exchange.read_until:
                    self._unwatched.discard(exchange)
                    exchange.timed_out = True
                    exchange.task.cancel()
                continue
            self._unwatched.discard(exchange)
            exchange.watcher = asyncio.get_running_loop().create_task(_watch(exchange))


async def _watch(exchange: Exchange) -> None:
    with contextlib.suppress(Exception):
        await exchange.client_left()
        exchange.gone = True
        if not exchange.finished:
            exchange.task.cancel()
