"""Runs a side service as a child process: started with Crossroads,
restarted with backoff when it dies, its output logged under its name,
stopped (terminate, then kill) when Crossroads stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

log = logging.getLogger("crossroads.services")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # a child that ran this long starts the backoff afresh when it dies
STOP_GRACE = 5.0


class Supervisor:
    def __init__(self, name: str, command: tuple[str, ...], cwd: str | None,
                 env: tuple[tuple[str, str], ...]) -> None:
        self.name = name
        self.command = command
        self.cwd = cwd
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.last_exit: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"crossroads-supervise-{self.name}")

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stopping:
            started = time.monotonic()
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.command, cwd=self.cwd, env={**os.environ, **dict(self.env)},
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                log.error("[%s] cannot start %r: %s; retrying in %.1fs", self.name, self.command[0], exc, backoff)
            else:
                self.starts += 1
                log.info("[%s] started (pid %d)", self.name, self.process.pid)
                await self._relay(self.process)
                self.last_exit = await self.process.wait()
                if self._stopping:
                    return
                if time.monotonic() - started >= STABLE_AFTER:
                    backoff = FIRST_BACKOFF
                log.warning("[%s] exited with status %s; restarting in %.1fs", self.name, self.last_exit, backoff)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)

    async def _relay(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                return
            log.info("[%s] %s", self.name, line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            log.info("[%s] stopped", self.name)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
