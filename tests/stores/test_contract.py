"""The contract every store keeps, run against all four real backends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from crossroads.credentials.base import (
    Change,
    Conflict,
    CorruptRecord,
    Record,
    Store,
    StoreError,
    problems_of,
)
from crossroads.credentials.crypto import EncryptedStore, Key, Keyring, is_sealed, reencrypt_all, sealed_kids
from crossroads.credentials.file import FileStore
from crossroads.credentials.git import GitStore
from crossroads.credentials.postgres import PostgresStore
from crossroads.credentials.s3 import S3Store
from tests.stores.conftest import KINDS, SpecFor

OpenStore = Callable[[str], Store]

CLAUDE = {"type": "claude", "email": "ada@example.com", "access_token": "at-1", "refresh_token": "rt-1",
          "expired": "2030-01-01T00:00:00Z", "priority": 2}


def inner(store: Store) -> Store:
    assert isinstance(store, EncryptedStore)
    return store.inner


async def write_raw(store: Store, record_id: str, payload: bytes) -> None:
    """Put bytes where a record lives, bypassing the store's own checks."""
    raw = inner(store)
    if isinstance(raw, FileStore):
        raw.directory.mkdir(parents=True, exist_ok=True)
        (raw.directory / f"{record_id}.json").write_bytes(payload)
    elif isinstance(raw, PostgresStore):
        pool = await raw._ready()
        await pool.execute(f"INSERT INTO {raw._auth} (id, content) VALUES ($1, $2::jsonb)", record_id + ".json",
                           payload.decode())
    elif isinstance(raw, GitStore):
        async with raw._lock:
            await raw._ready()
            await raw._sync()
            target = raw.local / "auths" / f"{record_id}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
            assert await raw._commit_and_push([f"auths/{record_id}.json"], "raw write")
    elif isinstance(raw, S3Store):
        await raw._ready()
        reply = await raw.client.request("PUT", raw._path(f"auths/{record_id}.json"), body=payload)
        assert reply.status == 200
    else:
        raise AssertionError(raw)


async def read_raw(store: Store, record_id: str) -> dict[str, object]:
    record = await inner(store).get(record_id)
    assert record is not None
    return record.data


@pytest.mark.parametrize("kind", KINDS)
async def test_create_read_update_delete(kind: str, spec_for: SpecFor, open_store: OpenStore) -> None:
    store = open_store(spec_for(kind))
    assert await store.list() == []
    created = await store.put(Record("claude-ada@example.com", dict(CLAUDE)), expected_version=0)
    assert created.version > 0
    got = await store.get("claude-ada@example.com")
    assert got is not None and got.data == CLAUDE and got.version == created.version
    assert got.type == "claude"

    updated = await store.put(Record(got.id, {**CLAUDE, "priority": 5}), expected_version=got.version)
    assert updated.version != created.version
    with pytest.raises(Conflict):
        await store.put(Record(got.id, {**CLAUDE, "priority": 9}), expected_version=created.version)
    with pytest.raises(Conflict):
        await store.put(Record(got.id, CLAUDE), expected_version=0)
    listed = await store.list()
    assert [(r.id, r.data["priority"], r.version) for r in listed] == [(got.id, 5, updated.version)]

    await store.put(Record("codex-b", {"type": "codex", "access_token": "x"}))
    assert sorted(r.id for r in await store.list()) == ["claude-ada@example.com", "codex-b"]
    await store.delete("claude-ada@example.com")
    assert await store.get("claude-ada@example.com") is None
    assert [r.id for r in await store.list()] == ["codex-b"]
    with pytest.raises(StoreError):
        await store.put(Record("../escape", {"type": "x"}))


COUNTER_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from crossroads.credentials.base import Conflict, Record
    from crossroads.credentials.select import open_spec

    async def main(spec, rounds):
        store = open_spec(spec)
        conflicts = 0
        for _ in range(rounds):
            while True:
                current = await store.get("counter")
                try:
                    await store.put(Record("counter", {**current.data, "n": current.data["n"] + 1}),
                                    expected_version=current.version)
                    break
                except Conflict:
                    conflicts += 1
        await store.close()
        print(conflicts)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_updates_from_two_processes_lose_nothing(
        kind: str, spec_for: SpecFor, open_store: OpenStore, tmp_path: Path) -> None:
    spec = spec_for(kind)
    store = open_store(spec)
    await store.put(Record("counter", {"type": "claude", "n": 0}), expected_version=0)
    script = tmp_path / "counter.py"
    script.write_text(COUNTER_SCRIPT)
    rounds = 6
    procs = [await asyncio.create_subprocess_exec(sys.executable, str(script), spec, str(rounds),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [await p.communicate() for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    final = await store.get("counter")
    assert final is not None and final.data["n"] == 2 * rounds


@pytest.mark.parametrize("kind", KINDS)
async def test_rotated_refresh_token_is_persisted(kind: str, spec_for: SpecFor, open_store: OpenStore) -> None:
    spec = spec_for(kind)
    writer = open_store(spec)
    stored = await writer.put(Record("claude-ada", dict(CLAUDE)))
    rotated = {**stored.data, "access_token": "at-2", "refresh_token": "rt-2"}
    await writer.put(Record("claude-ada", rotated), expected_version=stored.version)
    # A later reader (e.g. after a crash and restart) sees the rotated token.
    reader = open_store(spec)
    again = await reader.get("claude-ada")
    assert again is not None and again.data["refresh_token"] == "rt-2" and again.data["access_token"] == "at-2"
    raw = inner(writer)
    if isinstance(raw, FileStore):
        path = raw.directory / "claude-ada.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in raw.directory.iterdir()) == [".crossroads.lock", "claude-ada.json"]


async def _collect(store: Store, into: list[Change]) -> None:
    async for change in store.watch():
        into.append(change)


async def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", KINDS)
async def test_second_instance_sees_changes(kind: str, spec_for: SpecFor, open_store: OpenStore) -> None:
    spec = spec_for(kind)
    first, second = open_store(spec), open_store(spec)
    await first.list()
    seen: list[Change] = []
    watcher = asyncio.create_task(_collect(second, seen))
    try:
        await asyncio.sleep(0.3)  # the watcher takes its first snapshot
        await first.put(Record("gemini-x", {"type": "gemini", "token": {"access_token": "t"}}))
        await _wait_for(lambda: any(c.kind == "put" and c.id == "gemini-x" for c in seen), 4.0)
        put = next(c for c in seen if c.kind == "put")
        assert put.record is not None and put.record.data["token"] == {"access_token": "t"}
        await first.delete("gemini-x")
        await _wait_for(lambda: any(c.kind == "delete" and c.id == "gemini-x" for c in seen), 4.0)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


@pytest.mark.parametrize("kind", KINDS)
async def test_encryption_at_rest_and_key_rotation(kind: str, spec_for: SpecFor, open_store: OpenStore) -> None:
    plain = open_store(spec_for(kind))
    raw = inner(plain)
    old, new = Key.generate(), Key.generate()
    with_old = EncryptedStore(raw, Keyring([old]))
    await with_old.put(Record("claude-ada", dict(CLAUDE)))
    await plain.put(Record("codex-plain", {"type": "codex", "access_token": "plain-at"}))  # no key: plaintext

    stored = await read_raw(plain, "claude-ada")
    assert is_sealed(stored["access_token"]) and is_sealed(stored["refresh_token"])
    assert sealed_kids(stored) == {old.kid}
    assert b"rt-1" not in orjson.dumps(stored) and stored["email"] == "ada@example.com"
    both = {r.id: r.data for r in await with_old.list()}
    assert both == {"claude-ada": CLAUDE, "codex-plain": {"type": "codex", "access_token": "plain-at"}}

    # A wrong key names the account, still loads the rest, and never overwrites.
    wrong = EncryptedStore(raw, Keyring([new]))
    assert [r.id for r in await wrong.list()] == ["codex-plain"]
    assert old.kid in wrong.problems["claude-ada"] and "not in the configured keyring" in wrong.problems["claude-ada"]
    with pytest.raises(CorruptRecord, match="claude-ada"):
        await wrong.get("claude-ada")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        await wrong.put(Record("claude-ada", {**CLAUDE, "refresh_token": "evil"}))
    assert await read_raw(plain, "claude-ada") == stored
    without_key = EncryptedStore(raw, None)
    await without_key.list()
    assert "no encryption key" in without_key.problems["claude-ada"]

    # Rotation: old + plaintext records end up under the new key; old key no longer needed.
    report = await reencrypt_all(raw, Keyring([new, old]))
    assert (report.rewritten, report.current, report.failed) == (2, 0, {})
    assert sealed_kids(await read_raw(plain, "claude-ada")) == {new.kid}
    assert sealed_kids(await read_raw(plain, "codex-plain")) == {new.kid}
    only_new = EncryptedStore(raw, Keyring([new]))
    assert {r.id: r.data for r in await only_new.list()} == both
    again = await reencrypt_all(raw, Keyring([new, old]))
    assert (again.rewritten, again.current) == (0, 2)


@pytest.mark.parametrize("kind", KINDS)
async def test_corrupt_record_is_named_and_others_still_load(
        kind: str, spec_for: SpecFor, open_store: OpenStore) -> None:
    store = open_store(spec_for(kind))
    await store.put(Record("claude-good", dict(CLAUDE)))
    await write_raw(store, "codex-broken", b'["not", "an", "object"]')
    records = await store.list()
    assert [r.id for r in records] == ["claude-good"]
    problems = problems_of(store)
    assert list(problems) == ["codex-broken"] and "JSON object" in problems["codex-broken"]
    with pytest.raises(CorruptRecord, match="codex-broken"):
        await store.get("codex-broken")
    if kind != "postgres":  # a JSONB column cannot hold broken JSON
        await write_raw(store, "gemini-truncated", b'{"type": "gemini", "tok')
        await store.list()
        assert "not valid JSON" in problems_of(store)["gemini-truncated"]
