"""Background work started with the server: loading stored credentials and
applying config/store changes without a restart (hot reload).

At start the selected store's records (and, for a database/git/S3 store, its
config document) are applied to the runtime. Then the store is watched (a
file dropped into auth-dir, a row changed by another replica, a git pull, an
S3 object) together with config.yaml, and every change is applied within
about a second. A change builds a new snapshot and swaps it in, so in-flight
requests and streams finish on what they started with, and the long-lived
state (limits, cursors, health) carries on.

A config that does not parse or validate is rejected with a message naming
the line, and nothing of it reaches the running server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import yaml

from crossroads import config as config_module
from crossroads.credentials.base import Change, Record, Store, problems_of
from crossroads.credentials.crypto import EncryptedStore
from crossroads.credentials.file import FileStore
from crossroads.credentials.select import open_store
from crossroads.runtime import Runtime

log = logging.getLogger("crossroads.reload")

CONFIG_POLL_SECONDS = 0.25
SETTLE_SECONDS = 0.05  # gather a burst of changes into one apply
STABLE_SECONDS = 0.3  # a config file is read again after this long and used only when both reads agree
STABLE_READS = 20  # a file still changing after this many reads is used as it stands (and vetted)


async def start(runtime: Runtime, config_path: str | None) -> list[asyncio.Task[None]]:
    """Open the store, load what the server needs at start and return the
    watcher tasks (with the background token refresher)."""
    store = open_store(runtime.config, config_path)
    runtime.store = store
    runtime.refresher.bind(store)  # refreshed tokens go to the store the server loaded them from
    reloader = Reloader(runtime, store, Path(config_path) if config_path else None)
    tasks = await reloader.start()
    tasks.append(asyncio.create_task(runtime.refresher.run(), name="crossroads-refresher"))
    return tasks


def _is_local(store: Store) -> bool:
    inner = store.inner if isinstance(store, EncryptedStore) else store
    return isinstance(inner, FileStore)


class Reloader:
    def __init__(self, runtime: Runtime, store: Store, config_path: Path | None) -> None:
        self.runtime = runtime
        self.store = store
        self.config_path = config_path
        self.records: dict[str, Record] = {}
        self.config = runtime.config  # the config applied last (records are applied with it)
        self.config_text_hash = ""
        self._dirty = asyncio.Event()

    async def start(self) -> list[asyncio.Task[None]]:
        self.records = {r.id: r for r in await self.store.list()}
        for record_id, cause in problems_of(self.store).items():
            log.error("credential %s not loaded: %s", record_id, cause)
        if _is_local(self.store):
            self.config_text_hash = _digest(await self.store.read_config())
        else:
            await self._adopt_store_config()
        self._apply(self.config)
        log.info("loaded %d credential(s) from %r", len(self.records), self.store)
        tasks = [asyncio.create_task(self._watch_store(), name="crossroads-store-watch"),
                 asyncio.create_task(self._applier(), name="crossroads-reload-apply")]
        if not _is_local(self.store) and self.config_path is not None:
            tasks.append(asyncio.create_task(self._watch_local_config(), name="crossroads-config-watch"))
        return tasks

    async def _adopt_store_config(self) -> None:
        """A database/git/S3 store holds the config: use it; seed it from the
        local file when it holds none yet."""
        text = await self.store.read_config()
        if text is None:
            if self.config_path is not None and self.config_path.exists():
                local = self.config_path.read_text(encoding="utf-8")
                await self.store.write_config(local)
                self.config_text_hash = _digest(local)
                log.info("store had no config: seeded it from %s", self.config_path)
            return
        cfg = self._parse(text, "config in the store")
        if cfg is not None:
            self.config = cfg
            self.config_text_hash = _digest(text)

    def _parse(self, text: str, source: str) -> config_module.Config | None:
        """The config in ``text`` if the running server may adopt it; otherwise
        None, with the reason (and its line) in the log."""
        try:
            if config_module.is_blank(text):
                raise config_module.ConfigError(
                    f"{source}: the file is empty (an editor in the middle of saving?); an empty config "
                    "is never applied")
            _check_encoding(text, source)
            cfg = config_module.parse(text, source=source)
            candidate = self.runtime.build(cfg)  # validates it; nothing live changes
            try:
                self.runtime.vet(candidate)
            except config_module.ConfigError as exc:
                if not candidate.unknown_keys:
                    raise
                raise config_module.ConfigError(f"{exc} (it has unknown keys: {', '.join(candidate.unknown_keys)}"
                                                " - a typo?)") from None
        except config_module.ConfigError as exc:
            log.error("config reload rejected, the running config stays: %s", with_line(str(exc), text))
            return None
        except Exception as exc:  # any other fault in a config is still the config's, not the store's
            log.error("config reload rejected, the running config stays: %s", with_line(
                f"{source}: {exc} ({type(exc).__name__})", text))
            return None
        if candidate.unknown_keys:
            log.warning("config from %s: unknown keys kept but ignored: %s", source,
                        ", ".join(candidate.unknown_keys))
        return cfg

    def _apply(self, cfg: config_module.Config) -> bool:
        try:
            self.runtime.apply(cfg, list(self.records.values()))
        except config_module.ConfigError as exc:
            log.error("config reload rejected, the running config stays: %s", exc)
            return False
        self.config = cfg
        return True

    async def _watch_store(self) -> None:
        while True:
            try:
                async for change in self.store.watch():
                    await self._on_change(change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store outage must not end hot reload for good
                log.warning("watching %r failed (%s); retrying in 1s", self.store, exc)
                await asyncio.sleep(1.0)

    async def _on_change(self, change: Change) -> None:
        if change.kind == "put" and change.record is not None:
            self.records[change.id] = change.record
            self._dirty.set()
        elif change.kind == "delete":
            if self.records.pop(change.id, None) is not None:
                self._dirty.set()
        elif change.kind == "config":
            await self._reload_config(await self._settled(self.store.read_config), self._config_source())

    async def _settled(self, read: Callable[[], Awaitable[str | None]], text: str | None = None) -> str | None:
        """The config text once two reads ``STABLE_SECONDS`` apart agree, so an
        editor's truncate-then-write is one change, not two."""
        if text is None:
            text = await read()
        for _ in range(STABLE_READS):
            await asyncio.sleep(STABLE_SECONDS)
            again = await read()
            if again == text:
                return text
            text = again
        return text

    def _config_source(self) -> str:
        if _is_local(self.store) and self.config_path is not None:
            return str(self.config_path)
        return "config in the store"

    async def _reload_config(self, text: str | None, source: str) -> bool:
        if text is None:
            return False
        digest = _digest(text)
        if digest == self.config_text_hash:
            return False
        cfg = self._parse(text, source)
        if cfg is None:
            self.config_text_hash = digest  # do not log the same rejection again
            return False
        if self._apply(cfg):
            self.config_text_hash = digest
            log.info("config reloaded from %s", source)
            return True
        return False

    async def _watch_local_config(self) -> None:
        """With a database/git/S3 store, an edit of the local config.yaml is
        applied here and written to the store for the other replicas."""
        assert self.config_path is not None
        path = self.config_path
        async for first in _poll_file(path):
            text = await self._settled(lambda: asyncio.to_thread(_read_text, path), first)
            if text is not None and await self._reload_config(text, str(path)):
                try:
                    await self.store.write_config(text)
                except Exception as exc:
                    log.error("could not write the new config to %r: %s", self.store, exc)

    async def _applier(self) -> None:
        try:
            while True:
                await self._dirty.wait()
                await asyncio.sleep(SETTLE_SECONDS)
                self._dirty.clear()
                if self._apply(self.config):
                    log.info("credentials reloaded: %d account record(s)", len(self.records))
        finally:
            with contextlib.suppress(Exception):
                await self.store.close()


async def _poll_file(path: Path) -> AsyncIterator[str]:
    def fingerprint() -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    seen = fingerprint()
    while True:
        await asyncio.sleep(CONFIG_POLL_SECONDS)
        now = fingerprint()
        if now == seen or now is None:
            continue
        seen = now
        text = _read_text(path)
        if text is not None:
            yield text


def _read_text(path: Path) -> str | None:
    """The file's text, bad bytes kept as surrogates for ``_check_encoding`` to report."""
    try:
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        log.error("cannot read %s: %s", path, exc)
        return None


def _check_encoding(text: str, source: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise config_module.ConfigError(f"{source}: line {line} is not valid UTF-8") from None


def _digest(text: str | None) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest() if text is not None else ""


_KEY_PATH = re.compile(r"(?<![\w-])([A-Za-z][\w-]*)((?:\[\d+\]|\.[A-Za-z][\w-]*)*)")
_STEP = re.compile(r"\[(\d+)\]|\.([A-Za-z][\w-]*)")


def with_line(message: str, text: str) -> str:
    """Add the line of the entry a schema error names (``claude-api-key[1].priority``
    or a top-level ``'port'``); YAML syntax errors carry their line already."""
    if re.search(r"\bline \d+", message):
        return message
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return message
    if not isinstance(root, yaml.MappingNode):
        return message
    found: tuple[int, int] | None = None  # (depth, line)
    for match in _KEY_PATH.finditer(message):
        located = _locate(root, match.group(1), match.group(2))
        if located is not None and (found is None or located[0] > found[0]):
            found = located
    return message if found is None else f"{message} (line {found[1]})"


def _locate(root: yaml.MappingNode, key: str, steps: str) -> tuple[int, int] | None:
    node = _child(root, key)
    if node is None:
        return None
    depth, line = 1, node.start_mark.line + 1
    for step in _STEP.finditer(steps):
        index, name = step.groups()
        if index is not None and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
        elif name is not None and isinstance(node, yaml.MappingNode) and (child := _child(node, name)) is not None:
            node = child
        else:
            break
        depth, line = depth + 1, node.start_mark.line + 1
    return depth, line


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for key_node, value in node.value:
        if str(key_node.value) == key:
            return value if isinstance(value, yaml.SequenceNode | yaml.MappingNode) else key_node
    return None
