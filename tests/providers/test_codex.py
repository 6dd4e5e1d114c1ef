"""ChatGPT (Codex) subscription end to end: login -> auth file -> every
ingress dialect (streaming upstream, assembled replies) -> reasoning ->
refresh near expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from crossroads.auth import flows, tokens
from crossroads.auth.callback import parse_redirect
from crossroads.auth.spec import LoginResult
from tests.auth.tables import oauth_table
from tests.auth.test_flows import follow
from tests.fakes.codex_backend import FakeCodexBackend
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import ALL, via_chat

MODEL = "gpt-5.1-codex"
TEN_DAYS = 10 * 24 * 3600  # longer than Codex's 5-day refresh lead


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-42", "chatgpt_plan_type": "pro"}}
    with FakeIdentity(client_id="test-client", expires_in=TEN_DAYS, id_token_claims=claims) as server:
        yield server


@pytest.fixture(scope="module")
def backend(identity: FakeIdentity) -> Iterator[FakeCodexBackend]:
    with FakeCodexBackend(identity, account_id="acct-42") as server:
        yield server


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, identity: FakeIdentity,
           backend: FakeCodexBackend) -> Iterator[tuple[RouterProcess, Path]]:
    auth_dir = tmp_path_factory.mktemp("codex-auth")
    oauth_endpoints = {"codex": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                                 "authorize-url": f"{identity.base_url}/oauth/authorize",
                                 "base-url": backend.api_url}}
    table = oauth_table(oauth_endpoints)

    async def login() -> LoginResult:
        started = flows.start(table, "codex", port=1)
        [result] = await flows.complete(started, parse_redirect(await follow(started.url, into_callback=False)))
        return result

    result = asyncio.run(login())
    auth_file = auth_dir / f"{result.record_id}.json"
    auth_file.write_bytes(orjson.dumps(result.data))
    config = {"api-keys": [CLIENT_KEY], "auth-dir": str(auth_dir), "oauth-endpoints": oauth_endpoints}
    with RouterProcess(config) as process:
        yield process, auth_file


def test_every_ingress_dialect_streams_upstream(router: tuple[RouterProcess, Path],
                                                backend: FakeCodexBackend) -> None:
    process, _ = router
    backend.clear()
    for name, ask in ALL.items():
        assert f"You said: hi from {name}" in ask(process, MODEL, f"hi from {name}"), name
    assert "You said: streamed" in via_chat(process, MODEL, "streamed", stream=True)
    for request in backend.requests:
        assert request.body["stream"] is True and request.body["store"] is False
        assert request.headers["chatgpt-account-id"] == "acct-42"
        assert request.headers["originator"] == "codex_cli_rs"
        assert "reasoning.encrypted_content" in request.body["include"]
    by_path = [r.body.get("instructions") for r in backend.requests]
    # the client's system prompt is kept as the instructions (gemini sent none)
    assert by_path[:4] == ["Be brief.", "Be brief.", "Be brief.", ""]


def test_reasoning_effort_and_summary_reach_chat_clients(router: tuple[RouterProcess, Path],
                                                         backend: FakeCodexBackend) -> None:
    process, _ = router
    client = openai.OpenAI(base_url=f"{process.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    reply = client.chat.completions.create(model=MODEL, reasoning_effort="high", max_tokens=500,
                                           messages=[{"role": "user", "content": "think"}])
    sent = backend.requests[-1].body
    assert sent["reasoning"]["effort"] == "high" and sent["reasoning"]["summary"] in ("auto", "detailed")
    assert "max_output_tokens" not in sent
    message = reply.choices[0].message
    assert "You said: think" in (message.content or "")
    assert "Thinking about: think" in str(message.model_extra.get("reasoning_content")
                                         or message.model_extra.get("reasoning") or message.model_extra)


def test_refresh_near_expiry(router: tuple[RouterProcess, Path], identity: FakeIdentity) -> None:
    process, auth_file = router
    calls = identity.refresh_calls
    data = orjson.loads(auth_file.read_bytes())
    data["expired"] = tokens.format_time(time.time() + 3600)  # inside the 5-day lead
    auth_file.write_bytes(orjson.dumps(data))
    deadline = time.monotonic() + 10
    while identity.refresh_calls == calls and time.monotonic() < deadline:
        assert "You said: again" in via_chat(process, MODEL, "again")
        time.sleep(0.2)
    stored = orjson.loads(auth_file.read_bytes())
    assert identity.refresh_calls == calls + 1
    assert stored["refresh_token"] != data["refresh_token"] and stored["account_id"] == "acct-42"
    assert "You said: still" in via_chat(process, MODEL, "still")
