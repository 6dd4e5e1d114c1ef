"""PostgreSQL store (asyncpg).

Tables as CLIProxyAPI names them, so one database serves both during a move:
``auth_store(id, content JSONB, ...)`` and ``config_store(id, content TEXT, ...)``.
Crossroads adds a ``version`` column to ``auth_store``; a trigger bumps it on
every update, whoever makes it, so a put with ``expected_version`` is a
compare-and-set (no lost updates). Another trigger sends ``NOTIFY`` on every
change: each replica's ``watch()`` sees it at once.

Rows are keyed like files (``claude-user@example.com.json``); record ids are
the stems.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from crossroads.credentials.base import Change, Conflict, CorruptRecord, Record, StoreError, check_id

log = logging.getLogger("crossroads.credentials")

SUFFIX = ".json"
CONFIG_ID = "config"
Records = list[Record]


def _schema_ddl(schema: str, channel: str) -> str:
    s = f'"{schema}"'
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.config_store (
  id TEXT PRIMARY KEY, content TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {s}.auth_store (
  id TEXT PRIMARY KEY, content JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
ALTER TABLE {s}.auth_store ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 1;
CREATE OR REPLACE FUNCTION {s}.crossroads_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := OLD.version + 1;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER crossroads_bump_version BEFORE UPDATE ON {s}.auth_store
  FOR EACH ROW EXECUTE FUNCTION {s}.crossroads_bump_version();
CREATE OR REPLACE FUNCTION {s}.crossroads_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'config_store' THEN
    PERFORM pg_notify('{channel}', 'config');
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('{channel}', 'delete:' || OLD.id);
  ELSE
    PERFORM pg_notify('{channel}', 'put:' || NEW.id);
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER crossroads_notify AFTER INSERT OR UPDATE OR DELETE ON {s}.auth_store
  FOR EACH ROW EXECUTE FUNCTION {s}.crossroads_notify();
CREATE OR REPLACE TRIGGER crossroads_notify AFTER INSERT OR UPDATE OR DELETE ON {s}.config_store
  FOR EACH ROW EXECUTE FUNCTION {s}.crossroads_notify();
"""


class PostgresStore:
    def __init__(self, dsn: str, schema: str = "public", *, resync_interval: float = 30.0) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", schema):
            raise StoreError(f"invalid PostgreSQL schema name {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.channel = f"crossroads_{schema}".lower()
        self.resync_interval = resync_interval
        self.problems: dict[str, str] = {}
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._auth = f'"{schema}".auth_store'
        self._config = f'"{schema}".config_store'

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
                except (OSError, asyncpg.PostgresError) as exc:
                    raise StoreError(f"cannot connect to PostgreSQL store: {exc}") from None
                async with pool.acquire() as conn, conn.transaction():
                    # Replicas starting together must not race on CREATE ... IF NOT EXISTS.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('crossroads-store-schema'))")
                    await conn.execute(_schema_ddl(self.schema, self.channel))
                self._pool = pool
        assert self._pool is not None
        return self._pool

    # -- records --------------------------------------------------------------------

    async def list(self) -> Records:
        pool = await self._ready()
        rows = await pool.fetch(f"SELECT id, content::text AS content, version FROM {self._auth} ORDER BY id")
        records: Records = []
        problems: dict[str, str] = {}
        for row in rows:
            try:
                records.append(_record(row))
            except CorruptRecord as exc:
                problems[exc.record_id] = exc.cause
                log.error("%s; the other accounts still load", exc)
        self.problems = problems
        return records

    async def get(self, record_id: str) -> Record | None:
        check_id(record_id)
        pool = await self._ready()
        row = await pool.fetchrow(f"SELECT id, content::text AS content, version FROM {self._auth} WHERE id = $1",
                                  record_id + SUFFIX)
        return None if row is None else _record(row)

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        check_id(record.id)
        pool = await self._ready()
        key = record.id + SUFFIX
        content = orjson.dumps(record.data).decode()
        if expected_version is None:
            version = await pool.fetchval(
                f"INSERT INTO {self._auth} (id, content) VALUES ($1, $2::jsonb) "
                "ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content RETURNING version", key, content)
        elif expected_version == 0:
            version = await pool.fetchval(
                f"INSERT INTO {self._auth} (id, content) VALUES ($1, $2::jsonb) "
                "ON CONFLICT (id) DO NOTHING RETURNING version", key, content)
        else:
            version = await pool.fetchval(
                f"UPDATE {self._auth} SET content = $2::jsonb WHERE id = $1 AND version = $3 RETURNING version",
                key, content, expected_version)
        if version is None:
            raise Conflict(f"credential {record.id!r} changed meanwhile (expected version {expected_version})")
        return Record(record.id, record.data, int(version))

    async def delete(self, record_id: str) -> None:
        check_id(record_id)
        pool = await self._ready()
        await pool.execute(f"DELETE FROM {self._auth} WHERE id = $1", record_id + SUFFIX)

    # -- config -----------------------------------------------------------------------

    async def read_config(self) -> str | None:
        pool = await self._ready()
        value = await pool.fetchval(f"SELECT content FROM {self._config} WHERE id = $1", CONFIG_ID)
        return None if value is None else str(value)

    async def write_config(self, text: str) -> None:
        pool = await self._ready()
        await pool.execute(
            f"INSERT INTO {self._config} (id, content) VALUES ($1, $2) "
            "ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, updated_at = now() "
            f"WHERE {self._config}.content IS DISTINCT FROM EXCLUDED.content", CONFIG_ID, text)

    # -- watching ------------------------------------------------------------------------

    async def watch(self) -> AsyncIterator[Change]:
        await self._ready()
        queue: asyncio.Queue[str] = asyncio.Queue()
        known = {r.id: r.version for r in await self.list()}
        conn: Any = None
        try:
            while True:
                if conn is None or conn.is_closed():
                    conn = await self._listen(queue)
                    if conn is None:
                        await asyncio.sleep(1.0)
                        continue
                    async for change in self._resync(known):  # catch up on what was missed
                        yield change
                try:
                    payload = await asyncio.wait_for(queue.get(), timeout=self.resync_interval)
                except TimeoutError:
                    async for change in self._resync(known):
                        yield change
                    continue
                notified = await self._change_for(payload, known)
                if notified is not None:
                    yield notified
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _listen(self, queue: asyncio.Queue[str]) -> Any:
        try:
            conn = await asyncpg.connect(self.dsn)
            await conn.add_listener(self.channel, lambda _c, _pid, _ch, payload: queue.put_nowait(payload))
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("PostgreSQL store: cannot listen for changes (%s); retrying", exc)
            return None
        return conn

    async def _change_for(self, payload: str, known: dict[str, int]) -> Change | None:
        if payload == "config":
            return Change("config", CONFIG_ID)
        op, _, key = payload.partition(":")
        record_id = key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key
        if op == "delete":
            known.pop(record_id, None)
            self.problems.pop(record_id, None)
            return Change("delete", record_id)
        try:
            record = await self.get(record_id)
        except CorruptRecord as exc:
            self.problems[record_id] = exc.cause
            log.error("%s; the running copy (if any) stays in use", exc)
            return None
        except StoreError:
            return None
        if record is None or known.get(record_id) == record.version:
            return None
        known[record_id] = record.version
        self.problems.pop(record_id, None)
        return Change("put", record_id, record)

    async def _resync(self, known: dict[str, int]) -> AsyncIterator[Change]:
        try:
            records = await self.list()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("PostgreSQL store: resync failed: %s", exc)
            return
        current = {r.id: r for r in records}
        for record_id in list(known.keys() - current.keys() - self.problems.keys()):
            del known[record_id]
            yield Change("delete", record_id)
        for record_id, record in current.items():
            if known.get(record_id) != record.version:
                known[record_id] = record.version
                yield Change("put", record_id, record)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _record(row: Any) -> Record:
    key = str(row["id"])
    record_id = key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key
    try:
        data = orjson.loads(row["content"])
    except orjson.JSONDecodeError as exc:
        raise CorruptRecord(record_id, f"row {key!r} does not hold JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CorruptRecord(record_id, f"row {key!r} must hold a JSON object, found {type(data).__name__}")
    return Record(record_id, data, int(row["version"]))
