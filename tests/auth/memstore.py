"""An in-memory Store for unit tests (same contract as FileStore)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator

from crossroads.credentials.base import Change, Conflict, Record, StoreError


class MemoryStore:
    def __init__(self, *records: Record) -> None:
        self.records: dict[str, Record] = {}
        self.puts = 0
        self.fail_puts = False
        self._version = 0
        for record in records:
            self._store(record)

    def _store(self, record: Record) -> Record:
        self._version += 1
        stored = Record(record.id, copy.deepcopy(record.data), self._version)
        self.records[record.id] = stored
        return Record(stored.id, copy.deepcopy(stored.data), stored.version)

    async def list(self) -> list[Record]:
        return [Record(r.id, copy.deepcopy(r.data), r.version) for r in self.records.values()]

    async def get(self, record_id: str) -> Record | None:
        await asyncio.sleep(0)
        found = self.records.get(record_id)
        return None if found is None else Record(found.id, copy.deepcopy(found.data), found.version)

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        await asyncio.sleep(0)
        if self.fail_puts:
            raise StoreError(f"credential {record.id!r}: disk full")
        current = self.records.get(record.id)
        if expected_version is not None and (current.version if current else 0) != expected_version:
            raise Conflict(f"credential {record.id!r} changed meanwhile")
        self.puts += 1
        return self._store(record)

    async def delete(self, record_id: str) -> None:
        self.records.pop(record_id, None)

    async def watch(self) -> AsyncIterator[Change]:
        if False:
            yield Change("put", "")

    async def read_config(self) -> str | None:
        return None

    async def write_config(self, text: str) -> None:
        return None

    async def close(self) -> None:
        return None
