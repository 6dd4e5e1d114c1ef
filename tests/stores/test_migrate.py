"""`crossroads auth migrate` between every pair of stores, and `rotate-key`."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from crossroads.commands.store import migrate
from crossroads.credentials.base import Record, Store
from crossroads.credentials.crypto import EncryptedStore, read_key_file, sealed_kids
from tests.stores.conftest import KINDS, SpecFor

OpenStore = Callable[[str], Store]
CONFIG = "port: 8400\napi-keys: [k1]\n"
RECORDS = [
    Record("claude-a@example.com", {"type": "claude", "email": "a@example.com", "refresh_token": "rt-a"}),
    Record("codex-b", {"type": "codex", "access_token": "at-b", "account_id": "acc-1"}),
    Record("gemini-c", {"type": "gemini", "token": {"refresh_token": "rt-c"}, "project_id": "p"}),
]


@pytest.mark.parametrize(("source_kind", "target_kind"),
                         [p for p in itertools.product(KINDS, KINDS) if p[0] != p[1]])
async def test_migrate_between_every_pair(source_kind: str, target_kind: str, spec_for: SpecFor,
                                          open_store: OpenStore) -> None:
    source, target = open_store(spec_for(source_kind)), open_store(spec_for(target_kind))
    for record in RECORDS:
        await source.put(record)
    if source_kind != "file":
        await source.write_config(CONFIG)
    local_config = CONFIG if source_kind == "file" else None

    total, report = await migrate(source, target, local_config)
    assert (total, report.copied, report.unchanged, report.failed) == (3, 3, 0, {})
    assert {r.id: r.data for r in await target.list()} == {r.id: r.data for r in RECORDS}
    if target_kind == "file":  # a bare folder keeps no config document
        assert report.config.startswith("not copied")
    else:
        assert report.config == "copied" and await target.read_config() == CONFIG

    total, again = await migrate(source, target, local_config)  # idempotent
    assert (total, again.copied, again.unchanged, again.failed) == (3, 0, 3, {})
    if target_kind != "file":
        assert again.config == "already up to date"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossroads", "auth", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


async def test_migrate_command_reports_counts_and_names_broken_records(
        spec_for: SpecFor, open_store: OpenStore, tmp_path: Path) -> None:
    folder = tmp_path / "cli-proxy-api"  # a CLIProxyAPI auth dir, as it is
    folder.mkdir()
    (folder / "claude-x@example.com.json").write_text('{"type":"claude","refresh_token":"r","email":"x@example.com"}')
    (folder / "codex-y.json").write_text('{"type":"codex","access_token":"a"}')
    (folder / "broken.json").write_text('{"type": ')
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    target = spec_for("postgres")

    first = _cli("migrate", "--from", str(folder), "--to", target, "--config", str(config))
    assert first.returncode == 1, first.stderr
    assert "accounts: 2 in source, 2 copied, 0 already up to date, 1 failed" in first.stdout
    assert "failed: broken:" in first.stdout and "not valid JSON" in first.stdout
    assert "config: copied" in first.stdout
    (folder / "broken.json").unlink()
    second = _cli("migrate", "--from", str(folder), "--to", target, "--config", str(config))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 in source, 0 copied, 2 already up to date, 0 failed" in second.stdout
    assert "config: already up to date" in second.stdout
    stored = open_store(target)
    assert sorted(r.id for r in await stored.list()) == ["claude-x@example.com", "codex-y"]


async def test_rotate_key_command(spec_for: SpecFor, open_store: OpenStore, tmp_path: Path) -> None:
    spec = spec_for("file")
    store = open_store(spec)
    await store.put(RECORDS[0])
    key_file = tmp_path / "store.key"
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {spec}\nstore: {{key-file: {key_file}}}\n")

    turned_on = _cli("rotate-key", "--config", str(config))
    assert turned_on.returncode == 0, turned_on.stdout + turned_on.stderr
    assert "1 record(s) re-encrypted, 0 already current, 0 failed" in turned_on.stdout
    first_key = read_key_file(key_file)
    assert len(first_key) == 1 and key_file.stat().st_mode & 0o777 == 0o600
    raw = await (store.inner if isinstance(store, EncryptedStore) else store).get(RECORDS[0].id)
    assert raw is not None and sealed_kids(raw.data) == {first_key[0].kid}

    rotated = _cli("rotate-key", "--config", str(config), "--retire-old")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "retired 1 old key(s)" in rotated.stdout
    second_key = read_key_file(key_file)
    assert len(second_key) == 1 and second_key[0].kid != first_key[0].kid
    raw = await (store.inner if isinstance(store, EncryptedStore) else store).get(RECORDS[0].id)
    assert raw is not None and sealed_kids(raw.data) == {second_key[0].kid}
    reader = open_store(spec)
    assert isinstance(reader, EncryptedStore) and reader.keyring is None  # env carries no key here
    os.environ["CROSSROADS_STORE_KEY_FILE"] = str(key_file)
    try:
        keyed = open_store(spec)
        assert [r.data for r in await keyed.list()] == [RECORDS[0].data]
    finally:
        del os.environ["CROSSROADS_STORE_KEY_FILE"]
