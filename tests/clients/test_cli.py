"""Claude Code, Codex CLI and Gemini CLI through Crossroads, end to end.

Each test is one CLI x one upstream dialect: a scripted fake model asks for a
shell command, the real CLI runs it and sends its output back, and the fake's
final answer must reach the CLI's output. The command writes a file and prints
that file's byte count, a value that appears nowhere in the tool call itself,
so finding it in the next upstream request proves the command really ran.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from tests.clients.agents import (
    CLAUDE_MODEL,
    CODEX_MODEL,
    GEMINI_CLASSIFIER_MODEL,
    GEMINI_FLASH_MODEL,
    UPSTREAMS,
    Run,
    Stack,
    missing_clis,
)
from tests.fakes.common import RecordedRequest, Scenario, fake_signature

COMMAND = "echo made-by-tool > made.txt && wc -c made.txt"
COMMAND_OUTPUT = "13 made.txt"  # len("made-by-tool\n") == 13
FINAL = "All done: the file is there (FINAL-ANSWER-7f3a)"
THINKING = "I should run the command first."

# The shell tool each CLI offers the model, and its arguments.
SHELL_CALL = {
    "claude": ("Bash", {"command": COMMAND, "description": "Write made.txt and count its bytes"}),
    "codex": ("exec_command", {"cmd": COMMAND}),
    "gemini": ("run_shell_command", {"command": COMMAND, "description": "Write made.txt and count its bytes"}),
}


@pytest.fixture(scope="session", autouse=True)
def _clis_installed() -> None:
    missing = missing_clis()
    if not missing:
        return
    message = (f"coding-agent CLIs not installed: {', '.join(missing)} "
               "(run scripts/setup.d/30-node-clients.sh)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module", params=UPSTREAMS)
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    stack = Stack(request.param).start()
    yield stack
    stack.stop()


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    stack.fake.clear()
    return stack


def generation_requests(stack: Stack) -> list[RecordedRequest]:
    return [r for r in stack.fake.requests if r.method == "POST" and "count_tokens" not in r.path]


def assert_tool_loop(stack: Stack, run: Run, agent: str) -> list[RecordedRequest]:
    """The file exists, the command's output went back upstream, the answer came out."""
    context = f"{agent} via {stack.upstream}\n{run.describe()}\n--- router log\n" + (
        stack.router.log()[-3000:] if stack.router else "")
    assert run.returncode == 0, context
    made = run.workdir / "made.txt"
    assert made.exists(), context
    assert made.read_text() == "made-by-tool\n"
    assert FINAL in run.stdout, context
    assert stack.fake.pending == 0, f"scripted replies left unused\n{context}"
    requests = generation_requests(stack)
    with_output = [i for i, r in enumerate(requests) if COMMAND_OUTPUT.encode() in r.raw]
    assert with_output, f"no upstream request carried the command's output\n{context}"
    assert all(COMMAND_OUTPUT.encode() not in r.raw for r in requests[: with_output[0]])
    return requests


# ---------------------------------------------------------------------------- Claude Code


def test_claude_code(fresh: Stack) -> None:
    name, arguments = SHELL_CALL["claude"]
    fresh.fake.push(Scenario(thinking=THINKING, tool_calls=[(name, arguments)]), Scenario(text=FINAL))
    run = fresh.agent("claude").run("Create made.txt and tell me its size.")
    requests = assert_tool_loop(fresh, run, "claude")
    assert run.json()["result"] == FINAL
    assert run.json()["num_turns"] == 2
    first, follow_up = requests[-2], requests[-1]
    if fresh.upstream == "anthropic":
        # same dialect: Claude Code's request reaches the upstream as sent
        assert first.body["model"] == CLAUDE_MODEL
        assert any("cache_control" in block for block in first.body["system"])
        assert first.body["thinking"]["type"] in ("enabled", "adaptive")
        # the thinking block comes back with the upstream's signature
        blocks = follow_up.body["messages"][-2]["content"]
        thinking = [b for b in blocks if b.get("type") == "thinking"]
        assert thinking and thinking[0]["signature"] == fake_signature(THINKING)
    else:
        assert first.body.get("model", CLAUDE_MODEL) == CLAUDE_MODEL or CLAUDE_MODEL in first.path


# ---------------------------------------------------------------------------- Codex


def test_codex(fresh: Stack) -> None:
    name, arguments = SHELL_CALL["codex"]
    fresh.fake.push(Scenario(thinking=THINKING, tool_calls=[(name, arguments)]), Scenario(text=FINAL))
    run = fresh.agent("codex").run("Create made.txt and tell me its size.")
    requests = assert_tool_loop(fresh, run, "codex")
    events = [line for line in run.stdout.splitlines() if '"command_execution"' in line]
    assert any(COMMAND_OUTPUT in line and '"exit_code":0' in line for line in events), run.describe()
    if fresh.upstream == "openai-responses":
        first, follow_up = requests[-2], requests[-1]
        assert first.body["model"] == CODEX_MODEL
        assert "reasoning.encrypted_content" in first.body["include"]
        # the reasoning item, with its encrypted content, goes back to the upstream
        reasoning = [item for item in follow_up.body["input"] if item.get("type") == "reasoning"]
        assert reasoning, follow_up.body["input"][-3:]
        expected = base64.b64encode(b"fake-encrypted:" + fake_signature(THINKING).encode()).decode()
        assert reasoning[-1]["encrypted_content"] == expected


# ---------------------------------------------------------------------------- Gemini CLI


def test_gemini_cli(fresh: Stack) -> None:
    name, arguments = SHELL_CALL["gemini"]
    fresh.fake.push(Scenario(json_value={"complexity_reasoning": "a one-line task", "complexity_score": 5}),
                    Scenario(tool_calls=[(name, arguments)]), Scenario(text=FINAL))
    run = fresh.agent("gemini").run("Create made.txt and tell me its size.")
    requests = assert_tool_loop(fresh, run, "gemini")
    assert run.json()["response"].strip() == FINAL
    # the classifier call (JSON-schema output) came first, and its answer picked the flash model
    models = [_model_of(r) for r in requests]
    assert models == [GEMINI_CLASSIFIER_MODEL, GEMINI_FLASH_MODEL, GEMINI_FLASH_MODEL], models
    assert b"complexity_score" in requests[0].raw


def _model_of(request: RecordedRequest) -> str:
    if isinstance(request.body, dict) and "model" in request.body:
        return str(request.body["model"])
    return request.path.rsplit("/", 1)[-1].split(":", 1)[0]
