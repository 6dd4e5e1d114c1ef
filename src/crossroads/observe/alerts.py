"""Alerts to webhooks: an account needs a new login, a pool has no account
left, a side service goes down or comes back, a client key's budget is
nearly spent.

Off without ``alerts.webhooks`` (its task only waits). On, a background task looks
every ``check-interval`` at the facts the runtime hands over (credentials,
side services, budgets) and sends what the observer raised from finished
requests (a pool with no account); the request path only appends to a list.

Guarantees:
- deduplicated: an alert's key is claimed in ``<logs-dir>/alerts-state.json``
  (under a file lock, so every worker of a server shares it) and the same key
  is not sent again within ``repeat-after``; a condition that clears (a login
  done, a service back) forgets its key, so the next occurrence alerts again;
- rate-limited: at most ``max-per-minute`` alerts per webhook (per process);
  the rest are dropped and counted in the log;
- bodies are generic JSON, or Slack's and Discord's incoming-webhook shapes;
  their text is masked like every log line, and a webhook's URL (which may
  hold a token) is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from crossroads.observe.redact import Text
from crossroads.observe.usage_sql import Query
from crossroads.observe.usage_store import UsageStore
from crossroads.opsconfig import AlertSettings, Webhook
from crossroads.record import RequestRecord

try:
    import fcntl
except ImportError:  # Windows: one process, no lock needed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("crossroads.alerts")
STATE_FILE = "alerts-state.json"
SEND_TIMEOUT = 10.0
MAX_QUEUED = 100
NO_ACCOUNT_CODES = frozenset({"all_accounts_cooling", "no_available_account"})


@dataclass(frozen=True, slots=True)
class Alert:
    event: str  # opsconfig.ALERT_EVENTS
    key: str  # what deduplicates it
    title: str
    text: str
    severity: str  # critical | warning | info
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Budget:
    client: str  # the key's name, or the key masked (as the usage database has it)
    tokens: int
    start: float  # the period, epoch seconds
    end: float


@dataclass(slots=True)
class Facts:
    """What the runtime knows that alerts watch."""

    needs_login: list[tuple[str, str]] = field(default_factory=list)  # (credential id, type)
    services: list[dict[str, Any]] = field(default_factory=list)  # side services' reports
    budgets: list[Budget] = field(default_factory=list)


class Alerts:
    def __init__(self, settings: Callable[[], AlertSettings], state_dir: Callable[[], Path],
                 redactor: Callable[[], Text], usage: UsageStore) -> None:
        self._settings = settings
        self._state_dir = state_dir
        self._redactor = redactor
        self._usage = usage
        self.facts: Callable[[], Facts] | None = None  # set by the runtime
        self._queue: list[Alert] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._services: dict[str, str] = {}  # name -> state last seen
        self._needing_login: set[str] = set()
        self._sent: dict[int, deque[float]] = {}  # webhook index -> send times in the last minute
        self._dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self._settings().webhooks)

    # ---------------------------------------------------------------- raised by the observer

    def request_finished(self, record: RequestRecord) -> None:
        """A request the pool could not serve at all raises ``no-account``."""
        error = record.error
        if error is None or error.code not in NO_ACCOUNT_CODES or not self.enabled:
            return
        model = record.model or "?"
        self.raise_alert(Alert("no-account", f"no-account:{model}", f"No account available for {model}",
                               error.message, "critical", {"model": model, "status": error.status,
                                                           "request_id": record.request_id}))

    def raise_alert(self, alert: Alert) -> None:
        if len(self._queue) < MAX_QUEUED:
            self._queue.append(alert)
        if self._wake is not None:
            self._wake.set()

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="crossroads-alerts")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue and self.enabled:  # raised just before shutdown: worth a last try
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send_queued(), SEND_TIMEOUT)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings().check_interval)
            self._wake.clear()
            if not self.enabled:
                self._queue.clear()
                continue
            try:
                for alert in await self.check():
                    self.raise_alert(alert)
                await self._send_queued()
            except Exception:
                log.exception("alerts: checking or sending failed")

    async def _send_queued(self) -> None:
        queued, self._queue = self._queue, []
        for alert in queued:
            await self._deliver(alert)

    # ---------------------------------------------------------------- watching

    async def check(self) -> list[Alert]:
        facts = self.facts() if self.facts is not None else Facts()
        found: list[Alert] = []
        needing = {record_id for record_id, _ in facts.needs_login}
        for record_id, kind in facts.needs_login:
            found.append(Alert("needs-login", f"needs-login:{record_id}", f"Account {record_id} needs a new login",
                               f"The {kind} account {record_id} can no longer refresh its token; log in again "
                               "(crossroads login, or Add account in the dashboard).", "critical",
                               {"account": record_id, "type": kind}))
        for record_id in self._needing_login - needing:
            await self._forget(f"needs-login:{record_id}")
        self._needing_login = needing
        for service in facts.services:
            name, state = str(service.get("name")), str(service.get("state"))
            before = self._services.get(name)
            self._services[name] = state
            if state == "down" and before != "down":
                await self._forget(f"service-up:{name}")
                found.append(Alert("service-down", f"service-down:{name}", f"Side service {name} is down",
                                   str(service.get("reason") or "it does not answer"), "warning",
                                   {"service": name}))
            elif state == "up" and before == "down":
                await self._forget(f"service-down:{name}")
                found.append(Alert("service-up", f"service-up:{name}", f"Side service {name} is back up",
                                   f"{name} answers again.", "info", {"service": name}))
        if facts.budgets and any("budget" in hook.events for hook in self._settings().webhooks):
            found += await self._budgets(facts.budgets)
        return found

    async def _budgets(self, budgets: list[Budget]) -> list[Alert]:
        if not self._usage.available:
            return []
        threshold = self._settings().budget_threshold
        await self._usage.flush()
        found = []
        for budget in budgets:
            rows = await self._usage.db.grouped(Query(since=budget.start, until=budget.end, groups=("key",),
                                                      client=budget.client))
            spent = sum(r["input_tokens"] + r["output_tokens"] for r in rows)
            if budget.tokens and spent >= threshold * budget.tokens:
                renews = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(budget.end))
                share = min(100, round(100 * spent / budget.tokens))
                found.append(Alert("budget", f"budget:{budget.client}:{int(budget.start)}",
                                   f"Client key {budget.client} has used {share}% of its budget",
                                   f"{spent} of {budget.tokens} tokens this period; it renews at {renews}.",
                                   "warning", {"key": budget.client, "spent": spent, "budget": budget.tokens}))
        return found

    # ---------------------------------------------------------------- sending

    async def _deliver(self, alert: Alert) -> None:
        settings = self._settings()
        hooks = [(n, hook) for n, hook in enumerate(settings.webhooks) if alert.event in hook.events]
        if not hooks or not await self._claim(alert.key, settings.repeat_after):
            return
        redact = self._redactor()
        alert = Alert(alert.event, alert.key, redact(alert.title), redact(alert.text), alert.severity,
                      alert.details)
        now = time.monotonic()
        for n, hook in hooks:
            sent = self._sent.setdefault(n, deque())
            while sent and now - sent[0] > 60:
                sent.popleft()
            if len(sent) >= settings.max_per_minute:
                self._dropped += 1
                log.warning("alerts: webhook #%d sent %d alerts this minute; dropped %r (%d dropped so far)",
                            n, len(sent), alert.title, self._dropped)
                continue
            sent.append(now)
            await self._post(n, hook, alert)

    async def _post(self, index: int, hook: Webhook, alert: Alert) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT))
        try:
            async with self._session.post(hook.url, json=body(hook.format, alert), headers=dict(hook.headers)) as reply:
                if reply.status >= 300:
                    log.warning("alerts: webhook #%d answered %d to %r", index, reply.status, alert.title)
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alerts: webhook #%d could not be reached (%s); %r not sent", index,
                        type(exc).__name__, alert.title)
            return
        log.info("alerts: sent %r to webhook #%d", alert.title, index)

    # ---------------------------------------------------------------- shared dedupe state

    async def _claim(self, key: str, repeat_after: float) -> bool:
        return await asyncio.to_thread(self._update_state, key, repeat_after)

    async def _forget(self, key: str) -> None:
        await asyncio.to_thread(self._update_state, key, None)

    def _update_state(self, key: str, repeat_after: float | None) -> bool:
        """Claim ``key`` (True: not sent within ``repeat_after``, now marked
        sent) or, with None, forget it; under a lock every worker shares."""
        directory = self._state_dir()
        path = directory / STATE_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / f".{STATE_FILE}.lock", "a") as lock:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    state = json.loads(path.read_text()) if path.exists() else {}
                except (OSError, ValueError):
                    state = {}
                now = time.time()
                if repeat_after is None:
                    if state.pop(key, None) is None:
                        return False
                elif now - float(state.get(key, 0)) < repeat_after:
                    return False
                else:
                    state[key] = now
                state = {k: v for k, v in state.items() if now - float(v) < 7 * 86400}
                temp = path.with_name(f".{STATE_FILE}.{os.getpid()}")
                temp.write_text(json.dumps(state))
                os.replace(temp, path)
                return True
        except OSError as exc:  # no shared state: send rather than stay silent
            log.warning("alerts: cannot use %s (%s); alerts are not deduplicated across workers", path, exc)
            return repeat_after is not None


def body(form: str, alert: Alert) -> dict[str, Any]:
    """The webhook body: generic JSON, or Slack's or Discord's incoming-webhook shape."""
    if form == "slack":
        return {"text": f"*{alert.title}*\n{alert.text}"}
    if form == "discord":
        return {"content": f"**{alert.title}**\n{alert.text}"[:2000], "allowed_mentions": {"parse": []}}
    return {"source": "crossroads", "event": alert.event, "severity": alert.severity, "title": alert.title,
            "text": alert.text, "details": alert.details,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
