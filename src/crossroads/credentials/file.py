"""The default store: one JSON file per account in a folder (``auth-dir``).

A CLIProxyAPI ``~/.cli-proxy-api`` folder loads as it is: every ``*.json``
file is one record whose id is the file-name stem.

Writes are atomic and durable (temp file, fsync, rename, fsync of the folder)
with 0600 permissions, made under an exclusive ``flock`` on ``.crossroads.lock``
in the folder so that two processes on one machine never clobber each other.

A record's version is its file's modification time in nanoseconds: every
write here sets it to ``max(now, previous + 1)`` under the lock, so it grows
with each put and any other writer's edit changes it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson

from crossroads.credentials.base import Change, Conflict, CorruptRecord, Record, StoreError, check_id

log = logging.getLogger("crossroads.credentials")

LOCK_NAME = ".crossroads.lock"
SUFFIX = ".json"

Fingerprint = tuple[int, int, int]  # mtime_ns, size, inode
Records = list[Record]  # (inside the class, ``list`` names the method)


class FileStore:
    def __init__(self, directory: str | os.PathLike[str], config_path: str | os.PathLike[str] | None = None,
                 poll_interval: float = 0.25) -> None:
        self.directory = Path(directory).expanduser()
        self.config_path = Path(config_path).expanduser() if config_path is not None else None
        self.poll_interval = poll_interval
        self.problems: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"

    # -- reading ---------------------------------------------------------------

    async def list(self) -> list[Record]:
        return await asyncio.to_thread(self._list_sync)

    async def get(self, record_id: str) -> Record | None:
        check_id(record_id)
        return await asyncio.to_thread(self._read, self._path(record_id), record_id)

    def _list_sync(self) -> Records:
        records: Records = []
        problems: dict[str, str] = {}
        for record_id in sorted(self._scan()):
            try:
                record = self._read(self._path(record_id), record_id)
            except CorruptRecord as exc:
                problems[record_id] = exc.cause
                log.error("%s (file %s); the other accounts still load", exc, self._path(record_id))
                continue
            if record is not None:
                records.append(record)
        self.problems = problems
        return records

    def _scan(self) -> dict[str, Fingerprint]:
        found: dict[str, Fingerprint] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return found
        for entry in entries:
            name = entry.name
            if not name.endswith(SUFFIX) or name.startswith("."):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            if entry.is_file():
                found[name[: -len(SUFFIX)]] = (st.st_mtime_ns, st.st_size, st.st_ino)
        return found

    def _read(self, path: Path, record_id: str) -> Record | None:
        try:
            with path.open("rb") as handle:
                version = os.fstat(handle.fileno()).st_mtime_ns
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptRecord(record_id, f"cannot read {path}: {exc.strerror}") from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CorruptRecord(record_id, f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise CorruptRecord(record_id, f"{path} must hold a JSON object, found {type(data).__name__}")
        return Record(record_id, data, version or 1)

    # -- writing ---------------------------------------------------------------

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        check_id(record.id)
        if not isinstance(record.data, dict):
            raise StoreError(f"credential {record.id!r}: data must be a JSON object")
        payload = orjson.dumps(record.data, option=orjson.OPT_INDENT_2)
        version = await asyncio.to_thread(self._put_sync, record.id, payload, expected_version)
        return Record(record.id, record.data, version)

    def _put_sync(self, record_id: str, payload: bytes, expected_version: int | None) -> int:
        path = self._path(record_id)
        with self._locked():
            current = _version_of(path)
            if expected_version is not None and current != expected_version:
                raise Conflict(f"credential {record_id!r} changed meanwhile "
                               f"(stored version {current}, expected {expected_version})")
            return _write_atomically(path, payload, current)

    async def delete(self, record_id: str) -> None:
        check_id(record_id)
        await asyncio.to_thread(self._delete_sync, record_id)

    def _delete_sync(self, record_id: str) -> None:
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                self._path(record_id).unlink()
            _fsync_dir(self.directory)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _path(self, record_id: str) -> Path:
        return self.directory / f"{record_id}{SUFFIX}"

    # -- the config document ------------------------------------------------------

    async def read_config(self) -> str | None:
        if self.config_path is None:
            return None
        try:
            data = await asyncio.to_thread(self.config_path.read_bytes)
            return data.decode("utf-8", errors="surrogateescape")  # the reloader reports bad bytes by line
        except FileNotFoundError:
            return None

    async def write_config(self, text: str) -> None:
        if self.config_path is None:
            raise StoreError(f"{self!r} keeps no config document (no config path given)")
        path = self.config_path
        await asyncio.to_thread(lambda: _write_atomically(path, text.encode(), _version_of(path)))

    # -- watching ------------------------------------------------------------------

    async def watch(self) -> AsyncIterator[Change]:
        seen = await asyncio.to_thread(self._scan)
        config_seen = _fingerprint(self.config_path)
        while True:
            await asyncio.sleep(self.poll_interval)
            now = await asyncio.to_thread(self._scan)
            for record_id, print_ in now.items():
                if seen.get(record_id) == print_:
                    continue
                try:
                    record = await asyncio.to_thread(self._read, self._path(record_id), record_id)
                except CorruptRecord as exc:
                    self.problems[record_id] = exc.cause
                    log.error("%s; the running copy (if any) stays in use", exc)
                    continue
                self.problems.pop(record_id, None)
                if record is not None:
                    yield Change("put", record_id, record)
            for record_id in seen.keys() - now.keys():
                self.problems.pop(record_id, None)
                yield Change("delete", record_id)
            seen = now
            config_now = _fingerprint(self.config_path)
            if config_now != config_seen:
                config_seen = config_now
                yield Change("config", "config")

    async def close(self) -> None:
        return None


def _version_of(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns or 1
    except FileNotFoundError:
        return 0


def _fingerprint(path: Path | None) -> Fingerprint | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _write_atomically(path: Path, payload: bytes, previous_version: int) -> int:
    """temp + fsync + rename + fsync(dir); returns the new version (mtime ns)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    version = max(time.time_ns(), previous_version + 1)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    os.close(fd)
    try:
        os.utime(temp, ns=(version, version))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(path.parent)
    stored = path.stat().st_mtime_ns
    if stored <= previous_version:  # a file system with coarse timestamps
        stored = previous_version + 1_000_000_000
        os.utime(path, ns=(stored, stored))
    return stored


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
