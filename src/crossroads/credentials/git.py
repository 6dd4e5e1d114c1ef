"""Git store: a repository holding ``config/config.yaml`` and ``auths/*.json``
(CLIProxyAPI's gitstore layout).

Uses the ``git`` command (fetch/commit/push against any remote git speaks:
a local path, file://, ssh, https). Chosen over dulwich because every put must
be a fast-forward onto the remote's newest commit: the git CLI does fetch,
reset and non-forced push in a few milliseconds each and needs no merge code
of our own.

A put fetches, resets the local clone to the remote branch, checks the
expected version, commits and pushes without force. If the push is rejected
(another replica pushed meanwhile) it starts again from the new remote state,
so concurrent changes to other records are kept and a stale
``expected_version`` raises :class:`Conflict`. A record's version is the
number of commits that touched its file.

Credentials for https remotes (``username``/``token``) go in an HTTP header
passed through git's environment, never written to ``.git/config``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from crossroads.credentials.base import Change, Conflict, CorruptRecord, Record, StoreError, check_id

log = logging.getLogger("crossroads.credentials")

AUTHS = "auths"
CONFIG_FILE = "config/config.yaml"
SUFFIX = ".json"
PUSH_ATTEMPTS = 8
Records = list[Record]


class GitError(StoreError):
    pass


class GitStore:
    def __init__(self, url: str, local_path: str | os.PathLike[str] | None = None, *, branch: str = "main",
                 username: str | None = None, token: str | None = None,
                 poll_interval: float | None = None) -> None:
        self.url = url
        self.branch = branch
        self._own_dir = local_path is None
        self.local = Path(local_path).expanduser() if local_path else Path(tempfile.mkdtemp(prefix="crossroads-git-"))
        self.poll_interval = poll_interval if poll_interval is not None else (
            5.0 if "://" in url and not url.startswith("file://") else 1.0)
        self.problems: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._ready_done = False
        self._writer = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self._env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
                     "GIT_AUTHOR_NAME": "crossroads", "GIT_AUTHOR_EMAIL": "crossroads@localhost",
                     "GIT_COMMITTER_NAME": "crossroads", "GIT_COMMITTER_EMAIL": "crossroads@localhost"}
        if token:
            basic = base64.b64encode(f"{username or 'git'}:{token}".encode()).decode()
            self._env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                              "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})

    def __repr__(self) -> str:
        return f"GitStore(branch={self.branch!r})"

    # -- git plumbing -------------------------------------------------------------------

    async def _git(self, *args: str, check: bool = True, cwd: Path | None = None) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "git", *args, cwd=str(cwd or self.local), env=self._env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        code = proc.returncode or 0
        if check and code != 0:
            raise GitError(f"git {args[0]} failed: {err.decode(errors='replace').strip()[:500]}")
        return code, out.decode(errors="replace")

    async def _ready(self) -> None:
        if self._ready_done:
            return
        if not (self.local / ".git").exists():
            self.local.mkdir(parents=True, exist_ok=True, mode=0o700)
            await self._git("init", "--quiet", "-b", self.branch)
            await self._git("remote", "add", "origin", self.url)
        await self._sync()
        self._ready_done = True

    async def _sync(self) -> None:
        """Make the clone equal the remote branch (fetch + hard reset)."""
        code, _ = await self._git("fetch", "--quiet", "origin", self.branch, check=False)
        if code != 0:
            # An empty remote has no branch yet; anything else is a real failure.
            ls_code, refs = await self._git("ls-remote", "origin", check=False)
            if ls_code != 0:
                raise GitError(f"cannot reach git remote for the store (branch {self.branch!r})")
            if f"refs/heads/{self.branch}" in refs:
                await self._git("fetch", "--quiet", "origin", self.branch)
            else:
                return
        await self._git("reset", "--quiet", "--hard", "FETCH_HEAD")
        await self._git("clean", "--quiet", "-fdx")

    async def _has_head(self) -> bool:
        code, _ = await self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False)
        return code == 0

    async def _version(self, relpath: str) -> int:
        if not await self._has_head() or not (self.local / relpath).exists():
            return 0
        _, out = await self._git("rev-list", "--count", "HEAD", "--", relpath)
        return int(out.strip() or 0)

    async def _versions(self) -> dict[str, int]:
        if not await self._has_head():
            return {}
        _, out = await self._git("log", "--format=", "--name-only", "HEAD", "--", AUTHS)
        counts: dict[str, int] = {}
        for line in out.splitlines():
            if line:
                counts[line] = counts.get(line, 0) + 1
        return counts

    async def _blobs(self) -> dict[str, str]:
        if not await self._has_head():
            return {}
        _, out = await self._git("ls-tree", "-r", "HEAD", "--", AUTHS, CONFIG_FILE)
        blobs: dict[str, str] = {}
        for line in out.splitlines():
            meta, _, path = line.partition("\t")
            blobs[path] = meta.split()[2]
        return blobs

    async def _commit_and_push(self, relpaths: list[str], message: str) -> bool:
        """True when pushed (or nothing changed); False when the remote moved on."""
        for relpath in relpaths:
            # Stage by content, not by `git add`: a rewrite with the same size within the
            # same second (and a reused inode) looks unchanged to git's stat check.
            if (self.local / relpath).exists():
                _, blob = await self._git("hash-object", "-w", "--", relpath)
                await self._git("update-index", "--add", "--cacheinfo", f"100644,{blob.strip()},{relpath}")
            else:
                await self._git("update-index", "--force-remove", "--", relpath)
        unchanged, _ = await self._git("diff", "--cached", "--quiet", "--", *relpaths, check=False)
        if unchanged == 0:
            return True
        # The nonce keeps two replicas' identical edits of one parent from becoming the same
        # commit, which a push would accept as "already there": both would think they won.
        await self._git("commit", "--quiet", "--no-verify", "-m", message, "-m", f"writer: {self._writer}")
        code, _ = await self._git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", check=False)
        return code == 0

    # -- records -------------------------------------------------------------------------

    def _relpath(self, record_id: str) -> str:
        return f"{AUTHS}/{record_id}{SUFFIX}"

    def _read(self, record_id: str, version: int) -> Record | None:
        path = self.local / self._relpath(record_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CorruptRecord(record_id, f"{self._relpath(record_id)} in the git store is not valid JSON "
                                           f"({exc})") from None
        if not isinstance(data, dict):
            raise CorruptRecord(record_id, f"{self._relpath(record_id)} must hold a JSON object")
        return Record(record_id, data, version or 1)

    async def list(self) -> Records:
        async with self._lock:
            await self._ready()
            await self._sync()
            return await self._list_local()

    async def _list_local(self) -> Records:
        versions = await self._versions()
        records: Records = []
        problems: dict[str, str] = {}
        folder = self.local / AUTHS
        names = sorted(p.name for p in folder.glob("*" + SUFFIX)) if folder.is_dir() else []
        for name in names:
            record_id = name[: -len(SUFFIX)]
            try:
                record = self._read(record_id, versions.get(f"{AUTHS}/{name}", 0))
            except CorruptRecord as exc:
                problems[record_id] = exc.cause
                log.error("%s; the other accounts still load", exc)
                continue
            if record is not None:
                records.append(record)
        self.problems = problems
        return records

    async def get(self, record_id: str) -> Record | None:
        check_id(record_id)
        async with self._lock:
            await self._ready()
            await self._sync()
            return self._read(record_id, await self._version(self._relpath(record_id)))

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        check_id(record.id)
        relpath = self._relpath(record.id)
        payload = orjson.dumps(record.data, option=orjson.OPT_INDENT_2)
        async with self._lock:
            await self._ready()
            for _attempt in range(PUSH_ATTEMPTS):
                await self._sync()
                current = await self._version(relpath)
                if expected_version is not None and current != expected_version:
                    raise Conflict(f"credential {record.id!r} changed meanwhile "
                                   f"(stored version {current}, expected {expected_version})")
                _write_file(self.local / relpath, payload)
                if await self._commit_and_push([relpath], f"put {record.id}"):
                    return Record(record.id, record.data, await self._version(relpath))
            raise GitError(f"credential {record.id!r}: the git remote kept moving; gave up after "
                           f"{PUSH_ATTEMPTS} attempts")

    async def delete(self, record_id: str) -> None:
        check_id(record_id)
        relpath = self._relpath(record_id)
        async with self._lock:
            await self._ready()
            for _attempt in range(PUSH_ATTEMPTS):
                await self._sync()
                if not (self.local / relpath).exists():
                    return
                (self.local / relpath).unlink()
                if await self._commit_and_push([relpath], f"delete {record_id}"):
                    return
            raise GitError(f"credential {record_id!r}: the git remote kept moving; delete gave up")

    # -- config ----------------------------------------------------------------------------

    async def read_config(self) -> str | None:
        async with self._lock:
            await self._ready()
            await self._sync()
            try:
                return (self.local / CONFIG_FILE).read_text(encoding="utf-8")
            except FileNotFoundError:
                return None

    async def write_config(self, text: str) -> None:
        async with self._lock:
            await self._ready()
            for _attempt in range(PUSH_ATTEMPTS):
                await self._sync()
                _write_file(self.local / CONFIG_FILE, text.encode())
                if await self._commit_and_push([CONFIG_FILE], "update config"):
                    return
            raise GitError("config: the git remote kept moving; gave up")

    # -- watching ---------------------------------------------------------------------------

    async def watch(self) -> AsyncIterator[Change]:
        async with self._lock:
            await self._ready()
            await self._sync()
            seen = await self._blobs()
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                async with self._lock:
                    await self._sync()
                    now = await self._blobs()
                    changed = [p for p, blob in now.items() if seen.get(p) != blob]
                    versions = await self._versions() if changed else {}
            except GitError as exc:
                log.warning("git store: pull failed (%s); will retry", exc)
                continue
            for relpath in changed:
                if relpath == CONFIG_FILE:
                    yield Change("config", "config")
                    continue
                record_id = Path(relpath).name[: -len(SUFFIX)]
                try:
                    record = self._read(record_id, versions.get(relpath, 0))
                except CorruptRecord as exc:
                    self.problems[record_id] = exc.cause
                    log.error("%s; the running copy (if any) stays in use", exc)
                    continue
                if record is not None:
                    self.problems.pop(record_id, None)
                    yield Change("put", record_id, record)
            for relpath in seen.keys() - now.keys():
                if relpath == CONFIG_FILE:
                    yield Change("config", "config")
                else:
                    yield Change("delete", Path(relpath).name[: -len(SUFFIX)])
            seen = now

    async def close(self) -> None:
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.local)


def _write_file(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(temp, path)
