from __future__ import annotations

from crossroads import config, ir
from crossroads.access import KeyCheck
from crossroads.http import Request
from crossroads.routing.health import Health
from crossroads.routing.registry import Registry
from crossroads.routing.selection import RoundRobin
from crossroads.server import build_accounts


def _request(headers: dict[str, str] | None = None, query: bytes = b"") -> Request:
    return Request("POST", "/v1/messages", query, headers or {})


def test_key_accepted_from_every_documented_place() -> None:
    check = KeyCheck(["secret"])
    assert check.allows(_request({"authorization": "Bearer secret"}))
    assert check.allows(_request({"x-api-key": "secret"}))
    assert check.allows(_request({"x-goog-api-key": "secret"}))
    assert check.allows(_request(query=b"key=secret"))
    assert not check.allows(_request({"authorization": "Bearer wrong"}))
    assert not check.allows(_request())
    assert KeyCheck([]).allows(_request())


POOL = """
openai-compatibility:
  - name: a
    base-url: http://127.0.0.1:1/v1
    api-key-entries: [{api-key: k1}, {api-key: k2}, {api-key: k3}]
    models: [{name: m-up, alias: m}]
"""


def test_round_robin_rotates_and_skips_cooling_accounts() -> None:
    registry = Registry(build_accounts(config.parse(POOL)))
    health = Health()
    selector = RoundRobin(health)
    pool = registry.pool("m")
    firsts = [selector.available("m", pool)[0][0].account.secret for _ in range(6)]
    assert firsts == ["k1", "k2", "k3", "k1", "k2", "k3"]
    health.record_failure(pool[1].account.id, "m-up", ir.Error(429, "rate_limit", "slow down", retry_after=60))
    ready, soonest = selector.available("m", pool)
    assert [c.account.secret for c in ready] == ["k1", "k3"]
    assert soonest is not None


def test_cooldown_lengths_follow_the_cause() -> None:
    health = Health()
    assert health.record_failure("a", "m", ir.Error(429, "rate_limit", "x", retry_after=7)) == 7
    assert health.record_failure("b", "m", ir.Error(429, "rate_limit", "x")) == 1
    assert health.record_failure("b", "m", ir.Error(429, "rate_limit", "x")) == 2
    assert health.record_failure("c", "m", ir.Error(401, "authentication", "x")) == 1800
    assert health.record_failure("d", "m", ir.Error(503, "overloaded", "x")) == 10
    assert health.cooling_until("a", "other-model") is None
    health.record_success("a", "m")
    assert health.cooling_until("a", "m") is None
