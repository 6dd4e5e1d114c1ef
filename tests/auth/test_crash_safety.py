"""Killing a process at any point of a refresh never leaves an auth file that
is corrupt or holds a refresh token the identity server has invalidated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from crossroads.auth import tokens
from crossroads.auth.refresher import Refresher
from crossroads.credentials.file import FileStore
from tests.auth.refresh_child import RECORD_ID
from tests.auth.tables import oauth_table
from tests.fakes.oauth import FakeIdentity

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as server:
        yield server


def write_record(directory: Path, identity: FakeIdentity) -> str:
    grant = identity.issue()
    data = {"type": "claude", "email": "crash@example.com", "access_token": grant.access_token,
            "refresh_token": grant.refresh_token, "expired": tokens.format_time(time.time() + 60),
            "priority": 3}
    path = directory / f"{RECORD_ID}.json"
    path.write_bytes(orjson.dumps(data))
    path.chmod(0o600)
    return grant.refresh_token


def run_child(directory: Path, identity: FakeIdentity, point: str, kill_after: float | None) -> str:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.auth.refresh_child", str(directory), identity.base_url, point],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert child.stdout is not None
    try:
        seen = ""
        wanted = "READY" if kill_after is not None else f"AT {point}"
        deadline = time.monotonic() + 30
        while wanted not in seen:
            line = child.stdout.readline().decode()
            if not line:
                raise AssertionError(f"child ended early: {child.stderr.read().decode() if child.stderr else ''}")
            seen += line
            assert time.monotonic() < deadline
        if kill_after is not None:
            time.sleep(kill_after)
        return seen
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()


POINTS = [("before_request", None), ("after_response", None), ("mid_write", None), ("after_persist", None),
          ("timed", 0.0), ("timed", 0.12), ("timed", 0.25), ("timed", 0.4)]


@pytest.mark.parametrize(("point", "kill_after"), POINTS)
async def test_kill_during_refresh_leaves_a_usable_file(identity: FakeIdentity, tmp_path: Path, point: str,
                                                       kill_after: float | None) -> None:
    original = write_record(tmp_path, identity)
    identity.refresh_delay = 0.2 if kill_after is not None else 0.0
    calls_before = identity.refresh_calls
    run_child(tmp_path, identity, point, kill_after)
    path = tmp_path / f"{RECORD_ID}.json"
    data = orjson.loads(path.read_bytes())  # never corrupt
    assert data["priority"] == 3 and data["type"] == "claude"
    assert identity.refresh_token_valid(data["refresh_token"]), "the file holds an invalidated refresh token"
    if point == "after_persist":
        assert data["refresh_token"] != original
    if point in ("before_request", "mid_write"):
        assert data["refresh_token"] == original
    if point == "before_request":
        assert identity.refresh_calls == calls_before
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # and the next process carries on from it
    identity.refresh_delay = 0.0
    table = oauth_table({"claude": {"token-url": f"{identity.base_url}/oauth/token", "client-id": "test-client"}})
    store = FileStore(tmp_path)
    record = await store.get(RECORD_ID)
    assert record is not None
    fresh = await Refresher(store, oauth=lambda: table).credential(record).refresh(force=True)
    assert identity.use_access(fresh)
    after = orjson.loads(path.read_bytes())
    assert after["access_token"] == fresh and identity.refresh_token_valid(after["refresh_token"])
