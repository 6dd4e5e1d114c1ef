"""`crossroads connect`: the printed lines, safe merges into existing client
settings, and the real CLIs reaching Crossroads with nothing but the written files."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.commands import connect
from tests.clients.agents import BIN, CLAUDE_MODEL, CODEX_MODEL, Stack, missing_clis
from tests.fakes.common import Scenario
from tests.harness import CLIENT_KEY

runner = CliRunner()

EXISTING_CODEX = """# my codex settings
model = "o3"
approval_policy = "on-request"

[profiles.fast]
model = "gpt-5.1-mini"

[model_providers.other]
name = "Other"
base_url = "https://other.example/v1"

[model_providers.crossroads]
name = "old"
base_url = "http://127.0.0.1:1/v1"

[model_providers.crossroads.http_headers]
x-old = "1"

[mcp_servers.files]
command = "npx"
args = ["-y", "files-server"]
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CROSSROADS_API_KEY", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["connect", *args])
    return result.exit_code, result.output


def test_prints_env_for_claude_code_without_touching_files(home: Path) -> None:
    code, out = invoke("claude-code", "--base-url", "http://127.0.0.1:9999/", "--key", "k-1")
    assert code == 0, out
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:9999\n" in out
    assert "export ANTHROPIC_AUTH_TOKEN=k-1\n" in out
    assert not (home / ".claude").exists()


def test_defaults_come_from_the_config(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("port: 9123\napi-keys: [first-key, second-key]\n")
    code, out = invoke("gemini-cli", "--config", str(config))
    assert code == 0, out
    assert "export GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:9123\n" in out
    assert "export GEMINI_API_KEY=first-key\n" in out


def test_unknown_client_is_refused(home: Path) -> None:
    code, out = invoke("cursor")
    assert code == 2
    assert "claude-code, codex, gemini-cli" in out


def test_codex_write_keeps_every_unrelated_setting(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(EXISTING_CODEX)
    before = tomllib.loads(EXISTING_CODEX)
    code, out = invoke("codex", "--base-url", "http://127.0.0.1:8317", "--key", "k-2", "--write")
    assert code == 0, out
    assert "+model_provider = \"crossroads\"" in out  # the diff is shown
    text = path.read_text()
    after = tomllib.loads(text)
    assert after["model_provider"] == "crossroads"
    assert after["model_providers"]["crossroads"] == {
        "name": "Crossroads", "base_url": "http://127.0.0.1:8317/v1", "wire_api": "responses",
        "experimental_bearer_token": "k-2"}
    for key in ("model", "approval_policy", "profiles", "mcp_servers"):
        assert after[key] == before[key]
    assert after["model_providers"]["other"] == before["model_providers"]["other"]
    assert "# my codex settings" in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # a second run changes nothing
    code, out = invoke("codex", "--base-url", "http://127.0.0.1:8317", "--key", "k-2", "--write")
    assert code == 0 and "nothing to change" in out
    assert path.read_text() == text


def test_codex_refuses_to_edit_broken_toml(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text("model = \n[broken")
    code, out = invoke("codex", "--write")
    assert code == 2
    assert "not valid TOML" in out
    assert path.read_text() == "model = \n[broken"


def test_claude_code_write_merges_settings(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_bytes(orjson.dumps({"theme": "dark", "env": {"HTTPS_PROXY": "http://proxy:3128",
                                                             "ANTHROPIC_BASE_URL": "https://old"}}))
    code, out = invoke("claude-code", "--base-url", "http://127.0.0.1:8317", "--key", "k-3", "--write")
    assert code == 0, out
    assert '-  "env"' not in out and "+    \"ANTHROPIC_AUTH_TOKEN\": \"k-3\"" in out
    settings = orjson.loads(path.read_bytes())
    assert settings == {"theme": "dark", "env": {"HTTPS_PROXY": "http://proxy:3128",
                                                 "ANTHROPIC_BASE_URL": "http://127.0.0.1:8317",
                                                 "ANTHROPIC_AUTH_TOKEN": "k-3"}}


def test_claude_code_refuses_invalid_json(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text("{not json")
    code, out = invoke("claude-code", "--write")
    assert code == 2 and "not valid JSON" in out
    assert path.read_text() == "{not json"


def test_gemini_write_keeps_other_variables_and_settings(home: Path) -> None:
    directory = home / ".gemini"
    directory.mkdir()
    (directory / ".env").write_text("# mine\nFOO=bar\nexport GEMINI_API_KEY=old\nGEMINI_API_KEY=older\n")
    (directory / "settings.json").write_bytes(orjson.dumps({"ui": {"theme": "x"},
                                                            "security": {"folderTrust": {"enabled": True}}}))
    code, out = invoke("gemini-cli", "--base-url", "http://localhost:8317", "--key", "k-4", "--write")
    assert code == 0, out
    assert (directory / ".env").read_text() == (
        "# mine\nFOO=bar\nGEMINI_API_KEY=k-4\nGOOGLE_GEMINI_BASE_URL=http://localhost:8317\n")
    assert orjson.loads((directory / "settings.json").read_bytes()) == {
        "ui": {"theme": "x"},
        "security": {"folderTrust": {"enabled": True}, "auth": {"selectedType": "gemini-api-key"}}}


def test_write_keeps_a_backup_of_every_changed_file_and_says_how_to_undo(home: Path) -> None:
    directory = home / ".gemini"
    directory.mkdir()
    env_before = "# mine\nFOO=bar\n"
    (directory / ".env").write_text(env_before)
    (directory / ".env").chmod(0o640)
    code, out = invoke("gemini-cli", "--base-url", "http://localhost:8317", "--key", "k-5", "--write")
    assert code == 0, out
    backups = sorted(directory.glob(".env.crossroads-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == env_before  # the file as it was
    assert oct(backups[0].stat().st_mode & 0o777) == "0o640"
    assert f"# backup of {directory / '.env'}: {backups[0]}" in out
    assert not list(directory.glob("settings.json.crossroads-backup-*"))  # it did not exist: nothing to keep
    undo = next(line for line in out.splitlines() if line.startswith("# to undo: "))
    assert f"rm {directory / 'settings.json'}" in undo
    subprocess.run(undo.removeprefix("# to undo: "), shell=True, check=True)
    assert (directory / ".env").read_text() == env_before
    assert not (directory / "settings.json").exists()


def test_env_file_merge_replaces_in_place() -> None:
    merged = connect._merged_env_file("A=1\nB=2\n", {"B": "3", "C": "4"})
    assert merged == "A=1\nB=3\nC=4\n"


# ---------------------------------------------------------------------------- the real CLIs


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if missing_clis():
        message = f"coding-agent CLIs not installed: {', '.join(missing_clis())}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    stack = Stack("anthropic").start()
    yield stack
    stack.stop()


def _connect_into(home: Path, client: str, base_url: str, model: str) -> None:
    env = {**os.environ, "HOME": str(home)}
    for name in ("CODEX_HOME", "CLAUDE_CONFIG_DIR"):
        env.pop(name, None)
    subprocess.run([sys.executable, "-m", "crossroads", "connect", client, "--base-url", base_url,
                    "--key", CLIENT_KEY, "--model", model, "--write"], env=env, check=True, capture_output=True)


CLI_COMMANDS = {
    "claude-code": ([str(BIN / "claude"), "-p", "hi", "--output-format", "json"], CLAUDE_MODEL),
    "codex": ([str(BIN / "codex"), "exec", "--skip-git-repo-check", "hi"], CODEX_MODEL),
    "gemini-cli": ([str(BIN / "gemini"), "-p", "hi", "--output-format", "json"], "gemini-2.5-flash"),
}


@pytest.mark.parametrize("client", list(CLI_COMMANDS))
def test_written_settings_alone_point_the_cli_at_crossroads(stack: Stack, tmp_path: Path, client: str) -> None:
    assert stack.router is not None
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    command, model = CLI_COMMANDS[client]
    _connect_into(home, client, stack.router.base_url, model)
    stack.fake.clear()
    stack.fake.push(Scenario(text="CONNECTED-OK"))
    # nothing but HOME (and switches that silence telemetry or trust prompts) tells the CLI where to go
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(tmp_path),
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "CONNECTED-OK" in proc.stdout
    received = [r for r in stack.fake.requests if r.method == "POST" and "count_tokens" not in r.path]
    assert received and received[-1].body["model"] == model
