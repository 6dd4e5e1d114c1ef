"""Gemini web natively (the ``gemini-web`` provider, which owns its exchange)
against tests/fakes/gemini_web.py: the cookie login, the app page's tokens,
StreamGenerate frames (text and thoughts so far), the cookie rotation stored
before use (so it survives a restart), the error codes and emulated tools."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from crossroads.auth import tokens
from crossroads.auth.oauth import LoginError
from crossroads.providers import gemini_web
from tests.auth.tables import oauth_table
from tests.fakes.common import Scenario
from tests.fakes.gemini_web import FakeGeminiWeb
from tests.providers.side_harness import CLIENT_KEY, MANAGEMENT_KEY, call, listed, served, wait_for
from tests.providers.test_side_services import WEATHER, every_dialect


@pytest.fixture
def google() -> Iterator[FakeGeminiWeb]:
    with FakeGeminiWeb(api_keys=("psid-a", "psid-b")) as fake:
        yield fake


def endpoints(google: FakeGeminiWeb) -> dict[str, Any]:
    return {"gemini-web": {"token-url": google.base_url, "base-url": google.base_url}}


def login(google: FakeGeminiWeb, auth_dir: Path, psid: str, psidts: str | None = None) -> Path:
    psidts = FakeGeminiWeb.psidts(psid, 0) if psidts is None else psidts
    cookie = f"__Secure-1PSID={psid}" + (f"; __Secure-1PSIDTS={psidts}" if psidts else "")
    [result] = asyncio.run(gemini_web.CookieLogin().run(oauth_table(endpoints(google)).entry("gemini-web"),
                                                        {"cookie": cookie}))
    path = auth_dir / f"{result.record_id}.json"
    path.write_bytes(orjson.dumps(result.data))
    return path


def chat(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0)


def router(google: FakeGeminiWeb, tmp_path: Path, **settings: Any) -> Any:
    return served(tmp_path, **{"oauth-endpoints": endpoints(google), **settings})


def test_cookie_login_reads_the_app_page(google: FakeGeminiWeb, tmp_path: Path) -> None:
    record = orjson.loads(login(google, tmp_path, "psid-a").read_bytes())
    assert record["email"] == "psid-a@gmail.com" and record["psidts"] == "ts-psid-a-0"
    assert record["access_token"].startswith("at-psid-a-") and record["bl"].startswith("boq_assistant")
    with pytest.raises(LoginError, match="paste both __Secure-1PSID and __Secure-1PSIDTS"):
        login(google, tmp_path, "psid-a", psidts="")
    with pytest.raises(LoginError, match="not signed in any more"):
        login(google, tmp_path, "psid-unknown")


def test_every_dialect_with_thoughts_as_reasoning(google: FakeGeminiWeb, tmp_path: Path) -> None:
    login(google, tmp_path, "psid-a")
    with router(google, tmp_path) as url:
        wait_for(lambda: "gemini-web-pro" in listed(url), what="the account")
        answers = every_dialect(url, "gemini-web-pro", "hello")
        assert set(answers.values()) == {"Hello from Gemini web. You said: hello"}, answers
        reply = chat(url).chat.completions.create(model="gemini-web-flash", messages=[
            {"role": "user", "content": "why"}])
        assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == "Thinking about: why"
        assert reply.usage is None
        message = anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY).messages.create(
            model="gemini-web-flash-lite", max_tokens=100, messages=[{"role": "user", "content": "hm"}])
        assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
            ("thinking", "Thinking about: hm"), ("text", "Hello from Gemini web. You said: hm")]
    assert google.models[-2:] == ["flash", "flash-lite"] and google.models[0] == "pro"


def test_a_rotated_cookie_is_stored_before_use_and_survives_a_restart(google: FakeGeminiWeb, tmp_path: Path) -> None:
    path = login(google, tmp_path, "psid-a")
    record = orjson.loads(path.read_bytes())
    record["expired"] = tokens.format_time(time.time() + 30)  # within the lead: due for rotation
    path.write_bytes(orjson.dumps(record))
    with router(google, tmp_path) as url:
        reply = chat(url).chat.completions.create(model="gemini-web-pro", messages=[{"role": "user", "content": "a"}])
        assert reply.choices[0].message.content == "Hello from Gemini web. You said: a"
    stored = orjson.loads(path.read_bytes())
    assert google.rotations == 1 and stored["psidts"] == "ts-psid-a-1"
    google.generation["psid-a"] += 1  # Google rotates again elsewhere: the first cookie is dead now
    stored["psidts"] = "ts-psid-a-2"
    path.write_bytes(orjson.dumps(stored))
    with router(google, tmp_path) as url:  # a restart serves from the stored, rotated cookie
        reply = chat(url).chat.completions.create(model="gemini-web-pro", messages=[{"role": "user", "content": "b"}])
        assert reply.choices[0].message.content == "Hello from Gemini web. You said: b"


def test_usage_limit_cools_the_model_and_a_blocked_ip_the_account(google: FakeGeminiWeb, tmp_path: Path) -> None:
    login(google, tmp_path, "psid-a")
    login(google, tmp_path, "psid-b")
    with router(google, tmp_path) as url:
        for model, code in (("gemini-web-pro", "1037"), ("gemini-web-flash", "1060")):
            google.push(Scenario.fail(200, "scripted", type=code))
            reply = chat(url).chat.completions.create(model=model, messages=[{"role": "user", "content": code}])
            assert reply.choices[0].message.content == f"Hello from Gemini web. You said: {code}"
        cooling = call(f"{url}/v0/management/cooldowns", headers={"authorization": f"Bearer {MANAGEMENT_KEY}"})
    rows = {row["model"]: row for row in cooling.body["cooldowns"]}
    assert "usage limit" in rows["gemini-web-pro"]["reason"] and rows["gemini-web-pro"]["seconds_left"] > 3000
    [blocked] = [row for model, row in rows.items() if model != "gemini-web-pro"]  # every model of the account
    assert "IP address is temporarily blocked" in blocked["reason"] and blocked["seconds_left"] > 20000


def test_dead_cookies_need_a_new_login(google: FakeGeminiWeb, tmp_path: Path) -> None:
    path = login(google, tmp_path, "psid-a")
    record = orjson.loads(path.read_bytes())
    record["expired"] = tokens.format_time(time.time() + 30)
    path.write_bytes(orjson.dumps(record))
    google.dead.add("psid-a")
    with router(google, tmp_path) as url:
        with pytest.raises(openai.APIStatusError) as refused:
            chat(url).chat.completions.create(model="gemini-web-pro", messages=[{"role": "user", "content": "x"}])
        assert refused.value.status_code == 502 and "needs a new login" in refused.value.message
        assert refused.value.code == "upstream_credentials_refused"
    assert orjson.loads(path.read_bytes())["needs_login"] is True


def test_emulated_tools_through_the_openai_sdk(google: FakeGeminiWeb, tmp_path: Path) -> None:
    login(google, tmp_path, "psid-a")
    with router(google, tmp_path) as url:
        client = chat(url)
        messages: list[Any] = [{"role": "user", "content": "CALL_TOOL in Rome"}]
        first = client.chat.completions.create(model="gemini-web-pro", messages=messages, tools=[WEATHER])  # type: ignore[list-item]
        call_made = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert first.choices[0].finish_reason == "tool_calls" and call_made.function.name == "get_weather"
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call_made.id, "content": "warm"}]
        second = client.chat.completions.create(model="gemini-web-pro", messages=messages, tools=[WEATHER])  # type: ignore[list-item]
        assert second.choices[0].message.content == "Tool result received: warm"


def firefox_profile(directory: Path, cookies: dict[str, str]) -> Path:
    """A Firefox cookie store (moz_cookies) holding ``cookies`` for .google.com."""
    directory.mkdir()
    path = directory / "cookies.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE moz_cookies (id INTEGER PRIMARY KEY, originAttributes TEXT NOT NULL DEFAULT '', "
                   "name TEXT, value TEXT, host TEXT, path TEXT, expiry INTEGER, lastAccessed INTEGER, "
                   "creationTime INTEGER, isSecure INTEGER, isHttpOnly INTEGER, inBrowserElement INTEGER "
                   "DEFAULT 0, sameSite INTEGER DEFAULT 0, rawSameSite INTEGER DEFAULT 0, "
                   "schemeMap INTEGER DEFAULT 0)")
        expiry = int(time.time()) + 86400
        db.executemany("INSERT INTO moz_cookies (name, value, host, path, expiry, lastAccessed, creationTime, "
                       "isSecure, isHttpOnly) VALUES (?, ?, '.google.com', '/', ?, 0, 0, 1, 1)",
                       [(name, value, expiry) for name, value in cookies.items()])
    return path


def test_crossroads_login_gemini_web_from_a_browser_profile(google: FakeGeminiWeb, tmp_path: Path) -> None:
    store = firefox_profile(tmp_path / "profile", {"__Secure-1PSID": "psid-b", "__Secure-1PSIDTS": "ts-psid-b-0",
                                                   "NID": "unrelated"})
    config_file = tmp_path / "config.yaml"
    config_file.write_text(orjson.dumps({"auth-dir": str(tmp_path / "auth"),
                                         "oauth-endpoints": endpoints(google)}).decode())
    command = [sys.executable, "-m", "crossroads", "login", "gemini-web", "--config", str(config_file)]
    done = subprocess.run([*command, "--browser", "firefox", "--cookie-file", str(store)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stored = orjson.loads((tmp_path / "auth" / "gemini-web-psid-b@gmail.com.json").read_bytes())
    assert (stored["psid"], stored["psidts"]) == ("psid-b", "ts-psid-b-0")
    unknown = subprocess.run([*command, "--browser", "netscape"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and "unknown browser 'netscape'" in unknown.stderr
