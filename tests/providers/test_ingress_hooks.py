"""Behaviours that need the pipeline/server hooks ``Provider.speaks`` (``also_speaks``)
and ``Provider.accounts_from_record``: Kimi answers Anthropic clients on its
Anthropic endpoint; a multi-project Gemini CLI file serves as one account per
project."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from crossroads.auth import tokens
from tests.fakes.cloudcode import FakeCloudCode
from tests.fakes.common import Scenario
from tests.fakes.oauth import FakeIdentity
from tests.fakes.subscriptions import FakeKimi
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import via_anthropic, via_chat


def test_kimi_passes_anthropic_clients_through_to_its_anthropic_endpoint(tmp_path: Path) -> None:
    with FakeIdentity(client_id="test-client") as identity, FakeKimi(identity, device_id="dev-1") as upstream:
        grant = identity.issue()
        (tmp_path / "kimi-a.json").write_bytes(orjson.dumps({
            "type": "kimi", "access_token": grant.access_token, "refresh_token": grant.refresh_token,
            "device_id": "dev-1", "expired": tokens.format_time(time.time() + 7200)}))
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path),
                  "oauth-endpoints": {"kimi": {"token-url": f"{identity.base_url}/oauth/token",
                                               "base-url": upstream.api_url}}}
        with RouterProcess(config) as router:
            assert "You said: hello" in via_anthropic(router, "kimi-k2", "hello")
            assert via_anthropic(router, "kimi-k2", "streamed", stream=True).endswith("You said: streamed")
            assert "You said: chat" in via_chat(router, "kimi-k2", "chat")
        paths = [r.path for r in upstream.requests]
        assert paths == ["/coding/v1/messages", "/coding/v1/messages", "/coding/v1/chat/completions"]
        assert upstream.requests[0].body["system"] == "Be brief."  # untranslated
        assert upstream.requests[0].headers["anthropic-version"].startswith("20")  # the client's own


class MultiProjectCloudCode(FakeCloudCode):
    def __init__(self, identity: FakeIdentity, projects: tuple[str, ...]) -> None:
        super().__init__(identity, project=projects[0], user_agent_prefix="GeminiCLI/")
        self.projects = projects

    def _validate_envelope(self, body: Any) -> dict[str, Any]:
        if isinstance(body, dict) and body.get("project") in self.projects:
            self.project = body["project"]
        return super()._validate_envelope(body)


def test_gemini_multi_project_file_serves_one_account_per_project(tmp_path: Path) -> None:
    with FakeIdentity(client_id="test-client") as identity, \
            MultiProjectCloudCode(identity, ("proj-a", "proj-b")) as upstream:
        grant = identity.issue()
        (tmp_path / "gemini-g@example.com.json").write_bytes(orjson.dumps({
            "type": "gemini", "email": "g@example.com", "project_id": "proj-a,proj-b",
            "token": {"access_token": grant.access_token, "refresh_token": grant.refresh_token,
                      "expiry": tokens.format_time(time.time() + 7200)}}))
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "routing": {"session-affinity": False},
                  "oauth-endpoints": {"gemini": {"token-url": f"{identity.base_url}/oauth/token",
                                                 "base-url": upstream.base_url}}}
        with RouterProcess(config) as router:
            for n in range(4):
                assert f"You said: {n}" in via_chat(router, "gemini-2.5-pro", str(n))
            assert {r.body["project"] for r in upstream.requests} == {"proj-a", "proj-b"}
            upstream.clear()
            upstream.push(Scenario.fail(429, "project quota exhausted", retry_after=600))
            for n in range(3):  # the exhausted project cools down; the other keeps serving
                assert f"You said: q{n}" in via_chat(router, "gemini-2.5-pro", f"q{n}")
            projects = [r.body["project"] for r in upstream.requests]
            assert len(projects) == 4 and len(set(projects[1:])) == 1 and projects[0] != projects[1]
