"""One rule for the reply's ``model`` field: the name the client asked for
(a fallback's name when a fallback answered), whether the reply was
translated or passed through, streamed or not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "test-key"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[RouterProcess, FakeOpenAIChat, FakeAnthropic]]:
    with FakeOpenAIChat(api_keys=[KEY]) as chat, FakeAnthropic(api_keys=[KEY]) as claude:
        config = {
            "openai-compatibility": [{"name": "compat", "base-url": f"{chat.base_url}/v1",
                                      "api-key-entries": [{"api-key": KEY}],
                                      "models": [{"name": "gpt-4o-mini", "alias": "house-model"},
                                                 {"name": "gpt-4o-mini"}]}],
            "claude-api-key": [{"api-key": KEY, "base-url": claude.base_url, "prefix": "team",
                                "models": [{"name": "claude-sonnet-4-5", "alias": "sonnet"}]}],
            "fallbacks": {"missing-model": ["house-model"]},
        }
        with RouterProcess(config) as router:
            yield router, chat, claude


def _openai(router: RouterProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)


def _anthropic(router: RouterProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.base_url, api_key="x", max_retries=0)


@pytest.mark.parametrize("asked", ["house-model", "gpt-4o-mini"])
def test_passed_through_openai_replies_carry_the_asked_name(stack: Any, asked: str) -> None:
    router, chat, _ = stack
    reply = _openai(router).chat.completions.create(model=asked, messages=MESSAGES)
    assert reply.model == asked
    chunks = list(_openai(router).chat.completions.create(model=asked, messages=MESSAGES, stream=True))
    assert chunks and {c.model for c in chunks} == {asked}
    assert chat.requests[-1].body["model"] == "gpt-4o-mini"  # the upstream still got its own name


@pytest.mark.parametrize("asked", ["sonnet", "team/sonnet"])
def test_passed_through_anthropic_replies_carry_the_asked_name(stack: Any, asked: str) -> None:
    router, _, claude = stack
    reply = _anthropic(router).messages.create(model=asked, max_tokens=64, messages=MESSAGES)
    assert reply.model == asked
    with _anthropic(router).messages.stream(model=asked, max_tokens=64, messages=MESSAGES) as stream:
        events = list(stream)
    started = [e for e in events if e.type == "message_start"]
    assert started and started[0].message.model == asked
    assert claude.requests[-1].body["model"] == "claude-sonnet-4-5"


def test_translated_replies_carry_the_asked_name(stack: Any) -> None:
    router, _, _ = stack
    reply = _anthropic(router).messages.create(model="house-model", max_tokens=64, messages=MESSAGES)
    assert reply.model == "house-model"  # an OpenAI chat upstream, translated
    with _anthropic(router).messages.stream(model="house-model", max_tokens=64, messages=MESSAGES) as stream:
        started = [e for e in stream if e.type == "message_start"]
    assert started[0].message.model == "house-model"
    chat_reply = _openai(router).chat.completions.create(model="sonnet", messages=MESSAGES)
    assert chat_reply.model == "sonnet"  # an Anthropic upstream, translated
    chunks = list(_openai(router).chat.completions.create(model="sonnet", messages=MESSAGES, stream=True))
    assert {c.model for c in chunks} == {"sonnet"}


def test_a_fallback_names_itself(stack: Any) -> None:
    router, _, _ = stack
    assert _openai(router).chat.completions.create(model="missing-model", messages=MESSAGES).model == "house-model"


def test_a_wrong_upstream_key_is_named_as_such() -> None:
    with FakeOpenAIChat(api_keys=["right-key"]) as chat:
        config = {"openai-compatibility": [{"name": "acme", "base-url": f"{chat.base_url}/v1",
                                            "api-key-entries": [{"api-key": "wrong-key"}],
                                            "models": [{"name": "gpt-4o-mini", "alias": "m"}]}]}
        chat.push(Scenario.fail(401, "Incorrect API key provided"))
        with RouterProcess(config) as router, pytest.raises(openai.APIStatusError) as refused:
            _openai(router).chat.completions.create(model="m", messages=MESSAGES)
    assert refused.value.status_code == 502
    assert refused.value.code == "upstream_credentials_refused"
    assert "the upstream refused the credentials of account acme#0" in refused.value.message
