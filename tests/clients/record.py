"""Record each CLI's real first request against the fake of its own dialect.

    python -m tests.clients.record      # rewrites tests/clients/recorded/*.json

The bodies are scrubbed of keys, per-run ids and temporary paths, so the
files only change when a CLI version changes what it sends.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import orjson

from tests.clients.agents import BIN, ClaudeCode, Codex, GeminiCli, make_fake
from tests.fakes.common import FakeServer, RecordedRequest

RECORDED = Path(__file__).resolve().parent / "recorded"
KEY = "recording-key"
PROMPT = "List the files in this folder and say what the project is."

# Headers worth keeping: what tells the router which dialect features are on.
KEPT_HEADERS = frozenset({"anthropic-version", "anthropic-beta", "x-app", "accept", "content-type",
                          "originator", "openai-beta", "x-codex-beta-features", "x-goog-api-client"})
SCRUBBED = "00000000-0000-4000-8000-000000000000"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TEMP_PATH = re.compile(r"/tmp/crossroads-[a-z]+-[A-Za-z0-9_]+/(home|work)")


def first_generation(fake: FakeServer, skip_json_output: bool) -> RecordedRequest:
    for request in fake.requests:
        if request.method != "POST" or "count_tokens" in request.path:
            continue
        if skip_json_output and b'"responseMimeType":"application/json"' in request.raw:
            continue  # Gemini CLI's classifier call comes first; the agent turn is the interesting one
        return request
    raise RuntimeError(f"no generation request recorded by {fake.kind}")


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub_field(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        text = TEMP_PATH.sub(lambda m: "/home/user" if m.group(1) == "home" else "/home/user/project", value)
        return UUID.sub(SCRUBBED, text.replace(KEY, "REDACTED"))
    return value


def _scrub_field(key: str, value: Any) -> Any:
    if key in ("user_id", "prompt_cache_key") and isinstance(value, str):
        return "scrubbed"
    if key == "client_metadata" and isinstance(value, dict):
        return {k: "scrubbed" for k in value}
    return scrub(value)


def save(name: str, version: str, request: RecordedRequest) -> Path:
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS}
    document = {"cli": name, "version": version, "method": request.method, "path": request.path,
                "query": request.query, "headers": headers, "body": scrub(request.body)}
    RECORDED.mkdir(exist_ok=True)
    path = RECORDED / f"{name}.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return path


def version_of(binary: str) -> str:
    out = subprocess.run([str(BIN / binary), "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip().splitlines()[0]


class _DefaultModelClaude(ClaudeCode):
    """Claude Code with its default model, as a user runs it."""

    def command(self, prompt: str, home: Path) -> list[str]:
        command = super().command(prompt, home)
        at = command.index("--model")
        return command[:at] + command[at + 2:]


def main() -> None:
    plans: list[tuple[str, str, Any, bool]] = [
        ("claude-code", "anthropic", _DefaultModelClaude, False),
        ("codex", "openai-responses", Codex, False),
        ("gemini-cli", "gemini", GeminiCli, True),
    ]
    binaries = {"claude-code": "claude", "codex": "codex", "gemini-cli": "gemini"}
    for name, dialect, agent_class, skip_json in plans:
        fake = make_fake(dialect)
        fake.api_keys = frozenset({KEY})
        fake.start()
        try:
            run = agent_class(fake.base_url, key=KEY).run(PROMPT)
            if run.returncode != 0:
                raise RuntimeError(f"{name} failed while recording:\n{run.describe()}")
            path = save(name, version_of(binaries[name]), first_generation(fake, skip_json))
            print(f"{name}: {path} ({path.stat().st_size} bytes)")
        finally:
            fake.stop()


if __name__ == "__main__":
    main()
