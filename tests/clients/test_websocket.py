"""The Responses API over WebSocket (what Codex tries first), with a real
WebSocket client (aiohttp) and with Codex itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.clients.agents import BIN, CODEX_MODEL, FAKE_KEY, missing_clis
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import FakeServer, Scenario
from tests.fakes.openai_responses import FakeOpenAIResponses
from tests.harness import CLIENT_KEY, RouterProcess

BETA = {"openai-beta": "responses_websockets=2026-02-06"}
AUTH = {"authorization": f"Bearer {CLIENT_KEY}", **BETA}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeServer]]:
    servers: dict[str, FakeServer] = {"responses": FakeOpenAIResponses(api_keys=[FAKE_KEY]).start(),
                                      "anthropic": FakeAnthropic(api_keys=[FAKE_KEY]).start()}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def router(fakes: dict[str, FakeServer]) -> Iterator[RouterProcess]:
    config = {
        "api-keys": [CLIENT_KEY],
        "codex-api-key": [{"api-key": FAKE_KEY, "base-url": f"{fakes['responses'].base_url}/v1",
                           "models": [{"name": CODEX_MODEL}]}],
        "claude-api-key": [{"api-key": FAKE_KEY, "base-url": fakes["anthropic"].base_url,
                            "models": [{"name": "claude-sonnet-4-5"}]}],
    }
    with RouterProcess(config) as process:
        yield process


def ws_url(router: RouterProcess, path: str = "/v1/responses") -> str:
    return router.base_url.replace("http://", "ws://") + path


async def exchange(url: str, frames: list[dict[str, Any]], headers: dict[str, str] = AUTH) -> list[list[Any]]:
    """Send each frame in turn on one socket; collect the events of each reply."""
    replies: list[list[Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as socket:
        for frame in frames:
            if callable(frame):
                frame = frame(replies)
            await socket.send_str(orjson.dumps(frame).decode())
            events: list[Any] = []
            while True:
                message = await asyncio.wait_for(socket.receive(), timeout=20)
                assert message.type == aiohttp.WSMsgType.TEXT, message
                event = orjson.loads(message.data)
                events.append(event)
                if event["type"] in ("response.completed", "response.failed", "response.incomplete", "error"):
                    break
            replies.append(events)
    return replies


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def create(model: str, input_items: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "response.create", "model": model, "input": input_items, "stream": True, "store": False,
            **extra}


def text_of(events: list[Any]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def test_upgrade_without_a_client_key_is_refused(router: RouterProcess) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        run(exchange(ws_url(router), [], headers=BETA))
    assert refused.value.status == 403


def test_unknown_path_is_refused(router: RouterProcess) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError):
        run(exchange(ws_url(router, "/v1/chat/completions"), [], headers=AUTH))


@pytest.mark.parametrize("path", ["/v1/responses", "/backend-api/codex/responses"])
def test_response_streams_as_text_frames(router: RouterProcess, fakes: dict[str, FakeServer], path: str) -> None:
    fakes["responses"].clear()
    fakes["responses"].push(Scenario(text="over the socket"))
    [events] = run(exchange(ws_url(router, path), [create(CODEX_MODEL, "hi there")]))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert text_of(events) == "over the socket"
    [received] = fakes["responses"].requests
    assert received.body["input"] == "hi there"
    assert "type" not in received.body


def test_previous_response_id_is_expanded_for_a_stateless_upstream(router: RouterProcess,
                                                                   fakes: dict[str, FakeServer]) -> None:
    fake = fakes["anthropic"]
    fake.clear()
    fake.push(Scenario(tool_calls=[("shell", {"cmd": "ls"})]), Scenario(text="there are 3 files"))
    tools = [{"type": "function", "name": "shell", "description": "run", "strict": False,
              "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
    first_input = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]}]

    def follow_up(replies: list[list[Any]]) -> dict[str, Any]:
        completed = replies[0][-1]["response"]
        call = next(item for item in completed["output"] if item["type"] == "function_call")
        return create("claude-sonnet-4-5", [{"type": "function_call_output", "call_id": call["call_id"],
                                             "output": "a b c"}],
                      tools=tools, previous_response_id=completed["id"])

    first, second = run(exchange(ws_url(router), [create("claude-sonnet-4-5", first_input, tools=tools),
                                                  follow_up]))  # type: ignore[list-item]
    assert first[-1]["type"] == "response.completed"
    assert text_of(second) == "there are 3 files"
    # the upstream saw the whole conversation: question, tool call, tool result
    messages = fake.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert b"list files" in orjson.dumps(messages[0])
    assert messages[1]["content"][-1]["type"] == "tool_use"
    assert messages[2]["content"][0]["type"] == "tool_result"
    assert messages[2]["content"][0]["tool_use_id"] == messages[1]["content"][-1]["id"]


def test_errors_are_error_frames_and_the_socket_stays_open(router: RouterProcess,
                                                           fakes: dict[str, FakeServer]) -> None:
    fakes["responses"].push(Scenario(text="still here"))
    failed, ok = run(exchange(ws_url(router), [create("no-such-model", "hi"), create(CODEX_MODEL, "hi")]))
    assert failed == [{"type": "error", "status": 404, "error": failed[0]["error"],
                       "request_id": failed[0]["request_id"]}]
    assert "no-such-model" in failed[0]["error"]["message"]
    assert text_of(ok) == "still here"


def test_prewarm_without_generation_answers_locally(router: RouterProcess, fakes: dict[str, FakeServer]) -> None:
    fakes["responses"].clear()
    [events] = run(exchange(ws_url(router), [create(CODEX_MODEL, [], generate=False)]))
    assert [e["type"] for e in events] == ["response.created", "response.completed"]
    assert fakes["responses"].requests == []


def test_codex_uses_the_websocket(router: RouterProcess, fakes: dict[str, FakeServer], tmp_path: Path) -> None:
    if missing_clis():
        if os.environ.get("CI") == "true":
            pytest.fail("coding-agent CLIs not installed")
        pytest.skip("coding-agent CLIs not installed")
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\nmodel_provider = "crossroads"\n\n[model_providers.crossroads]\n'
        f'name = "Crossroads"\nbase_url = "{router.base_url}/v1"\nenv_key = "CROSSROADS_API_KEY"\n'
        'wire_api = "responses"\nsupports_websockets = true\n')
    fake = fakes["responses"]
    fake.clear()
    fake.push(Scenario(tool_calls=[("exec_command", {"cmd": "echo ws-tool > ws.txt && wc -c ws.txt"})]),
              Scenario(text="WS-FINAL"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
           "CROSSROADS_API_KEY": CLIENT_KEY, "RUST_LOG": "codex_api=info", "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(BIN / "codex"), "exec", "--skip-git-repo-check", "--json",
                           "--dangerously-bypass-approvals-and-sandbox", "go"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "WS-FINAL" in proc.stdout, [(r.path, r.body.get("previous_response_id"), len(r.body["input"]), [i.get("type") for i in r.body["input"]]) for r in fake.requests]
    assert (work / "ws.txt").read_text() == "ws-tool\n"
    last = fake.requests[-1].body
    assert b"8 ws.txt" in fake.requests[-1].raw
    # Codex sent only the new items after previous_response_id; the upstream got the whole turn
    assert "previous_response_id" not in last
    assert [i["type"] for i in last["input"]][-2:] == ["function_call", "function_call_output"]
    assert any(i.get("role") == "user" and i["content"][0].get("text") == "go" for i in last["input"])
    assert "successfully connected to Responses WebSocket" in proc.stderr, proc.stderr[-3000:]


def test_each_socket_request_gets_its_own_log_line(router: RouterProcess, fakes: dict[str, FakeServer]) -> None:
    fakes["responses"].push(Scenario(text="first"), Scenario(text="second"))
    replies = run(exchange(ws_url(router), [create(CODEX_MODEL, "one"), create(CODEX_MODEL, "two"),
                                            create("no-such-model", "three")]))
    error = replies[-1][-1]
    assert error["type"] == "error" and error["status"] == 404 and len(error["request_id"]) == 32
    deadline = time.monotonic() + 3  # request lines are written in batches, within a moment of the reply
    while True:
        lines = [line for line in router.log().splitlines()
                 if "crossroads.requests" in line and "WEBSOCKET /v1/responses" in line]
        if (len(lines) >= 3 and error["request_id"] in lines[-1]) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) >= 3
    assert "status=200" in lines[-3] and "in=openai-responses" in lines[-3] and "status=200" in lines[-2]
    assert "status=404" in lines[-1] and "model=no-such-model" in lines[-1]
    assert len({line.split(": ", 1)[1].split(" ", 1)[0] for line in lines[-3:]}) == 3  # three request ids
    assert error["request_id"] in lines[-1]
