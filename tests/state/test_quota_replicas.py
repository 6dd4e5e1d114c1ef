"""Two replicas sharing Redis route on the same quota picture: a window one
replica learns from an upstream's answer holds back the account on the other
replica, which never asked that upstream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import via_anthropic
from tests.routing.test_quota_windows import MANAGEMENT, MODEL, endpoints, login, management, messages_to
from tests.state.servers import RedisServer


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as server:
        server.extra_token_fields = {"account": {"email_address": "max@example.com"}}
        yield server


def replica(tmp_path: Path, identity: FakeIdentity, base_url: str, state: dict[str, Any]) -> RouterProcess:
    return RouterProcess({"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "state": state,
                          "oauth-endpoints": endpoints(identity, base_url),
                          "remote-management": {"secret-key": MANAGEMENT},
                          # no usage-endpoint reads: what replica b knows, it knows through Redis
                          "routing": {"strategy": "fill-first", "quota-probe": False}})


def test_two_replicas_sharing_redis_agree_on_windows(tmp_path: Path, identity: FakeIdentity,
                                                     redis_server: RedisServer) -> None:
    with FakeClaudeOAuth(identity) as spent, FakeClaudeOAuth(identity) as roomy:
        spent.set_window("5h", 1.0, 3600)  # it answers 429 with the window headers saying so
        roomy.set_window("5h", 0.3, 3600)
        login(tmp_path, identity, spent, "a-spent")  # fill-first: tried first while usable
        login(tmp_path, identity, roomy, "b-roomy")
        state = {"backend": "redis", "url": redis_server.url, "prefix": f"quota{time.time_ns()}"}
        with replica(tmp_path, identity, roomy.base_url, state) as a, \
                replica(tmp_path, identity, roomy.base_url, state) as b:
            assert via_anthropic(a, MODEL, "first").endswith("You said: first")
            assert messages_to(spent) == 1, "replica a learnt the window from the 429's headers"
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                rows = {r["label"]: r for r in management(b, "quota")["accounts"]}
                if rows.get("claude:a-spent@example.com", {}).get("exhausted_until"):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("replica b never heard of the exhausted window")
            for i in range(3):
                assert via_anthropic(b, MODEL, f"on b {i}").endswith(f"You said: on b {i}")
            assert messages_to(spent) == 1 and messages_to(roomy) == 4
            a_rows = {r["label"]: r["windows"] for r in management(a, "quota")["accounts"]}
            b_rows = {r["label"]: r["windows"] for r in management(b, "quota")["accounts"]}
            strip = ("age_seconds", "resets_in_seconds", "observed_at")  # unchanged numbers are not republished
            assert {k: [{f: v for f, v in w.items() if f not in strip} for w in rows] for k, rows in a_rows.items()} \
                == {k: [{f: v for f, v in w.items() if f not in strip} for w in rows] for k, rows in b_rows.items()}
