"""Persistent usage: one row per request, written in batches off the hot path.

``add`` only appends to a list; a background task writes the list every
``flush-interval`` (or sooner when it grows long) and ``close`` writes what
is left, so a clean shutdown loses nothing. A failed write keeps the rows
for the next flush (up to ``MAX_PENDING``). Rows older than
``retention-days`` are deleted at start and every hour.

Every worker writes to the same database, so whichever answers a query
answers with the same totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from crossroads.observe.usage_db import PostgresUsage, SQLiteUsage, UsageDatabase
from crossroads.observe.usage_sql import GROUPS, Query, UsageRow
from crossroads.opsconfig import OpsSettings

log = logging.getLogger("crossroads.usage")

MAX_PENDING = 100_000
EAGER_FLUSH = 500  # rows: flush now rather than at the next tick
PRUNE_EVERY = 3600.0
DETAILS_LIMIT = 1000


def open_database(settings: OpsSettings) -> UsageDatabase:
    usage = settings.usage
    if usage.database == "postgres":
        assert usage.dsn is not None
        return PostgresUsage(usage.dsn, usage.schema)
    return SQLiteUsage(settings.usage_path())


class UsageStore:
    def __init__(self, settings: OpsSettings) -> None:
        self.settings = settings
        self.db = open_database(settings)
        self._pending: list[UsageRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._opened = False
        self._failing = False  # the last write failed (said once, and once more when it recovers)
        self._broken = False  # the database could not be opened: nothing is recorded

    def add(self, row: UsageRow) -> None:
        if self._broken:
            return
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            del pending[: len(pending) // 10]  # the database has been away for long: keep the newest
        pending.append(row)
        if len(pending) >= EAGER_FLUSH:
            self._wake.set()

    async def start(self) -> None:
        try:
            await self.db.open()
        except Exception:
            self._broken, self._pending = True, []
            raise
        self._opened = True
        await self._prune()
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._opened:
            await self.flush()
            await self.db.close()
            self._opened = False

    @property
    def available(self) -> bool:
        return self._opened

    async def flush(self) -> None:
        if not self._opened:
            self._pending.clear()  # no database: nothing to keep them for
            return
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await self.db.write(rows)
        except Exception as exc:
            if not self._failing:
                log.warning("usage: writing to %s failed (%s); rows are kept and retried", self.db.where, exc)
            self._failing = True
            self._pending[:0] = rows
            return
        if self._failing:
            log.info("usage: writing to %s works again", self.db.where)
            self._failing = False

    async def _run(self) -> None:
        last_prune = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.usage.flush_interval)
            self._wake.clear()
            await self.flush()
            if time.monotonic() - last_prune > PRUNE_EVERY:
                last_prune = time.monotonic()
                await self._prune()

    async def _prune(self) -> None:
        days = self.settings.usage.retention_days
        if days <= 0:
            return
        try:
            removed = await self.db.prune(time.time() - days * 86400)
        except Exception as exc:
            log.warning("usage: pruning %s failed: %s", self.db.where, exc)
            return
        if removed:
            log.info("usage: removed %d rows older than %g days", removed, days)


# ---------------------------------------------------------------- reading

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str | None, now: float | None = None) -> float | None:
    """Epoch seconds, an ISO date or time (UTC unless it says), or a span back
    from now ("24h", "7d", "30m"); ValueError otherwise."""
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        return now - float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {value!r} (use epoch seconds, 2026-12-01, 2026-12-01T10:00 or 24h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def make_query(since: str | None = None, until: str | None = None, group: str | None = None,
               **filters: str | None) -> Query:
    groups = tuple(g.strip() for g in (group or "").split(",") if g.strip())
    for name in groups:
        if name not in GROUPS:
            raise ValueError(f"unknown group {name!r}; use {', '.join(GROUPS)}")
    return Query(since=parse_time(since) or 0.0, until=parse_time(until), groups=groups,
                 client=filters.get("key"), account=filters.get("account"), model=filters.get("model"))


async def tables(db: UsageDatabase, query: Query) -> dict[str, dict[str, dict[str, int]]]:
    """Answered requests by key, account and model (the router's own report)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for table, group in (("by_key", "key"), ("by_account", "account"), ("by_model", "model")):
        rows = await db.grouped(replace(query, groups=(group,)), served_only=True)
        out[table] = {str(r[group]): {k: r[k] for k in ("requests", "input_tokens", "output_tokens",
                                                           "cached_tokens", "reasoning_tokens", "unreported")}
                      for r in rows}
    return out


async def cliproxy_usage(db: UsageDatabase, query: Query, details: int | None = DETAILS_LIMIT) -> dict[str, Any]:
    """CLIProxyAPI's ``/usage`` statistics (v6.9): totals, per key and model
    with request details (the newest ``details``; None: all), by day and hour of day."""
    per_model = await db.grouped(replace(query, groups=("key", "model")))
    per_day = await db.grouped(replace(query, groups=("day",)))
    recent = await db.rows(query, limit=details, newest_first=True)
    apis: dict[str, Any] = {}
    totals = {"total_requests": 0, "success_count": 0, "failure_count": 0, "total_tokens": 0}
    for r in per_model:
        tokens = r["input_tokens"] + r["output_tokens"]
        api = apis.setdefault(r["key"], {"total_requests": 0, "total_tokens": 0, "models": {}})
        api["total_requests"] += r["requests"]
        api["total_tokens"] += tokens
        api["models"][r["model"] or "unknown"] = {"total_requests": r["requests"], "total_tokens": tokens,
                                                  "details": []}
        totals["total_requests"] += r["requests"]
        totals["failure_count"] += r["failed"]
        totals["total_tokens"] += tokens
    totals["success_count"] = totals["total_requests"] - totals["failure_count"]
    for row in reversed(recent):
        model = apis.get(row.client, {}).get("models", {}).get(row.model or "unknown")
        if model is not None:
            model["details"].append(_detail(row))
    by_hour = await db.hour_of_day(query)
    usage = {**totals, "apis": apis,
             "requests_by_day": {r["day"]: r["requests"] for r in per_day},
             "requests_by_hour": {h: n for h, n, _ in by_hour},
             "tokens_by_day": {r["day"]: r["input_tokens"] + r["output_tokens"] for r in per_day},
             "tokens_by_hour": {h: t for h, _, t in by_hour}}
    return {"usage": usage, "failed_requests": totals["failure_count"]}


def _detail(row: UsageRow) -> dict[str, Any]:
    tokens = {"input_tokens": row.input_tokens or 0, "output_tokens": row.output_tokens or 0,
              "reasoning_tokens": row.reasoning_tokens or 0, "cached_tokens": row.cached_tokens or 0}
    return {"timestamp": datetime.fromtimestamp(row.ts, UTC).isoformat().replace("+00:00", "Z"),
            "latency_ms": round(row.latency_ms), "source": row.provider or "", "auth_index": row.account or "",
            "request_id": row.request_id,
            "tokens": {**tokens, "total_tokens": tokens["input_tokens"] + tokens["output_tokens"]},
            "failed": row.failed, "status_code": row.status}


def to_csv(items: list[dict[str, Any]]) -> str:
    if not items:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(items[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(items)
    return buffer.getvalue()
