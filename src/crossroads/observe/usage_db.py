"""Where usage rows live: an SQLite file (the default; every worker of a
server opens the same file, in WAL mode) or PostgreSQL (shared by replicas).
Both speak the SQL of :mod:`usage_sql`; SQLite runs in a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from crossroads.observe import usage_sql as sql
from crossroads.observe.usage_sql import Query, UsageRow


class UsageDatabase(Protocol):
    where: str  # for messages: the file or the server

    async def open(self) -> None: ...
    async def write(self, rows: list[UsageRow]) -> None: ...
    async def grouped(self, query: Query, served_only: bool = False) -> list[dict[str, Any]]: ...
    async def rows(self, query: Query, limit: int | None = None, newest_first: bool = False) -> list[UsageRow]: ...
    async def hour_of_day(self, query: Query) -> list[tuple[str, int, int]]: ...
    async def prune(self, before: float) -> int: ...
    async def close(self) -> None: ...


_TOKENS = "COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)"


OPEN_PATIENCE = 10.0  # seconds of retrying a locked open
OPEN_PAUSE = 0.05  # seconds between tries, doubled at most by the jitter


class SQLiteUsage:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self.dialect = sql.Dialect()
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        """Workers (``--workers N``) open the same file at the same moment. Switching a new file to WAL
        takes a lock SQLite does not wait for, so a worker that finds it taken tries again shortly."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + OPEN_PATIENCE  # a file some other program keeps locked: give up, as before
        while True:
            try:
                self._db = self._connect()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(OPEN_PAUSE * (1 + random.random()))  # apart, so the workers do not meet again

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("BEGIN IMMEDIATE")  # the schema in one writer's transaction: the other waits its turn
            for statement in self.dialect.ddl(sql.TABLE):
                db.execute(statement)
            for name, kind in sql.ADDED:
                with contextlib.suppress(sqlite3.OperationalError):  # "duplicate column name": there already
                    db.execute(self.dialect.add_column(sql.TABLE, name, kind))
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    def _run(self, statement: str, params: Any = (), many: bool = False) -> list[tuple[Any, ...]]:
        if self._db is None:
            self._open()
        assert self._db is not None
        with self._lock:
            if many:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(statement, params)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return []
            return self._db.execute(statement, params).fetchall()

    async def write(self, rows: list[UsageRow]) -> None:
        await asyncio.to_thread(self._run, sql.insert_sql(self.dialect, sql.TABLE), map(UsageRow.values, rows), True)

    async def grouped(self, query: Query, served_only: bool = False) -> list[dict[str, Any]]:
        statement, params = sql.grouped_sql(self.dialect, sql.TABLE, query, served_only)
        return sql.grouped_rows(query, await asyncio.to_thread(self._run, statement, params))

    async def rows(self, query: Query, limit: int | None = None, newest_first: bool = False) -> list[UsageRow]:
        statement, params = sql.rows_sql(self.dialect, sql.TABLE, query, limit, newest_first)
        return [sql.to_row(r) for r in await asyncio.to_thread(self._run, statement, params)]

    async def hour_of_day(self, query: Query) -> list[tuple[str, int, int]]:
        condition, params = sql.where(query)
        statement = (f"SELECT {self.dialect.hour_of_day()} AS h, COUNT(*), SUM({_TOKENS}) FROM {sql.TABLE} "
                     f"WHERE {condition} GROUP BY h ORDER BY h")
        return [(h, int(n), int(t or 0)) for h, n, t in await asyncio.to_thread(self._run, statement, params)]

    async def prune(self, before: float) -> int:
        def delete() -> int:
            self._run(f"DELETE FROM {sql.TABLE} WHERE ts < ?", (before,))
            assert self._db is not None
            return int(self._db.execute("SELECT changes()").fetchone()[0])

        return await asyncio.to_thread(delete)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)


class PostgresUsage:
    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.table = f'"{schema}".{sql.TABLE}'
        self.schema = schema
        self.where = "PostgreSQL"
        self.dialect = sql.PostgresDialect()
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
        async with self._pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for statement in self.dialect.ddl(self.table):
                await connection.execute(statement)
            for name, kind in sql.ADDED:
                await connection.execute(self.dialect.add_column(self.table, name, kind))

    async def write(self, rows: list[UsageRow]) -> None:
        await self._pool.executemany(sql.insert_sql(self.dialect, self.table), [r.values() for r in rows])

    async def grouped(self, query: Query, served_only: bool = False) -> list[dict[str, Any]]:
        statement, params = sql.grouped_sql(self.dialect, self.table, query, served_only)
        return sql.grouped_rows(query, [tuple(r) for r in await self._pool.fetch(statement, *params)])

    async def rows(self, query: Query, limit: int | None = None, newest_first: bool = False) -> list[UsageRow]:
        statement, params = sql.rows_sql(self.dialect, self.table, query, limit, newest_first)
        return [sql.to_row(tuple(r)) for r in await self._pool.fetch(statement, *params)]

    async def hour_of_day(self, query: Query) -> list[tuple[str, int, int]]:
        condition, params = sql.where(query)
        statement = self.dialect.placeholders(
            f"SELECT {self.dialect.hour_of_day()} AS h, COUNT(*), SUM({_TOKENS}) FROM {self.table} "
            f"WHERE {condition} GROUP BY h ORDER BY h")
        return [(r[0], int(r[1]), int(r[2] or 0)) for r in await self._pool.fetch(statement, *params)]

    async def prune(self, before: float) -> int:
        result = await self._pool.execute(f"DELETE FROM {self.table} WHERE ts < $1", before)
        return int(str(result).rsplit(" ", 1)[-1] or 0)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
