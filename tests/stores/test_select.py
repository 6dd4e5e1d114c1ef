"""Store selection from the config's `store:` section and CLIProxyAPI's env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads import config as config_module
from crossroads.credentials.base import StoreError
from crossroads.credentials.crypto import EncryptedStore, Key
from crossroads.credentials.file import FileStore
from crossroads.credentials.git import GitStore
from crossroads.credentials.postgres import PostgresStore
from crossroads.credentials.s3 import S3Store
from crossroads.credentials.select import open_store
from crossroads.reload import with_line


def inner_of(cfg_text: str, env: dict[str, str]) -> object:
    store = open_store(config_module.parse(cfg_text), environ=env)
    assert isinstance(store, EncryptedStore)
    return store.inner


def test_cliproxyapi_env_vars_choose_the_store_with_its_precedence(tmp_path: Path) -> None:
    pg = inner_of("", {"PGSTORE_DSN": "postgresql://u@h/db", "PGSTORE_SCHEMA": "cpa",
                       "GITSTORE_GIT_URL": "https://example.invalid/r.git"})
    assert isinstance(pg, PostgresStore) and pg.schema == "cpa"
    s3 = inner_of("", {"OBJECTSTORE_ENDPOINT": "minio:9000", "OBJECTSTORE_BUCKET": "b",
                       "OBJECTSTORE_ACCESS_KEY": "a", "OBJECTSTORE_SECRET_KEY": "s", "OBJECTSTORE_USE_SSL": "false",
                       "GITSTORE_GIT_URL": "https://example.invalid/r.git"})
    assert isinstance(s3, S3Store) and str(s3.client.endpoint) == "http://minio:9000" and s3.bucket == "b"
    git = inner_of("", {"GITSTORE_GIT_URL": "https://example.invalid/r.git", "GITSTORE_GIT_TOKEN": "tok",
                        "GITSTORE_LOCAL_PATH": str(tmp_path / "clone")})
    assert isinstance(git, GitStore) and git.local == tmp_path / "clone" and git.poll_interval == 5.0
    assert "Authorization: Basic" in git._env["GIT_CONFIG_VALUE_0"]
    assert not (tmp_path / "clone").exists()  # nothing happens until first use
    files = inner_of(f"auth-dir: {tmp_path}\n", {})
    assert isinstance(files, FileStore) and files.directory == tmp_path


def test_config_section_wins_and_bad_settings_are_named(tmp_path: Path) -> None:
    chosen = inner_of(f"store: {{type: file, dir: {tmp_path}}}\n", {"PGSTORE_DSN": "postgresql://x/y"})
    assert isinstance(chosen, FileStore) and chosen.directory == tmp_path
    with pytest.raises(StoreError, match="needs a DSN"):
        inner_of("store: {type: postgres}\n", {})
    with pytest.raises(StoreError, match="unknown store type 'redis'"):
        inner_of("store: {type: redis}\n", {})


def test_key_from_env_turns_encryption_on() -> None:
    key = Key.generate()
    store = open_store(config_module.parse(""), environ={"CROSSROADS_STORE_KEY": key.encoded()})
    assert isinstance(store, EncryptedStore) and store.keyring is not None
    assert store.keyring.current.kid == key.kid


def test_schema_errors_get_the_line_of_their_key() -> None:
    text = "port: 8317\napi-keys: [a]\nrouting: 5\n"
    assert with_line("config: 'routing' must be a mapping", text) == "config: 'routing' must be a mapping (line 3)"
    already = "config: YAML syntax error at line 2, column 1: oops"
    assert with_line(already, text) == already
