"""Token refreshes reach the metrics: ok, failed and needs-login, through
the runtime's refresher against a fake identity server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from crossroads import config as config_module
from crossroads import ir
from crossroads.auth import tokens
from crossroads.credentials.base import Record
from crossroads.runtime import Runtime
from tests.auth.memstore import MemoryStore
from tests.auth.tables import every_type_at, oauth_table
from tests.fakes.oauth import FakeIdentity


@pytest.fixture
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client") as server:
        server.encoding = "json"  # Claude's token endpoint takes JSON
        server.expires_in = 8 * 3600
        yield server


def record(identity: FakeIdentity, name: str) -> Record:
    grant = identity.issue()
    return Record(f"claude-{name}", {"type": "claude", "email": f"{name}@example.com",
                                     "access_token": grant.access_token, "refresh_token": grant.refresh_token,
                                     "expired": tokens.format_time(time.time() - 5)})


def refreshes(runtime: Runtime, result: str) -> float:
    text = runtime.observer.metrics.exposition().decode()
    match = re.search(rf'crossroads_token_refreshes_total{{result="{result}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


async def test_refresh_results_are_counted(identity: FakeIdentity, tmp_path: object) -> None:
    runtime = Runtime(config_module.parse(f"auth-dir: {tmp_path}\n"))
    oauth = oauth_table(every_type_at(identity.base_url))
    runtime.refresher.oauth = lambda: oauth
    records = [record(identity, name) for name in ("ok", "down", "dead")]
    store = MemoryStore(*records)
    runtime.refresher.bind(store)

    await runtime.refresher.credential(records[0]).token()
    identity.fail_refresh(503, "temporarily_unavailable")
    with pytest.raises(ir.Error):
        await runtime.refresher.credential(records[1]).token()
    identity.fail_refresh(400, "invalid_grant", "Refresh token revoked")
    with pytest.raises(ir.Error):
        await runtime.refresher.credential(records[2]).token()

    assert (refreshes(runtime, "ok"), refreshes(runtime, "failed"), refreshes(runtime, "needs_login")) == (1, 1, 1)
