"""Stream resume (``stream-resume: true``): an upstream stream cut at a random
point mid-answer continues on the next account of the pool, and the client
reads one answer, every character once, in each client dialect (through the
official SDKs) against an upstream that takes a prefill (Anthropic) and one
that gets a continuation instruction (OpenAI chat). Off by default."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conformance.drivers import DRIVERS
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import CLIENT_KEY, RouterProcess

KEYS = ["account-one", "account-two"]
MODEL = {"anthropic": "resume-claude", "chat": "resume-chat"}
WORDS = ["alpha", "beta", "gamma", "déjà", "vu", "naïve", "3.14", "(x)", "über", "—", "tea", "\u6f22\u5b57",
         "🙂", "end.", "line\n"]
ROUNDS = 4
PINNED_KEY = "pinned-client-key"


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    servers: dict[str, Any] = {"anthropic": FakeAnthropic(api_keys=KEYS), "chat": FakeOpenAIChat(api_keys=KEYS)}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def config(fakes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "api-keys": [CLIENT_KEY, {"key": PINNED_KEY, "accounts": ["claude-api-key[[]0]"]}],  # [[] is a "["
        "transient-error-cooldown-seconds": -1,  # no transient cooldowns: each round has both accounts
        "claude-api-key": [{"api-key": key, "base-url": fakes["anthropic"].base_url,
                            "models": [{"name": "claude-sonnet-4-5", "alias": MODEL["anthropic"]}]}
                           for key in KEYS],
        "openai-compatibility": [{"name": "chat", "base-url": f"{fakes['chat'].base_url}/v1",
                                  "api-key-entries": [{"api-key": key} for key in KEYS],
                                  "models": [{"name": "gpt-4o-mini", "alias": MODEL["chat"]}]}],
        **extra,
    }


@pytest.fixture(scope="module")
def router(fakes: dict[str, Any]) -> Iterator[RouterProcess]:
    with RouterProcess(config(fakes, **{"stream-resume": True})) as r:
        yield r


@pytest.fixture(scope="module")
def plain_router(fakes: dict[str, Any]) -> Iterator[RouterProcess]:
    with RouterProcess(config(fakes)) as r:
        yield r


def generations(fake: Any) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(("/messages", "/chat/completions"))]


def key_of(request: Any) -> str:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


@pytest.mark.parametrize("upstream", ["anthropic", "chat"])
@pytest.mark.parametrize("client", sorted(DRIVERS))
def test_a_stream_cut_at_a_random_point_reads_as_one_answer(router: RouterProcess, fakes: dict[str, Any],
                                                            client: str, upstream: str) -> None:
    rng = random.Random(f"{client}/{upstream}")
    fake = fakes[upstream]
    driver = DRIVERS[client](router.base_url, CLIENT_KEY)
    mid_answer = 0
    for _ in range(ROUNDS):
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 40)))
        pieces = rng.randint(3, 12)
        # frames before the text: 3 (Anthropic: message_start, content_block_start, ping) or 1 (chat: the
        # role chunk); a cut anywhere up to the frame after the text leaves the answer unfinished
        cut = rng.randint(1, pieces + 2)
        fake.clear()
        fake.push(Scenario(text=answer, text_pieces=pieces, cut_after=cut),
                  Scenario(text=answer, text_pieces=rng.randint(1, 6)))
        result = driver.generate(MODEL[upstream], "tell me something", stream=True)
        where = f"cut after frame {cut} of an answer in {pieces} pieces"
        assert result.text == answer, where
        sent = generations(fake)
        assert len(sent) == 2, where
        assert key_of(sent[0]) != key_of(sent[1]), "the continuation went to the other account"
        continued = sent[1].body["messages"]
        if continued[-1]["role"] == "assistant":  # a prefill: the text the client had, minus trailing space
            assert upstream == "anthropic"
            prefill = "".join(block["text"] for block in continued[-1]["content"]) \
                if isinstance(continued[-1]["content"], list) else continued[-1]["content"]
            assert prefill and answer.startswith(prefill) and prefill == prefill.rstrip(), where
            mid_answer += 1
        elif len(continued) > len(sent[0].body["messages"]):  # an instruction after the partial answer
            assert upstream == "chat" and "continue" in str(continued[-1]["content"]).lower()
            assert continued[-2]["role"] == "assistant" and answer.startswith(continued[-2]["content"])
            mid_answer += 1
        else:  # cut before any text reached the client: the same request again
            assert continued == sent[0].body["messages"], where
    assert mid_answer, "no round cut the stream after text had reached the client"


def test_a_tool_call_that_started_streaming_is_not_resumed(router: RouterProcess, fakes: dict[str, Any]) -> None:
    fake = fakes["anthropic"]
    fake.clear()
    # message_start, text block (start, ping, delta, stop), then the tool_use block's start and a fragment
    fake.push(Scenario(text="Let me check.", tool_calls=[("get_weather", {"city": "Paris"})], cut_after=7,
                       text_pieces=1))
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    text = ""
    with pytest.raises(openai.APIError, match=r"broke|before completion"):
        for chunk in client.chat.completions.create(
                model=MODEL["anthropic"], stream=True, messages=[{"role": "user", "content": "weather?"}],
                tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
                    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]):
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "Let me check."
    assert len(generations(fake)) == 1


def test_signed_reasoning_is_not_resumed(router: RouterProcess, fakes: dict[str, Any]) -> None:
    fake = fakes["anthropic"]
    fake.clear()
    # thinking block (start, ping, 3 deltas, signature, stop), then the text block's start and a fragment
    fake.push(Scenario(thinking="weigh the options first", text="The answer is long.", text_pieces=3,
                       cut_after=10))
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(openai.APIError, match=r"broke|before completion"):
        for _ in client.chat.completions.create(model=MODEL["anthropic"], stream=True,
                                                messages=[{"role": "user", "content": "think"}]):
            pass
    assert len(generations(fake)) == 1


@pytest.mark.parametrize("upstream", ["anthropic", "chat"])  # translated and pass-through
def test_off_by_default_a_cut_still_ends_with_an_error_event(plain_router: RouterProcess, fakes: dict[str, Any],
                                                             upstream: str) -> None:
    fake = fakes[upstream]
    fake.clear()
    fake.push(Scenario(text="one two three four five six", text_pieces=6, cut_after=5))
    client = openai.OpenAI(base_url=f"{plain_router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    text = ""
    with pytest.raises(openai.APIError, match=r"broke|before completion|ended"):
        for chunk in client.chat.completions.create(model=MODEL[upstream], stream=True,
                                                    messages=[{"role": "user", "content": "count"}]):
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text and "one two three four five six".startswith(text) and text != "one two three four five six"
    assert len(generations(fake)) == 1


def test_a_key_pinned_to_one_account_is_not_resumed_on_another(router: RouterProcess,
                                                               fakes: dict[str, Any]) -> None:
    fake = fakes["anthropic"]
    fake.clear()
    fake.push(Scenario(text="one two three four five six", text_pieces=6, cut_after=6))
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=PINNED_KEY, max_retries=0)
    with pytest.raises(openai.APIError, match=r"broke"):
        for _ in client.chat.completions.create(model=MODEL["anthropic"], stream=True,
                                                messages=[{"role": "user", "content": "count"}]):
            pass
    assert [key_of(r) for r in generations(fake)] == [KEYS[0]]
