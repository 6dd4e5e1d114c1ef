"""cto.new natively (the ``ctonew`` provider, which owns its exchange)
against fakes of Clerk (tests/fakes/clerk.py) and EngineLabs
(tests/fakes/enginelabs.py): the cookie login, the 60-second session JWT
minted once and reused, the WebSocket buffers (snapshots or deltas, thinking
as reasoning, the end of the turn), emulated tools, failover and the errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from crossroads.auth.oauth import LoginError
from crossroads.providers import ctonew
from tests.auth.tables import oauth_table
from tests.fakes.clerk import FakeClerk
from tests.fakes.common import Scenario
from tests.fakes.enginelabs import FakeEngineLabs
from tests.providers.side_harness import CLIENT_KEY, MANAGEMENT_KEY, call, listed, served, wait_for
from tests.providers.test_side_services import WEATHER, every_dialect


@pytest.fixture
def clerk() -> Iterator[FakeClerk]:
    with FakeClerk(api_keys=("cookie-a", "cookie-b")) as fake:
        yield fake


@pytest.fixture
def engine() -> Iterator[FakeEngineLabs]:
    with FakeEngineLabs() as fake:
        yield fake


def endpoints(clerk: FakeClerk, engine: FakeEngineLabs) -> dict[str, Any]:
    return {"ctonew": {"token-url": clerk.base_url, "base-url": engine.base_url}}


def login(clerk: FakeClerk, engine: FakeEngineLabs, auth_dir: Path, cookie: str) -> dict[str, Any]:
    results = asyncio.run(ctonew.CookieLogin().run(oauth_table(endpoints(clerk, engine)).entry("ctonew"),
                                                   {"cookie": cookie}))
    [result] = results
    (auth_dir / f"{result.record_id}.json").write_bytes(orjson.dumps(result.data))
    return result.data


def router(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path, **settings: Any) -> Any:
    return served(tmp_path, **{"oauth-endpoints": endpoints(clerk, engine), **settings})


def chat(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0)


def test_cookie_login_checks_the_cookie_with_clerk(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    data = login(clerk, engine, tmp_path, "__client=cookie-a.....other=1")  # ctonew-proxy's packing is accepted
    assert data == {"type": "ctonew", "cookie": "__client=cookie-a; other=1", "email": "cookie-a@example.com",
                    "user_id": FakeClerk.user_of("cookie-a")[0]}
    with pytest.raises(LoginError, match="must contain __client="):
        login(clerk, engine, tmp_path, "__session=abc")
    with pytest.raises(LoginError, match=r"cto\.new refused the cookie"):
        login(clerk, engine, tmp_path, "__client=unknown")


@pytest.mark.parametrize("snapshots", [False, True])
def test_every_dialect_with_reasoning_and_one_token_for_all(clerk: FakeClerk, tmp_path: Path,
                                                            snapshots: bool) -> None:
    with FakeEngineLabs(snapshots=snapshots) as engine:
        login(clerk, engine, tmp_path, "__client=cookie-a")
        with router(clerk, engine, tmp_path) as url:
            wait_for(lambda: "ClaudeSonnet4_5" in listed(url), what="the account")
            answers = every_dialect(url, "ClaudeSonnet4_5", "hello")
            assert set(answers.values()) == {"Hello from cto.new. You said: hello"}, answers
            reply = chat(url).chat.completions.create(model="GPT5", messages=[
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": "why"}])
            assert reply.choices[0].message.content == "Hello from cto.new. You said: why"
            assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == "Thinking about: why"
            assert reply.usage is None  # cto.new reports none: unknown, not zero
            stream = chat(url).chat.completions.create(model="GPT5", stream=True,
                                                       messages=[{"role": "user", "content": "go on"}])
            deltas = [c.choices[0].delta for c in stream if c.choices]
            assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == \
                "Thinking about: go on"
            message = anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY).messages.create(
                model="ClaudeSonnet4_5", max_tokens=100, messages=[{"role": "user", "content": "think"}])
            assert [b.type for b in message.content] == ["thinking", "text"]
    assert clerk.token_calls == 1  # one 60-second JWT served every request
    assert "system:\nBe brief.\n\nuser:\nwhy" in engine.prompts
    assert len(set(engine.chats)) == len(engine.chats) == 11  # a new chat per request


def test_concurrent_requests_share_one_token_mint(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    login(clerk, engine, tmp_path, "__client=cookie-a")
    with router(clerk, engine, tmp_path) as url:
        clients = [chat(url) for _ in range(6)]
        answers: list[str] = []
        threads = [threading.Thread(target=lambda c=client: answers.append(c.chat.completions.create(
            model="GPT5", messages=[{"role": "user", "content": "x"}]).choices[0].message.content or ""))
            for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert answers == ["Hello from cto.new. You said: x"] * 6
    assert clerk.token_calls == 1


def test_a_token_near_expiry_is_minted_again(engine: FakeEngineLabs, tmp_path: Path) -> None:
    with FakeClerk(api_keys=("cookie-a",), ttl=16.0) as clerk:  # inside the 15 s lead after a second
        login(clerk, engine, tmp_path, "__client=cookie-a")
        with router(clerk, engine, tmp_path) as url:
            ask = chat(url).chat.completions.create
            assert ask(model="GPT5", messages=[{"role": "user", "content": "a"}]).choices[0].message.content
            assert clerk.token_calls == 1
            time.sleep(1.2)  # now less than the lead is left
            assert ask(model="GPT5", messages=[{"role": "user", "content": "b"}]).choices[0].message.content
            assert clerk.token_calls == 2


def test_emulated_tools_through_the_anthropic_sdk(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    login(clerk, engine, tmp_path, "__client=cookie-a")
    tool = {"name": "get_weather", "description": "Weather for a city",
            "input_schema": WEATHER["function"]["parameters"]}
    with router(clerk, engine, tmp_path) as url:
        client = anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)
        messages: list[Any] = [{"role": "user", "content": "CALL_TOOL for Oslo"}]
        first = client.messages.create(model="ClaudeSonnet4_5", max_tokens=200, tools=[tool],  # type: ignore[list-item]
                                       messages=messages)
        use = next(b for b in first.content if b.type == "tool_use")
        assert first.stop_reason == "tool_use" and use.name == "get_weather" and use.input == {"city": "x"}
        messages += [{"role": "assistant", "content": first.content},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "snow"}]}]
        with client.messages.stream(model="ClaudeSonnet4_5", max_tokens=200, tools=[tool],  # type: ignore[list-item]
                                    messages=messages) as events:
            assert events.get_final_text() == "Tool result received: snow"


def test_a_signed_out_cookie_fails_over_and_is_marked(clerk: FakeClerk, engine: FakeEngineLabs,
                                                       tmp_path: Path) -> None:
    login(clerk, engine, tmp_path, "__client=cookie-a")
    login(clerk, engine, tmp_path, "__client=cookie-b")
    clerk.signed_out.add("cookie-a")
    with router(clerk, engine, tmp_path) as url:
        for text in ("one", "two", "three"):
            reply = chat(url).chat.completions.create(model="GPT5", messages=[{"role": "user", "content": text}])
            assert reply.choices[0].message.content == f"Hello from cto.new. You said: {text}"
        cooling = call(f"{url}/v0/management/cooldowns", headers={"authorization": f"Bearer {MANAGEMENT_KEY}"})
    [row] = cooling.body["cooldowns"]
    assert row["label"] == "ctonew:cookie-a@example.com" and "needs a new login" in row["reason"]
    assert row["model"] == "*" or row["seconds_left"] > 600


def test_a_429_fails_over_to_the_next_account(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    login(clerk, engine, tmp_path, "__client=cookie-a")
    login(clerk, engine, tmp_path, "__client=cookie-b")
    engine.push(Scenario.fail(429, "too many requests", retry_after=30))
    with router(clerk, engine, tmp_path) as url:
        reply = chat(url).chat.completions.create(model="GPT5", messages=[{"role": "user", "content": "x"}])
        assert reply.choices[0].message.content == "Hello from cto.new. You said: x"
        cooling = call(f"{url}/v0/management/cooldowns", headers={"authorization": f"Bearer {MANAGEMENT_KEY}"})
    assert [row["model"] for row in cooling.body["cooldowns"]] == ["GPT5"]
    assert 20 < cooling.body["cooldowns"][0]["seconds_left"] <= 30


def test_a_cut_or_silent_stream_is_an_error(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    login(clerk, engine, tmp_path, "__client=cookie-a")
    engine.push(Scenario(cut_after=4), Scenario(chunk_delay=3.0))
    with router(clerk, engine, tmp_path, timeouts={"idle": 0.5},
                **{"transient-error-cooldown-seconds": 0}) as url:
        received = ""
        with pytest.raises(openai.APIError) as cut:
            for chunk in chat(url).chat.completions.create(model="GPT5", stream=True, messages=[
                    {"role": "user", "content": "a long answer please"}]):
                received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        assert "closed the stream before the turn ended" in str(cut.value.message)
        with pytest.raises(openai.APIStatusError) as silent:
            chat(url).chat.completions.create(model="GPT5", messages=[{"role": "user", "content": "x"}])
        assert silent.value.status_code == 504 and "sent nothing for 0.5s" in silent.value.message


def test_the_management_api_takes_a_cookie(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    with router(clerk, engine, tmp_path) as url:
        headers = {"authorization": f"Bearer {MANAGEMENT_KEY}"}
        refused = call(f"{url}/v0/management/ctonew-import", {"cookie": "__client=nope"}, headers)
        assert refused.status == 400 and "refused the cookie" in refused.body["error"]["message"]
        saved = call(f"{url}/v0/management/ctonew-import", {"cookie": "__client=cookie-b"}, headers)
        assert saved.status == 200 and saved.body["accounts"] == ["ctonew-cookie-b@example.com"]
        wait_for(lambda: "GPT5" in listed(url), what="the stored account to load")
        reply = chat(url).chat.completions.create(model="GPT5", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello from cto.new. You said: hi"


def test_crossroads_login_ctonew_stores_the_cookie(clerk: FakeClerk, engine: FakeEngineLabs, tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(orjson.dumps({"auth-dir": str(tmp_path / "auth"),
                                         "oauth-endpoints": endpoints(clerk, engine)}).decode())
    command = [sys.executable, "-m", "crossroads", "login", "ctonew", "--config", str(config_file), "--cookie"]
    done = subprocess.run([*command, "__client=cookie-b"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stored = orjson.loads((tmp_path / "auth" / "ctonew-cookie-b@example.com.json").read_bytes())
    assert stored["cookie"] == "__client=cookie-b" and stored["type"] == "ctonew"
    refused = subprocess.run([*command, "__client=gone"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("login failed: cto.new refused the cookie")
    assert "Traceback" not in refused.stderr
