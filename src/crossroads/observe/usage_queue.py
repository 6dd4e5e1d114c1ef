"""CLIProxyAPI's usage queue: the newest model requests held in memory for a
while (``redis-usage-queue-retention-seconds``, 60 by default, at most an
hour) for a local consumer to pop with ``GET /v0/management/usage-queue``.

Each worker holds its own queue (a pop drains the worker that answers it);
the usage database, which every worker shares, is the record to rely on.
Adding costs one append: the rows are shaped only when they are popped."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crossroads.observe.usage_sql import UsageRow

MAX_HELD = 10_000
DEFAULT_RETENTION = 60.0
MAX_RETENTION = 3600.0


class UsageQueue:
    def __init__(self, retention: Callable[[], float]) -> None:
        self._retention = retention
        self._held: deque[tuple[float, UsageRow, str, bool]] = deque(maxlen=MAX_HELD)

    def add(self, row: UsageRow, path: str, stream: bool) -> None:
        self._held.append((time.monotonic(), row, path, stream))

    def pop(self, count: int) -> list[dict[str, Any]]:
        """The oldest ``count`` rows still within the retention, removed."""
        held = self._held
        oldest = time.monotonic() - min(MAX_RETENTION, max(1.0, self._retention()))
        while held and held[0][0] < oldest:
            held.popleft()
        return [record(*held.popleft()[1:]) for _ in range(min(count, len(held)))]


def retention_of(raw: dict[str, Any]) -> float:
    """``redis-usage-queue-retention-seconds`` from a config mapping (bad values: the default)."""
    value = raw.get("redis-usage-queue-retention-seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return DEFAULT_RETENTION
    return float(value)


def record(row: UsageRow, path: str, stream: bool) -> dict[str, Any]:
    """One row in the shape CLIProxyAPI's queue hands out."""
    tokens = {"input_tokens": row.input_tokens or 0, "output_tokens": row.output_tokens or 0,
              "reasoning_tokens": row.reasoning_tokens or 0, "cached_tokens": row.cached_tokens or 0,
              "cache_read_tokens": row.cached_tokens or 0,
              "total_tokens": (row.input_tokens or 0) + (row.output_tokens or 0)}
    return {"timestamp": datetime.fromtimestamp(row.ts, UTC).isoformat().replace("+00:00", "Z"),
            "latency_ms": round(row.latency_ms), "ttft_ms": round(row.ttft_ms or 0), "source": row.account or "",
            "auth_index": row.account or "", "tokens": tokens, "failed": row.failed, "stream": stream,
            "fail": {"status_code": row.status, "body": ""}, "provider": row.provider or "unknown",
            "model": row.served_model or row.model or "unknown", "alias": row.model or "unknown",
            "endpoint": path, "api_key": row.client, "request_id": row.request_id}
