"""/metrics against the real router: one scrape sees every worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "sk-upstream-metrics-000111"
CLIENT = "metrics-client-key-1234"
TOKEN = "scrape-token-5678"
FRESH = urllib3.PoolManager(retries=False, headers={"connection": "close"})  # a new connection each time


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAIChat, FakeOpenAIChat]]:
    first, second = FakeOpenAIChat(api_keys=[KEY]).start(), FakeOpenAIChat(api_keys=[KEY]).start()
    yield first, second
    first.stop()
    second.stop()


def config(first: FakeOpenAIChat, second: FakeOpenAIChat, **extra: Any) -> dict[str, Any]:
    return {"api-keys": [CLIENT], "routing": {"strategy": "fill-first"},
            "openai-compatibility": [
                {"name": name, "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": KEY}],
                 "models": [{"name": "gpt-4o-mini", "alias": "pool"}]}
                for name, fake in (("first", first), ("second", second))], **extra}


def ask(router: RouterProcess, stream: bool = False) -> int:
    reply = FRESH.request("POST", f"{router.base_url}/v1/chat/completions", headers={
        "authorization": f"Bearer {CLIENT}", "content-type": "application/json"},
        json={"model": "pool", "stream": stream, "messages": [{"role": "user", "content": "count me"}]})
    return reply.status


def scrape(router: RouterProcess, token: str = CLIENT) -> str:
    reply = FRESH.request("GET", f"{router.base_url}/metrics", headers={"authorization": f"Bearer {token}"})
    assert reply.status == 200, reply.data
    assert reply.headers["content-type"].startswith("text/plain")
    return reply.data.decode()


def total(text: str, name: str, **labels: str) -> float:
    found = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            found += float(match.group(2))
    return found


def test_one_scrape_sees_both_workers(fakes: tuple[FakeOpenAIChat, FakeOpenAIChat]) -> None:
    first, second = fakes
    first.push(Scenario.fail(429, "slow down", retry_after=30))
    second.push(*[Scenario(delay=0.3)] * 12)  # requests overlap, so both workers take some
    with RouterProcess(config(first, second), workers=2) as router:
        statuses = [ask(router, stream=True)]  # first answers 429 and cools: second serves from now on
        with ThreadPoolExecutor(11) as pool:
            statuses += pool.map(lambda i: ask(router, stream=i % 2 == 1), range(11))
        assert statuses == [200] * 12
        for _ in range(6):  # whichever worker answers, the whole server is counted
            text = scrape(router)
            assert total(text, "crossroads_requests_total", model="pool", status_class="2xx") == 12
            # workers keep their own cooldowns here (no shared state): each worker saw `first` answer once
            assert total(text, "crossroads_requests_total", provider="openai-compatibility",
                         ingress="openai-chat") == 12
            assert total(text, "crossroads_request_duration_seconds_count", model="pool") == 12
            assert total(text, "crossroads_time_to_first_token_seconds_count", model="pool") == 6
            assert total(text, "crossroads_tokens_total", kind="input") > 0
            assert total(text, "crossroads_tokens_total", kind="output") > 0
            assert total(text, "crossroads_upstream_errors_total", account="first#0",
                         classification="429 rate_limit") == 1
            assert total(text, "crossroads_active_cooldowns", account="first#0") == 1
            assert "crossroads_upstream_connections" in text
        directory = Path(re.search(r"metrics shared through (\S+)", router.log()).group(1))  # type: ignore[union-attr]
        workers = {re.sub(r"^\w+_(?:\w+_)?(\d+)\.db$", r"\1", p.name) for p in directory.glob("counter_*.db")}
        assert len(workers) == 2, "both workers served requests and wrote samples"


def test_metrics_access_key_or_token(fakes: tuple[FakeOpenAIChat, FakeOpenAIChat]) -> None:
    with RouterProcess(config(*fakes, metrics={"token": TOKEN})) as router:
        assert ask(router) == 200
        assert FRESH.request("GET", f"{router.base_url}/metrics").status == 401
        assert FRESH.request("GET", f"{router.base_url}/metrics",
                             headers={"authorization": f"Bearer {CLIENT}"}).status == 401
        text = scrape(router, TOKEN)
        assert total(text, "crossroads_requests_total", model="pool") == 1
        assert "/metrics" not in text and CLIENT not in text
    with RouterProcess(config(*fakes)) as router:
        assert FRESH.request("GET", f"{router.base_url}/metrics").status == 401
        assert total(scrape(router), "crossroads_requests_total") == 0
    with RouterProcess(config(*fakes, metrics={"enabled": False})) as router:
        assert FRESH.request("GET", f"{router.base_url}/metrics",
                             headers={"authorization": f"Bearer {CLIENT}"}).status == 404
