"""Hot reload through the real router (a subprocess): config.yaml edits, files
dropped into auth-dir, and changes another replica makes in PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from crossroads.credentials.base import Record
from crossroads.credentials.postgres import PostgresStore
from tests.harness import RouterProcess
from tests.stores.servers import Postgres


def status(router: RouterProcess, key: str | None = None) -> int:
    request = urllib.request.Request(f"{router.base_url}/v1/models")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def replace_file(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".new")
    temp.write_text(text)
    os.replace(temp, path)


def test_config_and_auth_dir_changes_apply_without_restart(tmp_path: Path) -> None:
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    with RouterProcess({"auth-dir": str(auth_dir)}) as router:
        assert status(router) == 200
        base = yaml.safe_load(router.config_path.read_text())

        replace_file(router.config_path, yaml.safe_dump({**base, "api-keys": ["k-new"]}))
        took = eventually(lambda: status(router) == 401, "new api-keys applied")
        assert took < 2.0 and status(router, "k-new") == 200

        replace_file(router.config_path, "port: 1\napi-keys: [k-other\nrouting: {strategy: x}\n")
        eventually(lambda: "config reload rejected" in router.log(), "syntax error reported")
        assert "line 3" in router.log() or "line 2" in router.log()
        assert status(router) == 401 and status(router, "k-new") == 200  # running config stays

        replace_file(router.config_path, yaml.safe_dump({**base, "api-keys": ["k-new"], "routing": 5}))
        eventually(lambda: "'routing' must be a mapping" in router.log(), "schema error reported")
        schema_line = next(line for line in router.log().splitlines() if "'routing' must be a mapping" in line)
        assert "(line " in schema_line
        assert status(router, "k-new") == 200

        (auth_dir / "claude-a@example.com.json").write_text('{"type": "claude", "access_token": "t"}')
        eventually(lambda: "credentials reloaded: 1 account record(s)" in router.log(), "credential file seen")
        (auth_dir / "codex-broken.json").write_text('{"type": "codex", ')
        eventually(lambda: "'codex-broken' cannot be read" in router.log(), "corrupt file named")
        (auth_dir / "claude-a@example.com.json").unlink()
        eventually(lambda: "credentials reloaded: 0 account record(s)" in router.log(), "deletion seen")


def test_postgres_replica_changes_reach_the_router(postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = f"reload{os.getpid()}"
    monkeypatch.setenv("PGSTORE_DSN", postgres.dsn)
    monkeypatch.setenv("PGSTORE_SCHEMA", schema)
    with RouterProcess({}) as router:
        assert status(router) == 200

        async def as_other_replica() -> str | None:
            replica = PostgresStore(postgres.dsn, schema)
            try:
                seeded = await replica.read_config()
                assert seeded is not None and f"port: {router.port}" in seeded  # seeded from the local file
                await replica.put(Record("claude-z", {"type": "claude", "access_token": "t"}))
                await replica.write_config(seeded + "api-keys: [from-db]\n")
                return seeded
            finally:
                await replica.close()

        asyncio.run(as_other_replica())
        took = eventually(lambda: status(router) == 401, "config from the database applied")
        assert took < 2.0 and status(router, "from-db") == 200
        eventually(lambda: "credentials reloaded: 1 account record(s)" in router.log(), "row seen")
