"""The side services a server runs with: per service its health (with the
service's own reason when it is down), its model list (from its
``GET /v1/models``), its request queue and its supervised process.

One :class:`SideServices` lives on the runtime. Building a snapshot only
*asks* it for a service's handle (``handle``: the live one when the spec is
unchanged, else a fresh one carrying over what was learnt); ``sync`` after a
snapshot is adopted makes the new set live, starting and stopping monitors
and child processes. A change of health or model list calls ``on_change``
(the runtime rebuilds its snapshot, so routes and ``/v1/models`` follow).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from crossroads import ir
from crossroads.services.gate import Gate
from crossroads.services.spec import ServiceSpec
from crossroads.services.supervisor import Supervisor
from crossroads.transport import Transport

log = logging.getLogger("crossroads.services")

SERVICE_DOWN = "service_down"
DOWN_CHECK_INTERVAL = 1.0  # a service that is down is checked this often, so it is back within seconds
DISCOVERY_MIN_INTERVAL = 2.0  # on-demand model refreshes (an unknown prefixed model) at most this often
REASON_LIMIT = 600


@dataclass(frozen=True, slots=True)
class Status:
    up: bool | None = None  # None: not checked yet
    reason: str = ""
    listed: tuple[str, ...] | None = None  # what the service's models endpoint listed last
    checked_at: float | None = None  # wall clock
    since: float | None = None  # wall clock of the last change of ``up``


class Service:
    def __init__(self, spec: ServiceSpec, transport: Transport, on_change: Callable[[], None]) -> None:
        self.spec = spec
        self.transport = transport
        self.on_change = on_change
        self.status = Status()
        self.gate = Gate(spec.label, spec.max_concurrency, spec.queue_size, spec.queue_timeout)
        self.supervisor = Supervisor(spec.name, spec.command, spec.cwd, spec.env) if spec.command else None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._models_at = 0.0  # monotonic time of the last model-list refresh
        self._refreshing: asyncio.Lock | None = None

    # ------------------------------------------------------------------ what routing reads

    @property
    def models(self) -> tuple[str, ...]:
        """The models to route: what the service lists, else the configured ones."""
        return self.status.listed or self.spec.models

    @property
    def down(self) -> bool:
        return self.status.up is False

    def check_up(self) -> None:
        """Raise the 503 a request for a model of a service that is down gets."""
        if self.down:
            raise ir.Error(503, "overloaded", f"{self.spec.label} is down: {self.status.reason}",
                           code=SERVICE_DOWN)

    def suspect(self) -> None:
        """A request could not reach the service: check it now."""
        self._wake.set()

    def report(self) -> dict[str, Any]:
        spec, status = self.spec, self.status
        supervised = self.supervisor
        return {"name": spec.name, "endpoint": spec.endpoint, "prefix": spec.prefix,
                "state": {True: "up", False: "down", None: "unchecked"}[status.up], "reason": status.reason,
                "checked_at": status.checked_at, "since": status.since,
                "models": [spec.prefix + m for m in self.models], "listed_by_service": status.listed is not None,
                "max_concurrency": spec.max_concurrency, "running": self.gate.active, "queued": self.gate.waiting,
                "tools": spec.tools,
                "process": None if supervised is None else {"pid": supervised.pid, "starts": supervised.starts,
                                                            "last_exit": supervised.last_exit}}

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        if self.supervisor is not None:
            self.supervisor.start()
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name=f"crossroads-watch-{self.spec.name}")

    async def stop(self, keep_process: bool = False) -> None:
        """Stop watching (and, unless a successor took it over, the child process)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.supervisor is not None and not keep_process:
            await self.supervisor.stop()

    async def _watch(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one check must not end the watch
                log.exception("checking %s failed", self.spec.label)
            interval = DOWN_CHECK_INTERVAL if self.status.up is not True else self.spec.check_interval
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(interval, self.spec.check_interval)):
                    await self._wake.wait()

    async def check(self) -> None:
        """One health check, and a model-list refresh when it is due."""
        status, body = await self._get(self.spec.check_path)
        unlisted = status == 404 and self.spec.health_path is None  # up, but it has no model list
        up = status is not None and (200 <= status < 300 or unlisted)
        reason = "" if up else _reason(status, body)
        listed = self.status.listed
        due = time.monotonic() - self._models_at >= self.spec.models_interval or listed is None
        if up and due and not unlisted:
            if self.spec.health_path is None:
                listed = _model_ids(body)
            else:
                listed = await self._list_models()
            self._models_at = time.monotonic()
        self._update(up, reason, listed)

    async def refresh_models(self) -> bool:
        """Fetch the model list now (a request named an unknown model with
        this service's prefix); True when it changed."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if time.monotonic() - self._models_at < DISCOVERY_MIN_INTERVAL:
                return False
            before = self.models
            listed = await self._list_models()
            self._models_at = time.monotonic()
            if listed is None:
                return False
            self._update(self.status.up if self.status.up is not None else True, self.status.reason, listed)
            return self.models != before

    async def _list_models(self) -> tuple[str, ...] | None:
        status, body = await self._get(self.spec.models_path)
        if status is None or not 200 <= status < 300:
            return self.status.listed
        return _model_ids(body)

    def _update(self, up: bool, reason: str, listed: tuple[str, ...] | None) -> None:
        old = self.status
        now = time.time()
        since = old.since if old.up == up else now
        self.status = Status(up, reason, listed, now, since)
        if old.up != up:
            if up:
                log.info("%s is up%s", self.spec.label, "" if old.up is None else " again")
            else:
                log.warning("%s is down: %s", self.spec.label, reason)
        if old.up != up or old.listed != listed:
            self.on_change()

    async def _get(self, path: str) -> tuple[int | None, bytes]:
        headers = dict(self.spec.headers)
        if self.spec.api_key:
            headers.setdefault("authorization", f"Bearer {self.spec.api_key}")
        limits = dataclasses.replace(self.spec.timeouts, first_byte=self.spec.timeouts.connect + 10.0)
        try:
            async with asyncio.timeout(limits.first_byte + 10.0):
                response = await self.transport.request("GET", self.spec.endpoint + path, None, headers,
                                                        self.spec.proxy_url, limits)
                try:
                    return response.status, await response.read()
                finally:
                    response.release()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"cannot reach it ({type(exc).__name__}: {exc})".encode()


def _reason(status: int | None, body: bytes) -> str:
    """The service's own words: AIstudioProxyAPI's 503 says what its browser and page are doing."""
    if status is None:
        return body.decode(errors="replace")[:REASON_LIMIT]
    text = body.decode(errors="replace").strip()
    with contextlib.suppress(orjson.JSONDecodeError):
        text = orjson.dumps(orjson.loads(body)).decode()
    return f"health check answered {status}" + (f": {text[:REASON_LIMIT]}" if text else "")


def _model_ids(body: bytes) -> tuple[str, ...] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    rows = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(rows, list):
        return None
    ids = (row.get("id") if isinstance(row, dict) else row for row in rows)
    return tuple(dict.fromkeys(i.removeprefix("models/") for i in ids if isinstance(i, str) and i))


def _same_process(old: ServiceSpec, new: ServiceSpec) -> bool:
    return (old.command, old.cwd, old.env) == (new.command, new.cwd, new.env)


def service_handles(accounts: Iterable[Any]) -> list[Service]:
    """The services the accounts of a snapshot point at."""
    found = (account.params.get("service") for account in accounts)
    return list({id(s): s for s in found if isinstance(s, Service)}.values())


class SideServices:
    """Every side service of the current config, kept by name."""

    def __init__(self, transport: Transport, on_change: Callable[[], None] = lambda: None) -> None:
        self.transport = transport
        self.on_change = on_change
        self._services: dict[str, Service] = {}
        self._started = False
        self._stopping: set[asyncio.Task[None]] = set()

    def handle(self, spec: ServiceSpec) -> Service:
        """The service for ``spec``: the live one when nothing changed, else a
        new one (live only once ``sync`` adopts it) that keeps what was learnt
        about the same endpoint."""
        current = self._services.get(spec.name)
        if current is not None and current.spec == spec:
            return current
        fresh = Service(spec, self.transport, self._changed)
        if current is not None and current.spec.endpoint == spec.endpoint:
            fresh.status = dataclasses.replace(current.status)
        if current is not None and current.supervisor is not None and _same_process(current.spec, spec):
            fresh.supervisor = current.supervisor  # an edit elsewhere in the entry does not restart the service
        return fresh

    def _changed(self) -> None:
        self.on_change()

    def sync(self, services: Iterable[Service]) -> None:
        """Make ``services`` the live set (after a snapshot is adopted)."""
        wanted = {service.spec.name: service for service in services}
        for name, old in list(self._services.items()):
            successor = wanted.get(name)
            if successor is not old and self._started:
                kept = successor is not None and successor.supervisor is old.supervisor
                task = asyncio.get_running_loop().create_task(old.stop(keep_process=kept))
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
        self._services = wanted
        if self._started:
            for service in wanted.values():
                service.start()

    async def start(self) -> None:
        self._started = True
        for service in self._services.values():
            service.start()

    async def stop(self) -> None:
        self._started = False
        for service in self._services.values():
            await service.stop()
        for task in self._stopping:
            with contextlib.suppress(Exception):
                await task

    async def discover(self, model: str) -> bool:
        """A request named ``model``, which no route serves: when it carries
        a service's prefix, ask that service for its models now. True when
        a list changed (the snapshot was rebuilt)."""
        changed = False
        for service in self._services.values():
            if service.spec.prefix and model.startswith(service.spec.prefix) and not service.down:
                changed = await service.refresh_models() or changed
        return changed

    def report(self) -> list[dict[str, Any]]:
        return [service.report() for service in self._services.values()]

    def queues(self) -> dict[str, tuple[int, int]]:
        """Per service with a concurrency limit: (requests waiting, requests being served)."""
        return {name: (service.gate.waiting, service.gate.active) for name, service in self._services.items()
                if service.gate.limit is not None}

    def __len__(self) -> int:
        return len(self._services)
