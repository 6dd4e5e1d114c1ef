"""The conformance matrix: ingress dialect x upstream dialect x feature.

Each cell drives the router with the ingress dialect's official SDK against a
fake upstream of the upstream dialect, and asserts on what comes back and on
what the fake received.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.conformance.drivers import DRIVERS, Driver
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import FakeServer, Scenario
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.openai_responses import FakeOpenAIResponses
from tests.harness import CLIENT_KEY, RouterProcess

INGRESSES = ["openai-chat", "openai-responses", "anthropic", "gemini"]
UPSTREAMS = ["openai-chat", "openai-responses", "anthropic", "gemini"]
FEATURES = ["text", "stream", "tools", "stream_tool_args", "images", "reasoning", "usage",
            "stop_reason", "upstream_error"]

UPSTREAM_MODEL = {
    "anthropic": "claude-sonnet-4-5",
    "openai-chat": "gpt-4o",
    "openai-responses": "gpt-5.1",
    "gemini": "gemini-2.5-flash",
}
FAKE_KEY = "test-key"

# Cells that cannot work, with the reason (none so far: every cell must pass).
NOT_APPLICABLE: dict[tuple[str, str, str], str] = {}


def alias(upstream: str) -> str:
    return f"up-{upstream}"


def error_alias(ingress: str, upstream: str) -> str:
    return f"err-{ingress}-{upstream}"


@dataclass
class Env:
    router: RouterProcess
    fakes: dict[str, FakeServer]

    def driver(self, ingress: str) -> Driver:
        return DRIVERS[ingress](self.router.base_url, CLIENT_KEY)


def router_config(fakes: dict[str, FakeServer]) -> dict[str, Any]:
    def models(upstream: str) -> list[dict[str, str]]:
        return [{"name": UPSTREAM_MODEL[upstream], "alias": alias(upstream)}]

    def error_entries(upstream: str, base: str, key_field: str = "api-key") -> list[dict[str, Any]]:
        # One account per (ingress, upstream) for error cells, so a cooldown
        # caused by one cell never touches another.
        return [{key_field: FAKE_KEY, "base-url": base,
                 "models": [{"name": UPSTREAM_MODEL[upstream], "alias": error_alias(ingress, upstream)}]}
                for ingress in INGRESSES]

    chat_base = f"{fakes['openai-chat'].base_url}/v1"
    return {
        "api-keys": [CLIENT_KEY],
        "claude-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["anthropic"].base_url,
                            "models": models("anthropic")},
                           *error_entries("anthropic", fakes["anthropic"].base_url)],
        "gemini-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["gemini"].base_url,
                            "models": models("gemini")},
                           *error_entries("gemini", fakes["gemini"].base_url)],
        "codex-api-key": [{"api-key": FAKE_KEY, "base-url": f"{fakes['openai-responses'].base_url}/v1",
                           "models": models("openai-responses")},
                          *error_entries("openai-responses", f"{fakes['openai-responses'].base_url}/v1")],
        "openai-compatibility": [
            {"name": "fake-chat", "base-url": chat_base, "api-key-entries": [{"api-key": FAKE_KEY}],
             "models": models("openai-chat")},
            *({"name": f"fake-chat-err-{ingress}", "base-url": chat_base,
               "api-key-entries": [{"api-key": FAKE_KEY}],
               "models": [{"name": UPSTREAM_MODEL["openai-chat"], "alias": error_alias(ingress, "openai-chat")}]}
              for ingress in INGRESSES),
        ],
    }


@contextlib.contextmanager
def environment() -> Iterator[Env]:
    fakes: dict[str, FakeServer] = {
        "anthropic": FakeAnthropic(api_keys=[FAKE_KEY]),
        "openai-chat": FakeOpenAIChat(api_keys=[FAKE_KEY]),
        "openai-responses": FakeOpenAIResponses(api_keys=[FAKE_KEY]),
        "gemini": FakeGemini(api_keys=[FAKE_KEY]),
    }
    for fake in fakes.values():
        fake.start()
    try:
        with RouterProcess(router_config(fakes)) as router:
            yield Env(router, fakes)
    finally:
        for fake in fakes.values():
            fake.stop()


# ---------------------------------------------------------------------------- cells

TOOL_STOPS = {"openai-chat": "tool_calls", "openai-responses": "completed", "anthropic": "tool_use",
              "gemini": "STOP"}
END_STOPS = {"openai-chat": "stop", "openai-responses": "completed", "anthropic": "end_turn", "gemini": "STOP"}


def last_body(env: Env, upstream: str) -> dict[str, Any]:
    generating = [r for r in env.fakes[upstream].requests if r.method == "POST"]
    assert generating, f"the {upstream} fake received no request"
    body = generating[-1].body
    assert isinstance(body, dict)
    return body


def cell_text(env: Env, ingress: str, upstream: str) -> None:
    result = env.driver(ingress).generate(alias(upstream), "Say hi")
    assert "Hello from fake-" in result.text and "You said: Say hi" in result.text, result.text
    assert result.stop == END_STOPS[ingress]


def cell_stream(env: Env, ingress: str, upstream: str) -> None:
    result = env.driver(ingress).generate(alias(upstream), "Stream to me", stream=True)
    assert "You said: Stream to me" in result.text, result.text
    assert result.stop == END_STOPS[ingress]


def _tool_round_trip(env: Env, ingress: str, upstream: str, stream: bool) -> None:
    driver = env.driver(ingress)
    first = driver.generate(alias(upstream), "CALL_TOOL for the weather", tools=True, stream=stream)
    assert [c.name for c in first.tool_calls] == ["get_weather"], first
    assert first.tool_calls[0].arguments == {"city": "x"}
    assert first.stop == TOOL_STOPS[ingress]
    offered = last_body(env, upstream)
    assert "get_weather" in str(offered.get("tools")), "tool definition did not reach the upstream"
    second = driver.generate(alias(upstream), "CALL_TOOL for the weather", stream=stream,
                             tool_result=(first.tool_calls[0], "sunny, 21C"))
    assert "Tool result received: sunny, 21C" in second.text, second.text


def cell_tools(env: Env, ingress: str, upstream: str) -> None:
    _tool_round_trip(env, ingress, upstream, stream=False)


def cell_stream_tool_args(env: Env, ingress: str, upstream: str) -> None:
    _tool_round_trip(env, ingress, upstream, stream=True)


def cell_images(env: Env, ingress: str, upstream: str) -> None:
    result = env.driver(ingress).generate(alias(upstream), "What is this?", image=True)
    assert "saw 1 image(s): image/png" in result.text, result.text


def _upstream_reasoning_requested(upstream: str, body: dict[str, Any]) -> bool:
    if upstream == "anthropic":
        thinking = body.get("thinking") or {}
        return thinking.get("type") in ("enabled", "adaptive")
    if upstream == "openai-chat":
        return body.get("reasoning_effort") not in (None, "none")
    if upstream == "openai-responses":
        return (body.get("reasoning") or {}).get("effort") not in (None, "none")
    generation = body.get("generationConfig") or body.get("generation_config") or {}
    config = generation.get("thinkingConfig") or generation.get("thinking_config") or {}
    return any(config.get(k) for k in ("thinkingBudget", "thinking_budget", "thinkingLevel", "thinking_level"))


def cell_reasoning(env: Env, ingress: str, upstream: str) -> None:
    result = env.driver(ingress).generate(alias(upstream), "Think hard", reasoning=True)
    assert _upstream_reasoning_requested(upstream, last_body(env, upstream)), last_body(env, upstream)
    assert "Thinking about" in result.thinking, f"no thinking came back: {result}"
    assert "You said: Think hard" in result.text


REPORTED = {"input_tokens": 100, "output_tokens": 40, "cached_tokens": 30, "reasoning_tokens": 10}


def cell_usage(env: Env, ingress: str, upstream: str) -> None:
    env.fakes[upstream].push(Scenario(usage=dict(REPORTED)))
    usage = env.driver(ingress).generate(alias(upstream), "Count my tokens").usage
    # every upstream dialect reports reasoning tokens (Anthropic in output_tokens_details.thinking_tokens)
    reasoning_reported = True
    reasoning = 10
    if ingress == "anthropic":
        assert usage["input"] == 70 and usage["cached"] == 30 and usage["output"] == 40, usage
    elif ingress == "gemini":
        expected_candidates = 30 if reasoning_reported else 40
        assert usage == {"input": 100, "output": expected_candidates, "cached": 30, "reasoning": reasoning}, usage
    elif ingress == "openai-responses":
        # the Responses schema requires reasoning_tokens; absent upstream means 0 there
        assert usage == {"input": 100, "output": 40, "cached": 30, "reasoning": reasoning or 0}, usage
    else:
        assert usage["input"] == 100 and usage["output"] == 40 and usage["cached"] == 30, usage
        assert usage.get("reasoning") == reasoning, usage


def cell_stop_reason(env: Env, ingress: str, upstream: str) -> None:
    driver = env.driver(ingress)
    result = driver.generate(alias(upstream), "Tell me a long story please", max_tokens=3)
    assert result.stop == driver.max_tokens_stop, result.stop


def cell_upstream_error(env: Env, ingress: str, upstream: str) -> None:
    driver = env.driver(ingress)
    fake = env.fakes[upstream]
    fake.push(Scenario.fail(400, "scripted invalid field"))
    failure = driver.failure(alias(upstream))
    assert failure.status == 400 and "scripted invalid field" in failure.message, failure
    # a quota error whose reset is beyond max-retry-interval: the client is told when to come back
    fake.push(Scenario.fail(429, "scripted quota", retry_after=120))
    failure = driver.failure(error_alias(ingress, upstream))
    assert failure.status == 429, failure
    assert "cooling down until" in failure.message and "scripted quota" in failure.message, failure
    assert failure.retry_after is not None and 100 <= float(failure.retry_after) <= 120, failure


CELLS: dict[str, Callable[[Env, str, str], None]] = {
    "text": cell_text,
    "stream": cell_stream,
    "tools": cell_tools,
    "stream_tool_args": cell_stream_tool_args,
    "images": cell_images,
    "reasoning": cell_reasoning,
    "usage": cell_usage,
    "stop_reason": cell_stop_reason,
    "upstream_error": cell_upstream_error,
}
assert list(CELLS) == FEATURES


def all_cells() -> list[tuple[str, str, str]]:
    return [(i, u, f) for i in INGRESSES for u in UPSTREAMS for f in FEATURES]
