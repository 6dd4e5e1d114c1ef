"""Runs the real coding-agent CLIs (Claude Code, Codex, Gemini CLI) against a
Crossroads instance, each in an isolated HOME, non-interactively.

The CLIs are installed by scripts/setup.d/30-node-clients.sh into
tests/clients/node_modules (versions pinned in tests/clients/package.json).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import FakeServer
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.openai_responses import FakeOpenAIResponses
from tests.harness import CLIENT_KEY, RouterProcess

HERE = Path(__file__).resolve().parent
BIN = HERE / "node_modules" / ".bin"
FAKE_KEY = "test-key"
CLI_TIMEOUT = 90.0

UPSTREAMS = ("anthropic", "openai-chat", "openai-responses", "gemini")

# The model names the CLIs ask for; every router maps all of them to its one upstream.
CLAUDE_MODEL = "claude-sonnet-4-5"
CLAUDE_SMALL_MODEL = "claude-haiku-4-5"
CODEX_MODEL = "gpt-5.1-codex"
# Gemini CLI's default "auto" routing: a classifier call, then the model it picks
# (the flash model for simple prompts, the pro model when the classifier fails).
GEMINI_CLASSIFIER_MODEL = "gemini-3.5-flash-lite"
GEMINI_FLASH_MODEL = "gemini-3.8-flash"
GEMINI_PRO_MODEL = "gemini-3.1-pro-preview"
CLIENT_MODELS = (CLAUDE_MODEL, CLAUDE_SMALL_MODEL, CODEX_MODEL, GEMINI_CLASSIFIER_MODEL, GEMINI_FLASH_MODEL,
                 GEMINI_PRO_MODEL, "gemini-2.5-flash")


def missing_clis() -> list[str]:
    return [name for name in ("claude", "codex", "gemini") if not (BIN / name).exists()]


def make_fake(upstream: str) -> FakeServer:
    kinds: dict[str, type[FakeServer]] = {"anthropic": FakeAnthropic, "openai-chat": FakeOpenAIChat,
                                          "openai-responses": FakeOpenAIResponses, "gemini": FakeGemini}
    return kinds[upstream](api_keys=[FAKE_KEY])


def router_config(upstream: str, fake: FakeServer) -> dict[str, Any]:
    """A router whose every client-facing model is served by ``fake`` under the same
    name (the fakes answer any model name), so the fake's log shows what the CLI asked for."""
    models = [{"name": name} for name in CLIENT_MODELS]
    config: dict[str, Any] = {"api-keys": [CLIENT_KEY]}
    if upstream == "anthropic":
        config["claude-api-key"] = [{"api-key": FAKE_KEY, "base-url": fake.base_url, "models": models}]
    elif upstream == "gemini":
        config["gemini-api-key"] = [{"api-key": FAKE_KEY, "base-url": fake.base_url, "models": models}]
    elif upstream == "openai-responses":
        config["codex-api-key"] = [{"api-key": FAKE_KEY, "base-url": f"{fake.base_url}/v1", "models": models}]
    else:
        config["openai-compatibility"] = [{"name": "fake-chat", "base-url": f"{fake.base_url}/v1",
                                           "api-key-entries": [{"api-key": FAKE_KEY}], "models": models}]
    return config


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def json(self) -> Any:
        """The last JSON document the CLI printed on stdout."""
        text = self.stdout.strip()
        start = text.find("{")
        return orjson.loads(text[start:]) if start >= 0 else None

    def describe(self) -> str:
        return f"rc={self.returncode}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"


class Agent:
    """One CLI, one isolated home and work directory per run."""

    name = ""

    def __init__(self, base_url: str, key: str = CLIENT_KEY) -> None:
        self.base_url = base_url
        self.key = key

    def command(self, prompt: str, home: Path) -> list[str]:
        raise NotImplementedError

    def environment(self, home: Path) -> dict[str, str]:
        raise NotImplementedError

    def prepare(self, home: Path) -> None:
        """Config files the CLI reads from its home."""

    def run(self, prompt: str, timeout: float = CLI_TIMEOUT) -> Run:
        with tempfile.TemporaryDirectory(prefix=f"crossroads-{self.name}-") as scratch:
            home = Path(scratch) / "home"
            work = Path(scratch) / "work"
            home.mkdir()
            work.mkdir()
            self.prepare(home)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
                   "TERM": "dumb", "NO_COLOR": "1", "CI": "true", "TMPDIR": scratch,
                   **self.environment(home)}
            proc = subprocess.run(self.command(prompt, home), cwd=work, env=env, capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            kept = Path(tempfile.mkdtemp(prefix=f"crossroads-{self.name}-work-"))
            shutil.copytree(work, kept, dirs_exist_ok=True)
            return Run(proc.returncode, proc.stdout, proc.stderr, kept)


class ClaudeCode(Agent):
    name = "claude"

    def command(self, prompt: str, home: Path) -> list[str]:
        return [str(BIN / "claude"), "-p", prompt, "--output-format", "json", "--model", CLAUDE_MODEL,
                "--allowedTools", "Bash,Write,Read,Edit", "--permission-mode", "acceptEdits"]

    def environment(self, home: Path) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": self.key,
                "ANTHROPIC_SMALL_FAST_MODEL": CLAUDE_SMALL_MODEL,
                "ANTHROPIC_DEFAULT_HAIKU_MODEL": CLAUDE_SMALL_MODEL,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}


class Codex(Agent):
    name = "codex"

    def command(self, prompt: str, home: Path) -> list[str]:
        return [str(BIN / "codex"), "exec", "--skip-git-repo-check", "--json",
                "--dangerously-bypass-approvals-and-sandbox", "-m", CODEX_MODEL, prompt]

    def environment(self, home: Path) -> dict[str, str]:
        return {"CODEX_HOME": str(home / ".codex"), "CROSSROADS_API_KEY": self.key}

    def prepare(self, home: Path) -> None:
        codex_home = home / ".codex"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(
            f'model = "{CODEX_MODEL}"\nmodel_provider = "crossroads"\n\n'
            "[model_providers.crossroads]\n"
            'name = "Crossroads"\n'
            f'base_url = "{self.base_url}/v1"\n'
            'env_key = "CROSSROADS_API_KEY"\n'
            'wire_api = "responses"\n'
        )


class GeminiCli(Agent):
    name = "gemini"

    def __init__(self, base_url: str, key: str = CLIENT_KEY, model: str | None = None) -> None:
        super().__init__(base_url, key)
        self.model = model

    def command(self, prompt: str, home: Path) -> list[str]:
        command = [str(BIN / "gemini"), "-p", prompt, "--output-format", "json", "--yolo"]
        if self.model:
            command += ["-m", self.model]
        return command

    def environment(self, home: Path) -> dict[str, str]:
        return {"GEMINI_API_KEY": self.key, "GOOGLE_GEMINI_BASE_URL": self.base_url,
                "GEMINI_CLI_TRUST_WORKSPACE": "true", "GEMINI_CLI_NO_RELAUNCH": "true"}

    def prepare(self, home: Path) -> None:
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                    "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}}
        (home / ".gemini").mkdir()
        (home / ".gemini" / "settings.json").write_bytes(orjson.dumps(settings))


AGENTS: dict[str, type[Agent]] = {"claude": ClaudeCode, "codex": Codex, "gemini": GeminiCli}


class Stack:
    """One fake upstream and a router in front of it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fake = make_fake(upstream)
        self.router: RouterProcess | None = None

    def start(self) -> Stack:
        self.fake.start()
        self.router = RouterProcess(router_config(self.upstream, self.fake)).start()
        return self

    def stop(self) -> None:
        if self.router is not None:
            self.router.stop()
        self.fake.stop()

    def agent(self, name: str) -> Agent:
        assert self.router is not None
        return AGENTS[name](self.router.base_url)


def stacks(upstreams: tuple[str, ...] = UPSTREAMS) -> Iterator[Stack]:
    for upstream in upstreams:
        yield Stack(upstream)
