"""Gemini CLI and Antigravity subscriptions end to end: Google login with
project discovery/onboarding -> auth file -> every ingress dialect through
the v1internal envelope -> refresh near expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from crossroads import ir
from crossroads.auth import flows, tokens
from crossroads.auth.callback import parse_redirect
from crossroads.auth.spec import LoginResult
from crossroads.dialects import cloudcode
from tests.auth.tables import oauth_table
from tests.auth.test_flows import follow
from tests.fakes.cloudcode import FakeCloudCode
from tests.fakes.oauth import FakeIdentity
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import ALL, via_chat


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", client_secret="test-secret", email="g@example.com") as server:
        yield server


def endpoints(kind: str, identity: FakeIdentity, upstream: FakeCloudCode) -> dict[str, Any]:
    return {kind: {"client-id": "test-client", "client-secret": "test-secret",
                   "token-url": f"{identity.base_url}/oauth/token",
                   "authorize-url": f"{identity.base_url}/oauth/authorize",
                   "userinfo-url": f"{identity.base_url}/userinfo", "base-url": upstream.base_url}}


def login(kind: str, identity: FakeIdentity, upstream: FakeCloudCode, auth_dir: Path) -> Path:
    table = oauth_table(endpoints(kind, identity, upstream))

    async def run() -> list[LoginResult]:
        started = flows.start(table, kind, port=1, options={"poll_seconds": 0})
        assert "access_type=offline" in started.url
        return await flows.complete(started, parse_redirect(await follow(started.url, into_callback=False)))

    [result] = asyncio.run(run())
    path = auth_dir / f"{result.record_id}.json"
    path.write_bytes(orjson.dumps(result.data))
    return path


@pytest.mark.parametrize(("kind", "model", "agent"), [("gemini", "gemini-2.5-pro", "GeminiCLI/"),
                                                      ("antigravity", "claude-opus-4-5-thinking", "antigravity/")])
def test_login_then_every_dialect_then_refresh(tmp_path: Path, identity: FakeIdentity, kind: str, model: str,
                                               agent: str) -> None:
    with FakeCloudCode(identity, project=f"proj-{kind}", onboarded=False, onboard_polls=1,
                       user_agent_prefix=agent) as upstream:
        auth_file = login(kind, identity, upstream, tmp_path)
        data = orjson.loads(auth_file.read_bytes())
        assert data["project_id"] == f"proj-{kind}" and data["email"] == "g@example.com"
        assert [r.path.split(":")[-1] for r in upstream.requests] == ["loadCodeAssist", "onboardUser",
                                                                       "onboardUser"]
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path),
                  "oauth-endpoints": endpoints(kind, identity, upstream)}
        with RouterProcess(config) as router:
            upstream.clear()
            for name, ask in ALL.items():
                assert f"You said: via {name}" in ask(router, model, f"via {name}"), name
            assert "You said: streamed" in via_chat(router, model, "streamed", stream=True)
            for request in upstream.requests:
                assert request.body["project"] == f"proj-{kind}" and request.body["model"] == model
            assert upstream.requests[-1].query == {"alt": "sse"}
            if kind == "antigravity":
                assert upstream.requests[0].body["requestType"] == "agent"
            # refresh near expiry (the 5-minute lead)
            calls = identity.refresh_calls
            stored = orjson.loads(auth_file.read_bytes())
            soon = tokens.format_time(time.time() + 60)
            if kind == "gemini":
                stored["token"]["expiry"] = soon
            else:
                stored["expired"] = soon
            auth_file.write_bytes(orjson.dumps(stored))
            deadline = time.monotonic() + 10
            while identity.refresh_calls == calls and time.monotonic() < deadline:
                assert "You said: later" in via_chat(router, model, "later")
                time.sleep(0.2)
            assert identity.refresh_calls == calls + 1
            after = orjson.loads(auth_file.read_bytes())
            assert tokens.refresh_token(after) != tokens.refresh_token(stored)
            assert after["project_id"] == f"proj-{kind}"
            assert "You said: still" in via_chat(router, model, "still")


def test_envelope_round_trip() -> None:
    request = cloudcode.DIALECT.parse_request({"model": "gemini-2.5-pro", "project": "p", "request": {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}})
    assert request.model == "gemini-2.5-pro"
    rendered = cloudcode.DIALECT.render_request(request)
    assert rendered["model"] == "gemini-2.5-pro" and rendered["request"]["contents"][0]["parts"] == [{"text": "hi"}]
    with pytest.raises(ir.Error):
        cloudcode.DIALECT.parse_request({"model": "m"})
    decoder = cloudcode.DIALECT.stream_decoder()
    chunk = {"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": "yo"}]},
                                          "finishReason": "STOP"}]}, "traceId": "t"}
    events = decoder.feed(None, orjson.dumps(chunk).decode()) + decoder.close()
    assert any(isinstance(e, ir.PartDelta) and e.text == "yo" for e in events)
    assert isinstance(events[-1], ir.Finish)
    encoder = cloudcode.DIALECT.stream_encoder(model="m")
    framed = b"".join(encoder.encode(e) for e in events) + encoder.close()
    assert framed.startswith(b'data: {"response":')


def test_antigravity_falls_back_to_the_next_endpoint(tmp_path: Path, identity: FakeIdentity) -> None:
    from tests.fakes.common import Scenario

    with FakeCloudCode(identity, project="proj-ag", user_agent_prefix="antigravity/") as daily, \
            FakeCloudCode(identity, project="proj-ag", user_agent_prefix="antigravity/") as prod:
        login("antigravity", identity, daily, tmp_path)
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": {"antigravity": {
            **endpoints("antigravity", identity, daily)["antigravity"],
            "fallback-base-urls": f"{daily.base_url},{prod.base_url}"}}}
        with RouterProcess(config) as router:
            daily.clear()
            daily.push(Scenario.fail(503, "daily is down"))
            assert "You said: first" in via_chat(router, "gemini-2.5-pro", "first")
            assert [r.path for r in daily.requests] == ["/v1internal:generateContent"]
            assert len(prod.requests) == 1  # the same request, answered by the next endpoint
            assert "You said: second" in via_chat(router, "gemini-2.5-pro", "second")
            assert len(daily.requests) == 2  # daily stays first for later requests
