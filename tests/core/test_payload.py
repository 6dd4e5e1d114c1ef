"""CLIProxyAPI's payload rules: default, override, their -raw forms and
filter, chosen by model, protocol, client protocol, headers and body
conditions; the client's body is never edited in place."""

from __future__ import annotations

import copy
from typing import Any

import anthropic
import openai
import pytest

from crossroads import config, payload
from crossroads.snapshot import preview
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

RULES = {
    "default": [{"models": [{"name": "gpt-*"}], "params": {"max_tokens": 77, "temperature": 0.9}}],
    "default-raw": [{"models": [{"name": "gpt-*"}], "params": {"response_format": '{"type": "json_object"}'}}],
    "override": [{"models": [{"name": "gpt-4o*", "protocol": "openai", "from-protocol": "claude"}],
                  "params": {"temperature": 0.1, "metadata.team": "a"}},
                 {"models": [{"name": "*", "headers": {"x-tier": "gold-*"}}], "params": {"service_tier": "priority"}}],
    "filter": [{"models": [{"name": "*", "exist": ["user"], "not-match": [{"user": "keep"}]}], "params": ["user"]}],
}


def rules() -> payload.Rules:
    return payload.parse(copy.deepcopy(RULES))


def test_defaults_fill_gaps_overrides_win_filters_remove() -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "temperature": 0.5, "user": "u-1", "messages": []}
    before = copy.deepcopy(body)
    out = rules().apply(body, ("gpt-4o",), "openai-chat", "anthropic", {"x-tier": "gold-eu"})
    assert out is not None and body == before  # the client's body is untouched
    assert out["temperature"] == 0.1 and out["max_tokens"] == 77 and out["metadata"] == {"team": "a"}
    assert out["response_format"] == {"type": "json_object"} and out["service_tier"] == "priority"
    assert "user" not in out
    plain = rules().apply(body, ("gpt-4o",), "openai-chat", "openai-chat", {})
    assert plain is not None and plain["temperature"] == 0.5  # from-protocol claude only; the default did not win
    assert "service_tier" not in plain
    kept = rules().apply({**body, "user": "keep"}, ("gpt-4o",), "openai-chat", "openai-chat", {})
    assert kept is not None and kept["user"] == "keep"
    assert rules().apply(body, ("claude-x",), "anthropic", "anthropic", {}) is not None  # the filter's "*"
    assert rules().apply({"model": "m"}, ("claude-x",), "anthropic", "anthropic", {}) is None


def test_nested_paths_and_list_indexes_copy_only_what_they_change() -> None:
    parsed = payload.parse({"override": [{"models": [{"name": "*"}], "params": {
        "generationConfig.thinkingConfig.thinkingBudget": 1024, "contents.0.role": "user", "a\\.b": 1}}]})
    shared = {"parts": [{"text": "x"}], "role": "model"}
    body = {"contents": [shared], "generationConfig": {"temperature": 1}}
    out = parsed.apply(body, ("gemini-2.5-pro",), "gemini", "gemini", {})
    assert out is not None
    assert out["generationConfig"] == {"temperature": 1, "thinkingConfig": {"thinkingBudget": 1024}}
    assert out["contents"][0]["role"] == "user" and shared["role"] == "model"
    assert out["a.b"] == 1 and body["generationConfig"] == {"temperature": 1}


def test_bad_rules_are_config_errors_and_queries_are_reported() -> None:
    with pytest.raises(config.ConfigError, match=r"payload.override\[0\].models must be a non-empty list"):
        config.parse("payload: {override: [{params: {a: 1}}]}\n")
    with pytest.raises(config.ConfigError, match=r"payload.default-raw\[0\].params.a: not valid JSON"):
        config.parse("payload: {default-raw: [{models: [{name: x}], params: {a: '{oops'}}]}\n")
    snapshot = preview(config.parse("port: 1\npayload:\n  filter:\n    - models: [{name: x}]\n"
                                    "      params: ['tools.#(type==\"x\")']\n"))
    [finding] = snapshot.findings
    assert finding.path == "payload.filter[0]" and finding.line == 4 and "never applied" in str(finding)


def test_rules_reach_the_upstream_through_the_router() -> None:
    with FakeOpenAIChat(api_keys=["k"]) as fake:
        cfg = {"payload": RULES, "openai-compatibility": [{
            "name": "c", "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": "k"}],
            "models": [{"name": "gpt-4o-mini"}]}]}
        with RouterProcess(cfg) as router:
            openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0).chat.completions.create(
                model="gpt-4o-mini", user="u-2", messages=[{"role": "user", "content": "hi"}])
            anthropic.Anthropic(base_url=router.base_url, api_key="x", max_retries=0).messages.create(
                model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        passed, translated = [r.body for r in fake.requests if r.path.endswith("/chat/completions")]
    assert passed["max_tokens"] == 77 and passed["temperature"] == 0.9 and "user" not in passed
    assert translated["temperature"] == 0.1 and translated["metadata"] == {"team": "a"}
    assert translated.get("max_tokens", translated.get("max_completion_tokens")) == 50  # the client's own
