"""Two router replicas sharing one Redis: cooldowns, per-key limits and usage
totals hold across replicas; an unreachable Redis fails no request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess
from tests.state.servers import RedisServer, free_port

KEY = "upstream-key"
MANAGEMENT = "mgmt-secret"
CLIENT = "open-client-key"
LIMITED = "rpm-limited-key"


def chat_entry(fake: FakeOpenAIChat, alias: str, name: str) -> dict[str, Any]:
    return {"name": name, "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": KEY}],
            "models": [{"name": "gpt-4o-mini", "alias": alias}]}


def router_config(limited: FakeOpenAIChat, healthy: FakeOpenAIChat, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": state,
        "api-keys": [CLIENT, {"key": LIMITED, "rpm": 4}],
        "remote-management": {"secret-key": MANAGEMENT},
        "routing": {"strategy": "fill-first"},  # every request would try `limited` first unless it cools
        "openai-compatibility": [chat_entry(limited, "pool", "limited"), chat_entry(healthy, "pool", "healthy"),
                                 chat_entry(healthy, "solo", "solo"), chat_entry(healthy, "counted", "counted")],
    }


class Replicas:
    def __init__(self, a: RouterProcess, b: RouterProcess, limited: FakeOpenAIChat,
                 healthy: FakeOpenAIChat) -> None:
        self.a, self.b, self.limited, self.healthy = a, b, limited, healthy


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[Replicas]:
    limited, healthy = FakeOpenAIChat(api_keys=[KEY]).start(), FakeOpenAIChat(api_keys=[KEY]).start()
    config = router_config(limited, healthy, {"backend": "redis", "url": redis_server.url,
                                              "prefix": f"replicas{time.time_ns()}"})
    a, b = RouterProcess(config), RouterProcess(config)
    try:
        a.start()
        b.start()
        yield Replicas(a, b, limited, healthy)
    finally:
        for router in (a, b):
            router.stop()
        limited.stop()
        healthy.stop()


def ask(router: RouterProcess, model: str, text: str, key: str = CLIENT) -> str:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


def calls(fake: FakeOpenAIChat) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


def usage_report(router: RouterProcess) -> dict[str, Any]:
    reply = urllib3.PoolManager().request("GET", f"{router.base_url}/v0/management/usage",
                                          headers={"authorization": f"Bearer {MANAGEMENT}"})
    assert reply.status == 200, reply.data
    report: dict[str, Any] = reply.json()
    return report


def test_a_429_seen_by_one_replica_keeps_the_other_away_until_the_reset(replicas: Replicas) -> None:
    replicas.limited.push(*[Scenario.fail(429, "quota", retry_after=2)] * 5)
    before = calls(replicas.limited)
    assert "You said: first" in ask(replicas.a, "pool", "first")  # failed over to `healthy`
    assert calls(replicas.limited) == before + 1
    reset_at = time.monotonic() + 2
    for i in range(6):
        assert "You said" in ask(replicas.b, "pool", f"on b {i}")
    assert calls(replicas.limited) == before + 1, "replica B called the account A saw answer 429"
    time.sleep(max(0.0, reset_at - time.monotonic()) + 0.2)
    ask(replicas.b, "pool", "after the reset")
    assert calls(replicas.limited) == before + 2  # tried again once the reset passed


def test_a_key_rpm_counts_requests_on_all_replicas(replicas: Replicas) -> None:
    for i in range(4):
        ask((replicas.a, replicas.b)[i % 2], "solo", f"limited {i}", key=LIMITED)
    for router in (replicas.a, replicas.b):
        with pytest.raises(openai.RateLimitError, match="4 requests per minute") as caught:
            ask(router, "solo", "one too many", key=LIMITED)
        assert int(caught.value.response.headers["retry-after"]) >= 1


def test_usage_totals_add_up_across_replicas(replicas: Replicas) -> None:
    for i in range(2):
        ask(replicas.a, "counted", f"a {i}")
    for i in range(3):
        ask(replicas.b, "counted", f"b {i}")
    deadline = time.monotonic() + 3
    while True:
        reports = [usage_report(router) for router in (replicas.a, replicas.b)]
        if all(r["by_model"].get("counted", {}).get("requests") == 5 for r in reports) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for report in reports:
        assert report["scope"] == "shared"
        counted = report["by_model"]["counted"]
        assert counted["requests"] == 5 and counted["unreported"] == 0 and counted["input_tokens"] > 0
        assert CLIENT not in str(report)
    assert reports[0]["by_model"]["counted"] == reports[1]["by_model"]["counted"]


def test_unreachable_redis_fails_no_request() -> None:
    limited, healthy = FakeOpenAIChat(api_keys=[KEY]).start(), FakeOpenAIChat(api_keys=[KEY]).start()
    config = router_config(limited, healthy, {"backend": "redis", "url": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        with RouterProcess(config) as router:
            for i in range(3):
                assert f"You said: down {i}" in ask(router, "pool", f"down {i}")
            for i in range(4):
                ask(router, "solo", f"limited {i}", key=LIMITED)
            with pytest.raises(openai.RateLimitError):  # limits still hold, per replica
                ask(router, "solo", "one too many", key=LIMITED)
            report = usage_report(router)
            assert report["scope"] == "replica" and report["by_model"]["pool"]["requests"] == 3
            log = router.log()
            assert log.count("state: Redis at") == 1 and "unreachable" in log
    finally:
        limited.stop()
        healthy.stop()
