"""Each CLI's real first request (recorded by tests/clients/record.py: ~50-90 KB,
dozens of tools, cache_control'd system blocks, beta fields) replayed through
every translation path; the upstream fakes validate what arrives with the
official SDK types, so a field the router mistranslates fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from tests.clients.agents import FAKE_KEY, UPSTREAMS, make_fake
from tests.fakes.common import FakeServer
from tests.harness import CLIENT_KEY, RouterProcess

RECORDED = Path(__file__).resolve().parent / "recorded"
CLIS = ("claude-code", "codex", "gemini-cli")
STREAM_END = {"claude-code": b"event: message_stop", "codex": b"response.completed",
              "gemini-cli": b'"finishReason"'}
http = urllib3.PoolManager()


def recorded(cli: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((RECORDED / f"{cli}.json").read_bytes())
    return document


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeServer]]:
    servers = {upstream: make_fake(upstream).start() for upstream in UPSTREAMS}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def router(fakes: dict[str, FakeServer]) -> Iterator[RouterProcess]:
    def models(upstream: str) -> list[dict[str, str]]:
        return [{"name": f"replay-{upstream}"}]

    config = {
        "api-keys": [CLIENT_KEY],
        "claude-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["anthropic"].base_url,
                            "models": models("anthropic")}],
        "gemini-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["gemini"].base_url, "models": models("gemini")}],
        "codex-api-key": [{"api-key": FAKE_KEY, "base-url": f"{fakes['openai-responses'].base_url}/v1",
                           "models": models("openai-responses")}],
        "openai-compatibility": [{"name": "chat", "base-url": f"{fakes['openai-chat'].base_url}/v1",
                                  "api-key-entries": [{"api-key": FAKE_KEY}], "models": models("openai-chat")}],
    }
    with RouterProcess(config) as process:
        yield process


def test_recordings_are_representative() -> None:
    claude, codex, gemini = (recorded(cli)["body"] for cli in CLIS)
    assert len(claude["tools"]) >= 20
    assert sum("cache_control" in block for block in claude["system"]) >= 2
    assert any(message["role"] == "system" for message in claude["messages"])
    assert {"thinking", "context_management", "output_config"} <= set(claude)
    assert {tool["type"] for tool in codex["tools"]} >= {"function", "namespace", "web_search"}
    assert "instructions" not in codex
    assert "parametersJsonSchema" in gemini["tools"][0]["functionDeclarations"][0]
    raw = b"".join((RECORDED / f"{cli}.json").read_bytes() for cli in CLIS)
    for secret in (b"recording-key", b"sk-ant", b"Bearer "):
        assert secret not in raw


def _function_tools(cli: str, body: dict[str, Any]) -> set[str]:
    if cli == "claude-code":
        return {tool["name"] for tool in body["tools"] if "input_schema" in tool}
    if cli == "codex":
        return {tool["name"] for tool in body["tools"] if tool["type"] == "function"}
    return {decl["name"] for tool in body["tools"] for decl in tool.get("functionDeclarations", [])}


def _upstream_tool_names(upstream: str, body: dict[str, Any]) -> set[str]:
    tools = body.get("tools") or []
    if upstream == "anthropic":
        return {tool["name"] for tool in tools if "name" in tool}
    if upstream == "openai-chat":
        return {tool["function"]["name"] for tool in tools if tool.get("type") == "function"}
    if upstream == "openai-responses":
        return {tool["name"] for tool in tools if tool.get("type") == "function"}
    return {decl["name"] for tool in tools for decl in tool.get("functionDeclarations") or []}


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("cli", CLIS)
def test_first_request_replays_through_every_path(router: RouterProcess, fakes: dict[str, FakeServer],
                                                  cli: str, upstream: str) -> None:
    document = recorded(cli)
    body = dict(document["body"])
    model = f"replay-{upstream}"
    path = document["path"]
    if cli == "gemini-cli":
        path = f"/v1beta/models/{model}:streamGenerateContent"
    else:
        body["model"] = model
    query = "&".join(f"{k}={v}" for k, v in document["query"].items())
    headers = {**document["headers"], "authorization": f"Bearer {CLIENT_KEY}"}
    fake = fakes[upstream]
    fake.clear()
    response = http.request("POST", f"{router.base_url}{path}" + (f"?{query}" if query else ""),
                            body=orjson.dumps(body), headers=headers, retries=False, timeout=30)
    text = response.data
    assert response.status == 200, text[:2000]
    assert STREAM_END[cli] in text, text[-2000:]
    assert b"error" not in text.split(b"\n", 1)[0], text[:500]
    received = [r for r in fake.requests if r.method == "POST"]
    assert len(received) == 1
    upstream_body = received[0].body
    # every function tool the CLI offered reaches the upstream
    missing = _function_tools(cli, document["body"]) - _upstream_tool_names(upstream, upstream_body)
    assert not missing, missing
    # the system prompt survives translation (its opening words, wherever the dialect puts it)
    assert _system_marker(cli, document["body"]).encode() in received[0].raw


def _system_marker(cli: str, body: dict[str, Any]) -> str:
    if cli == "claude-code":
        text = body["system"][-1]["text"]
    elif cli == "codex":
        text = body["input"][0]["content"][0]["text"]
    else:
        text = body["systemInstruction"]["parts"][0]["text"]
    return orjson.dumps(text.strip()[:40]).decode()[1:-1]
