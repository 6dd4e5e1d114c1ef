"""Explained prompt-cache hits: each turn on a cache-capable upstream says
whether it read the cache and, when it did not although the conversation
continued, why; the session identifiers of the clients people use keep a
conversation together (and on one account)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import urllib3

from crossroads import ir
from crossroads.routing.cachewatch import CacheWatch
from crossroads.routing.sticky import session_key
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario
from tests.harness import CLIENT_KEY, RouterProcess

RECORDED = Path(__file__).parent.parent / "clients" / "recorded"
HIT, MISS = ir.Usage(input_tokens=100, output_tokens=5, cache_read_tokens=80), ir.Usage(
    input_tokens=100, output_tokens=5, cache_read_tokens=0)


def recorded(client: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((RECORDED / f"{client}.json").read_text())["body"]
    return body


def next_turn(body: dict[str, Any], field: str, *turns: Any) -> dict[str, Any]:
    later = copy.deepcopy(body)
    later[field] = [*later[field], *turns]
    return later


def explained(watch: CacheWatch, headers: Mapping[str, str], body: dict[str, Any], account: str,
              usage: ir.Usage) -> str | None:
    turn = watch.begin(headers, body)
    assert turn is not None
    return watch.explain(turn, account, usage)


def test_each_reason_a_continued_conversation_missed() -> None:
    watch = CacheWatch()
    headers = {"x-claude-code-session-id": "s-1"}
    first = {"system": "be brief", "messages": [{"role": "user", "content": "one"}]}
    second = next_turn(first, "messages", {"role": "assistant", "content": "1"}, {"role": "user", "content": "two"})
    third = next_turn(second, "messages", {"role": "assistant", "content": "2"}, {"role": "user", "content": "3"})
    assert explained(watch, headers, first, "a", MISS) == "miss: new conversation"
    assert explained(watch, headers, second, "a", HIT) == "hit"
    assert explained(watch, headers, third, "a", MISS) == "miss: upstream's decision"
    fourth = next_turn(third, "messages", {"role": "assistant", "content": "3"}, {"role": "user", "content": "4"})
    assert explained(watch, headers, fourth, "b", MISS) == "miss: different account than the previous turn"
    edited = copy.deepcopy(fourth)
    edited["system"] = "be very brief"  # an edited system prompt: nothing before it can be cached
    assert explained(watch, headers, edited, "b", MISS) == "miss: changed prefix"
    assert watch.begin({}, {"messages": []}) is None  # nothing to know a conversation by
    unreported = watch.begin(headers, edited)
    assert unreported is not None and watch.explain(unreported, "b", ir.Usage(input_tokens=1)) is None


def test_codex_a_changed_prompt_cache_key_is_named() -> None:
    watch = CacheWatch()
    body = recorded("codex")
    headers = {"session_id": "codex-session-1"}
    assert explained(watch, headers, body, "a", MISS) == "miss: new conversation"
    later = next_turn(body, "input", {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "and now?"}]})
    later["prompt_cache_key"] = "another-key"
    assert explained(watch, headers, later, "a", MISS) == "miss: changed cache key"


def test_client_session_identifiers_keep_a_conversation_together() -> None:
    claude = recorded("claude-code")
    claude_later = next_turn(claude, "messages", {"role": "assistant", "content": "ok"},
                             {"role": "user", "content": "more"})
    claude["metadata"] = claude_later["metadata"] = {"user_id": '{"device_id":"d","session_id":"cc-1"}'}
    codex = recorded("codex")
    codex_later = next_turn(codex, "input", {"type": "message", "role": "user", "content": "more"})
    gemini = recorded("gemini-cli")
    gemini_later = next_turn(gemini, "contents", {"role": "model", "parts": [{"text": "ok"}]},
                             {"role": "user", "parts": [{"text": "more"}]})
    opencode = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    opencode_later = next_turn(opencode, "messages", {"role": "assistant", "content": "yo"},
                               {"role": "user", "content": "more"})
    cases: list[tuple[str, Mapping[str, str], dict[str, Any], dict[str, Any], str]] = [
        ("claude code header", {"x-claude-code-session-id": "cc-1"}, claude, claude_later, "h:cc-1"),
        ("claude code metadata.user_id", {}, claude, claude_later, 'u:{"device_id":"d","session_id":"cc-1"}'),
        ("codex session_id header", {"session_id": "cx-1"}, codex, codex_later, "h:cx-1"),
        ("codex / SDK prompt_cache_key", {}, codex, codex_later, f"p:{codex['prompt_cache_key']}"),
        ("opencode x-opencode-session", {"x-opencode-session": "oc-1"}, opencode, opencode_later, "h:oc-1"),
        ("opencode x-session-affinity", {"x-session-affinity": "oc-2"}, opencode, opencode_later, "h:oc-2"),
        ("gemini cli (its opening)", {}, gemini, gemini_later, ""),
    ]
    for name, headers, first, later, expected in cases:
        key = session_key(headers, first)
        assert key is not None and key == session_key(headers, later), name
        if expected:
            assert key == expected, name
        watch = CacheWatch()
        explained(watch, headers, first, "a", MISS)
        assert explained(watch, headers, later, "a", MISS) == "miss: upstream's decision", name
    other = {"model": "x", "messages": [{"role": "user", "content": "a different opening"}]}
    assert session_key({}, other) != session_key({}, opencode)  # conversations without ids stay apart


def test_the_request_log_and_management_usage_explain_each_turn(tmp_path: Path) -> None:
    key = "sk-ant-cache-000011112222"
    with FakeAnthropic(api_keys=[key]) as upstream:
        settings = {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": "m"},
                    "usage": {"flush-interval": 0.1, "path": str(tmp_path / "usage.sqlite3")},
                    "claude-api-key": [{"api-key": key, "base-url": upstream.base_url}]}
        with RouterProcess(settings) as router:
            http = urllib3.PoolManager(retries=False)
            messages: list[dict[str, Any]] = [{"role": "user", "content": "first"}]
            upstream.push(Scenario(usage={"cached_tokens": 0}), Scenario(usage={"cached_tokens": 40}),
                          Scenario(usage={"cached_tokens": 0}))
            for turn, system in enumerate(("be brief", "be brief", "be briefer")):
                reply = http.request("POST", f"{router.base_url}/v1/messages", json={
                    "model": "claude-sonnet-4-5", "max_tokens": 50, "system": system, "messages": messages},
                    headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01",
                             "x-claude-code-session-id": "conv-1", "x-request-id": f"turn-{turn}"})
                assert reply.status == 200, reply.data
                messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": f"t{turn}"}]
            time.sleep(0.4)
            lines = {n: [line for line in router.log().splitlines() if f"turn-{n} " in line
                         and "crossroads.requests" in line] for n in range(3)}
            assert "cache=miss:newconversation" in lines[0][0]
            assert "cache=hit" in lines[1][0]
            assert "cache=miss:changedprefix" in lines[2][0]
            usage = json.loads(http.request("GET", f"{router.base_url}/v0/management/usage",
                                            headers={"authorization": "Bearer m"}).data)
            assert usage["by_cache"] == {"miss: new conversation": {"requests": 1, "cached_tokens": 0},
                                         "hit": {"requests": 1, "cached_tokens": 40},
                                         "miss: changed prefix": {"requests": 1, "cached_tokens": 0}}
