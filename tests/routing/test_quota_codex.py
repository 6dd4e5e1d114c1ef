"""Codex (ChatGPT) windows drive routing: the backend's ``x-codex-*`` headers,
``/backend-api/wham/usage`` and ``usage_limit_reached`` errors with their
reset times, each read into the same windows as Claude's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from crossroads.auth import flows
from crossroads.auth.callback import parse_redirect
from crossroads.auth.spec import LoginResult
from tests.auth.tables import oauth_table
from tests.auth.test_flows import follow
from tests.fakes.codex_backend import FakeCodexBackend
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import via_chat
from tests.routing.test_quota_windows import MANAGEMENT, management

MODEL = "gpt-5.1-codex"


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-42", "chatgpt_plan_type": "plus"}}
    with FakeIdentity(client_id="test-client", expires_in=10 * 86400, id_token_claims=claims) as server:
        yield server


@pytest.fixture
def backends(identity: FakeIdentity) -> Iterator[tuple[FakeCodexBackend, FakeCodexBackend]]:
    with FakeCodexBackend(identity) as first, FakeCodexBackend(identity) as second:
        yield first, second


def endpoints(identity: FakeIdentity, backend: FakeCodexBackend) -> dict[str, Any]:
    return {"codex": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                      "authorize-url": f"{identity.base_url}/oauth/authorize", "base-url": backend.api_url}}


def login(auth_dir: Path, identity: FakeIdentity, backend: FakeCodexBackend, name: str) -> None:
    table = oauth_table(endpoints(identity, backend))

    async def run() -> LoginResult:
        started = flows.start(table, "codex", port=1)
        [result] = await flows.complete(started, parse_redirect(await follow(started.url, into_callback=False)))
        return result

    data = {**asyncio.run(run()).data, "email": f"{name}@example.com", "base_url": backend.api_url}
    path = auth_dir / f"codex-{name}.json"
    path.write_bytes(orjson.dumps(data))
    path.chmod(0o600)


def router(tmp_path: Path, identity: FakeIdentity, backend: FakeCodexBackend, **routing: Any) -> RouterProcess:
    return RouterProcess({"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path),
                          "oauth-endpoints": endpoints(identity, backend),
                          "remote-management": {"secret-key": MANAGEMENT}, "routing": routing})


def sent_to(backend: FakeCodexBackend) -> int:
    return sum(1 for r in backend.requests if r.path.endswith("/responses"))


def wait_for_probes(*backends: FakeCodexBackend) -> None:
    deadline = time.monotonic() + 10
    while not all(b.usage_reads for b in backends):
        assert time.monotonic() < deadline, "the router did not read /wham/usage at start"
        time.sleep(0.05)
    time.sleep(0.2)


def test_primary_window_nearly_spent_gets_no_traffic_and_secondary_exhaustion_lifts_at_reset(
        tmp_path: Path, identity: FakeIdentity, backends: tuple[FakeCodexBackend, FakeCodexBackend]) -> None:
    busy, free = backends
    busy.set_window("primary", 96, 300, 3000)
    busy.set_window("secondary", 30, 10080, 5 * 86400)
    free.set_window("primary", 10, 300, 4000)
    login(tmp_path, identity, busy, "busy")
    login(tmp_path, identity, free, "free")
    with router(tmp_path, identity, busy, **{"prefer-soonest-reset": False}) as process:
        wait_for_probes(busy, free)
        for i in range(4):
            assert f"You said: turn {i}" in via_chat(process, MODEL, f"turn {i}")
        assert sent_to(busy) == 0 and sent_to(free) == 4
        rows = {r["label"]: r["windows"] for r in management(process, "quota")["accounts"]}
        kinds = {w["kind"]: w for w in rows["codex:busy@example.com (plus)"]}
        assert kinds["five-hour"]["used_percent"] == 96.0 and kinds["weekly"]["used_percent"] == 30.0
        assert kinds["five-hour"]["source"] == "usage-endpoint"


def test_usage_limit_reached_names_its_reset_and_the_account_waits_for_it(
        tmp_path: Path, identity: FakeIdentity, backends: tuple[FakeCodexBackend, FakeCodexBackend]) -> None:
    spent, other = backends
    login(tmp_path, identity, spent, "a-spent")
    login(tmp_path, identity, other, "b-other")
    # no usage-endpoint reads: the router learns of the window from the 429 itself
    with router(tmp_path, identity, spent, strategy="fill-first",
                **{"quota-probe": False, "prefer-soonest-reset": False}) as process:
        spent.set_window("secondary", 100, 10080, 10)  # weekly window spent; resets in 10 s
        for i in range(4):
            assert f"You said: turn {i}" in via_chat(process, MODEL, f"turn {i}")
        assert sent_to(spent) == 1, "one 429 is enough: its reset time holds the account back"
        [row] = [r for r in management(process, "quota")["accounts"] if r["label"].startswith("codex:a-spent")]
        assert row["exhausted_until"] and any(w["source"] in ("error", "header") for w in row["windows"])
        time.sleep(max(0.0, spent.windows["secondary"][2] - time.time()) + 0.5)
        assert "You said: after" in via_chat(process, MODEL, "after")
        assert sent_to(spent) == 2, "fill-first goes back to the first account once its window reset"
