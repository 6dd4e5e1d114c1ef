"""Fixtures: real PostgreSQL, moto S3 and bare git repos on loopback, and a
``spec_for(kind)`` factory naming a fresh, empty store of each kind."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from crossroads.credentials.base import Store
from crossroads.credentials.select import open_spec
from tests.stores.servers import MotoS3, Postgres, bare_git_repo

KINDS = ["file", "postgres", "git", "s3"]
S3_KEYS = {"OBJECTSTORE_ACCESS_KEY": "testing", "OBJECTSTORE_SECRET_KEY": "testing-secret"}
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _s3_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CROSSROADS_STORE_KEY", raising=False)
    monkeypatch.delenv("CROSSROADS_STORE_KEY_FILE", raising=False)


SpecFor = Callable[[str], str]


@pytest.fixture
def spec_for(request: pytest.FixtureRequest, tmp_path: Path) -> SpecFor:
    """kind -> a spec string (as `crossroads auth migrate` takes) for a new, empty store."""

    def make(kind: str) -> str:
        n = next(_counter)
        if kind == "file":
            return str(tmp_path / f"auths{n}")
        if kind == "postgres":
            pg: Postgres = request.getfixturevalue("postgres")
            return f"{pg.dsn}?schema=t{os.getpid()}_{n}"
        if kind == "git":
            return "git:" + str(bare_git_repo(tmp_path, f"remote{n}.git"))
        if kind == "s3":
            s3: MotoS3 = request.getfixturevalue("moto_s3")
            return f"s3://bucket{os.getpid()}x{n}/pre{n}?endpoint={s3.endpoint}"
        raise ValueError(kind)

    return make


@pytest.fixture
async def open_store() -> AsyncIterator[Callable[[str], Store]]:
    """spec -> an open store instance; every instance is closed after the test."""
    opened: list[Store] = []

    def make(spec: str) -> Store:
        store = open_spec(spec)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="crossroads-store-test-") as name:
        yield Path(name)
