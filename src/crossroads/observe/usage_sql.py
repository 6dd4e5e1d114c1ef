"""The usage table and its queries, for SQLite and PostgreSQL alike (the
dialects differ in placeholders and in how a time becomes a day or hour)."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

TABLE = "crossroads_usage"
COLUMNS = ("ts", "request_id", "client", "account", "provider", "model", "served_model", "input_tokens",
           "output_tokens", "cached_tokens", "reasoning_tokens", "status", "latency_ms", "ttft_ms", "failed")
# group name -> column (day/hour are computed, see Dialect.bucket)
GROUPS = {"key": "client", "account": "account", "model": "model", "served_model": "served_model",
          "provider": "provider", "status": "status", "day": "day", "hour": "hour"}
TOKEN_SUMS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")


@dataclass(slots=True)
class UsageRow:
    ts: float  # epoch seconds the request started
    request_id: str
    client: str  # the client key's name, or the key masked (never the key)
    account: str | None  # label of the account that served
    provider: str | None
    model: str | None  # as asked
    served_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None
    status: int
    latency_ms: float
    ttft_ms: float | None
    failed: bool

    def values(self) -> tuple[Any, ...]:
        return (self.ts, self.request_id, self.client, self.account, self.provider, self.model, self.served_model,
                self.input_tokens, self.output_tokens, self.cached_tokens, self.reasoning_tokens, self.status,
                self.latency_ms, self.ttft_ms, self.failed)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ts))
        return out


@dataclass(slots=True, frozen=True)
class Query:
    since: float = 0.0
    until: float | None = None
    groups: tuple[str, ...] = ()
    client: str | None = None
    account: str | None = None
    model: str | None = None


class Dialect:
    """SQLite's spelling; PostgreSQL's overrides what differs."""

    real = "REAL"
    text_type = "TEXT"

    def ddl(self, table: str) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {table} (ts {self.real} NOT NULL, request_id TEXT NOT NULL, "
            "client TEXT NOT NULL, account TEXT, provider TEXT, model TEXT, served_model TEXT, "
            "input_tokens BIGINT, output_tokens BIGINT, cached_tokens BIGINT, reasoning_tokens BIGINT, "
            f"status INTEGER NOT NULL, latency_ms {self.real} NOT NULL, ttft_ms {self.real}, "
            "failed BOOLEAN NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {table} (ts)",
        ]

    def bucket(self, name: str) -> str:
        fmt = "%Y-%m-%d" if name == "day" else "%Y-%m-%dT%H"
        return f"strftime('{fmt}', ts, 'unixepoch')"

    def hour_of_day(self) -> str:
        return "strftime('%H', ts, 'unixepoch')"

    def placeholders(self, sql: str) -> str:
        return sql


class PostgresDialect(Dialect):
    real = "DOUBLE PRECISION"

    def bucket(self, name: str) -> str:
        fmt = "YYYY-MM-DD" if name == "day" else 'YYYY-MM-DD"T"HH24'
        return f"to_char(to_timestamp(ts) AT TIME ZONE 'UTC', '{fmt}')"

    def hour_of_day(self) -> str:
        return "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'HH24')"

    def placeholders(self, sql: str) -> str:
        parts = sql.split("?")
        return "".join(f"{part}${i}" if i < len(parts) else part for i, part in enumerate(parts, 1))


def insert_sql(dialect: Dialect, table: str) -> str:
    marks = ", ".join("?" for _ in COLUMNS)
    return dialect.placeholders(f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})")


def where(query: Query) -> tuple[str, list[Any]]:
    clauses: list[str] = ["ts >= ?"]
    params: list[Any] = [query.since]
    if query.until is not None:
        clauses.append("ts < ?")
        params.append(query.until)
    for column, value in (("client", query.client), ("account", query.account), ("model", query.model)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def grouped_sql(dialect: Dialect, table: str, query: Query, served_only: bool = False) -> tuple[str, list[Any]]:
    """One row per group: requests, failures, token sums, requests without
    usage, mean latency; ``served_only`` counts only answered requests."""
    columns = [dialect.bucket(g) if GROUPS[g] in ("day", "hour") else GROUPS[g] for g in query.groups]
    condition, params = where(query)
    if served_only:
        condition += " AND account IS NOT NULL AND status < 400"
    selected = [f"{c} AS g{i}" for i, c in enumerate(columns)]
    sums = [f"SUM({c})" for c in TOKEN_SUMS]
    sql = (f"SELECT {', '.join([*selected, 'COUNT(*)', 'SUM(CASE WHEN failed THEN 1 ELSE 0 END)', *sums])}, "
           "SUM(CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN 1 ELSE 0 END), AVG(latency_ms) "
           f"FROM {table} WHERE {condition}")
    if columns:
        order = ", ".join(f"g{i}" for i in range(len(columns)))
        sql += f" GROUP BY {order} ORDER BY {order}"
    return dialect.placeholders(sql), params


def grouped_rows(query: Query, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    width = len(query.groups)
    for row in rows:
        if not row[width]:
            continue  # an empty window has one row of NULLs
        item: dict[str, Any] = dict(zip(query.groups, row[:width], strict=True))
        requests, failed, *sums, unreported, latency = row[width:]
        item.update(requests=int(requests), failed=int(failed or 0),
                    **{name: int(value or 0) for name, value in zip(TOKEN_SUMS, sums, strict=True)},
                    unreported=int(unreported or 0),
                    mean_latency_ms=round(float(latency), 1) if latency is not None else None)
        out.append(item)
    return out


def rows_sql(dialect: Dialect, table: str, query: Query, limit: int | None,
             newest_first: bool = False) -> tuple[str, list[Any]]:
    condition, params = where(query)
    sql = (f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE {condition} "
           f"ORDER BY ts {'DESC' if newest_first else 'ASC'}")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return dialect.placeholders(sql), params


def to_row(values: tuple[Any, ...]) -> UsageRow:
    row = UsageRow(*values)
    row.failed = bool(row.failed)
    return row
