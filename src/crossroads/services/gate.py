"""A bounded first-come-first-served queue in front of a service that can
only take a few requests at once (one browser page serves one at a time).

Requests beyond ``limit`` wait here in arrival order, never in parallel at
the service; a full queue is refused at once (429) and a wait longer than
``wait_timeout`` gives up (503), both naming the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from crossroads import ir

QUEUE_FULL = "service_queue_full"
QUEUE_TIMEOUT = "service_queue_timeout"


class Gate:
    def __init__(self, label: str, limit: int | None, queue_size: int, wait_timeout: float) -> None:
        self.label = label
        self.limit = limit
        self.queue_size = queue_size
        self.wait_timeout = wait_timeout
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self.limit is None or (self.active < self.limit and not self._waiting):
            self.active += 1
            return
        if len(self._waiting) >= self.queue_size:
            raise ir.Error(429, "rate_limit", f"{self.label} is busy: {self.active} request(s) running and "
                                              f"{len(self._waiting)} queued (the queue is full)",
                           retry_after=5.0, code=QUEUE_FULL)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout(self.wait_timeout):
                await turn  # _release hands its slot over: active stays counted
        except TimeoutError:
            if turn.done() and not turn.cancelled():
                self._release()  # the slot arrived just as the wait ran out
            else:
                self._forget(turn)
            raise ir.Error(503, "overloaded", f"{self.label} did not free a slot within "
                                              f"{self.wait_timeout:g}s ({len(self._waiting)} request(s) "
                                              "still queued)", code=QUEUE_TIMEOUT) from None
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release()
            else:
                self._forget(turn)
            raise

    def _forget(self, turn: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(turn)
        turn.cancel()

    def _release(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes to the next in line
                return
        self.active -= 1
