"""OpenTelemetry traces: a real router exports OTLP/HTTP to a loopback
receiver (tests/fakes/otlp.py decodes the protobuf): a server span per
request under the client's traceparent, a client span per upstream attempt
with GenAI attribute names; off by default, and then OpenTelemetry is not
even loaded."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.otlp import FakeOTLP
from tests.harness import RouterProcess

KEYS = ["sk-upstream-tracing-first-001", "sk-upstream-tracing-second-02"]
CLIENT = "tracing-client-key-0001"
COLLECTOR_TOKEN = "collector-token-secret-77"
HTTP = urllib3.PoolManager(retries=False)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    server = FakeOpenAIChat(api_keys=KEYS).start()
    yield server
    server.stop()


@pytest.fixture
def collector() -> Iterator[FakeOTLP]:
    with FakeOTLP() as server:
        yield server


def config(fake: FakeOpenAIChat, **tracing: object) -> dict[str, object]:
    return {"api-keys": [CLIENT], "routing": {"strategy": "fill-first"}, "tracing": tracing,
            "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                      "api-key-entries": [{"api-key": k} for k in KEYS],
                                      "models": [{"name": "gpt-4o-mini", "alias": "m1"}]}]}


def ask(router: RouterProcess, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    return HTTP.request("POST", f"{router.base_url}/v1/chat/completions",
                        headers={"authorization": f"Bearer {CLIENT}", **(headers or {})},
                        json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]})


def test_a_request_and_its_attempts_become_spans_under_the_clients_trace(fake: FakeOpenAIChat,
                                                                          collector: FakeOTLP) -> None:
    settings = {"enabled": True, "endpoint": f"{collector.base_url}/v1/traces", "service-name": "router-under-test",
                "headers": {"authorization": f"Bearer {COLLECTOR_TOKEN}"}}
    with RouterProcess(config(fake, **settings)) as router:
        fake.push(Scenario.fail(429, "slow down", retry_after=60))
        reply = ask(router, {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "tracestate": "vendor=1"})
        assert reply.status == 200
        spans = collector.wait_for(3)
    [server] = [s for s in spans if s.kind == 2]
    attempts = sorted((s for s in spans if s.kind == 3), key=lambda s: s.start_ns)
    assert server.trace_id == TRACE_ID and server.parent_span_id == CLIENT_SPAN
    assert server.name == "chat m1" and server.resource["service.name"] == "router-under-test"
    assert server.attributes["gen_ai.request.model"] == "m1"
    assert server.attributes["gen_ai.response.model"]  # the model as the router served it
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["crossroads.request_id"] == reply.headers["x-request-id"]
    assert server.attributes["gen_ai.usage.input_tokens"] > 0 and server.attributes["gen_ai.usage.output_tokens"] > 0

    assert [a.attributes["crossroads.account"] for a in attempts] == ["up#0", "up#1"]
    assert all(a.trace_id == TRACE_ID and a.parent_span_id == server.span_id for a in attempts)
    failed, served = attempts
    assert failed.attributes["http.response.status_code"] == 429 and failed.status_code == 2
    assert failed.attributes["error.type"] == "rate_limit" and "gen_ai.usage.input_tokens" not in failed.attributes
    assert served.attributes["gen_ai.provider.name"] == "openai-compatibility"
    assert served.attributes["gen_ai.usage.output_tokens"] == server.attributes["gen_ai.usage.output_tokens"]
    assert server.start_ns <= failed.start_ns <= failed.end_ns <= served.start_ns <= served.end_ns <= server.end_ns
    assert collector.headers_seen[0]["Authorization"] == f"Bearer {COLLECTOR_TOKEN}"


def test_sampling_follows_the_ratio_and_the_clients_flag(fake: FakeOpenAIChat, collector: FakeOTLP) -> None:
    settings = {"enabled": True, "endpoint": f"{collector.base_url}/v1/traces", "sample-ratio": 0}
    with RouterProcess(config(fake, **settings)) as router:
        for _ in range(3):
            assert ask(router).status == 200  # ratio 0: not sampled
        assert ask(router, {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-00"}).status == 200  # client: not sampled
        assert ask(router, {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}).status == 200  # client: sampled
        spans = collector.wait_for(2)
    assert {s.trace_id for s in spans} == {TRACE_ID} and len(spans) == 2


def test_a_bad_tracing_section_is_a_config_error(fake: FakeOpenAIChat, tmp_path: object) -> None:
    from crossroads import config as config_module

    for bad, words in (({"endpoint": "grpc://x:4317"}, "tracing.endpoint"), ({"sample-ratio": 2}, "sample-ratio"),
                       ({"enabled": "yes"}, "enabled")):
        with pytest.raises(config_module.ConfigError, match=words):
            config_module.parse(f"tracing: {bad!r}\n".replace("'", '"'), source="t")


def test_off_by_default_without_loading_opentelemetry() -> None:
    script = ("import sys, asyncio\n"
              "from crossroads import config\nfrom crossroads.server import App\n"
              "app = App(config.parse('port: 1\\n', source='t'))\n"
              "print(app.runtime.observer.tracer, any(m.startswith('opentelemetry') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "False"]
