"""The command line's error paths print one line, never a traceback:
logins whose identity server is unreachable, a browser login on a machine
without a browser, `serve --server uvicorn` without uvicorn, and what
`auth list` says of expired and unknown credentials."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import free_port


def run(*args: str, home: Path, env: dict[str, str] | None = None,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    return subprocess.run([sys.executable, "-m", "crossroads", *args], capture_output=True, text=True,
                          timeout=60, input=stdin, env={**base, "HOME": str(home), **(env or {})})


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _dead_endpoints(tmp_path: Path) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"auth-dir": str(tmp_path / "auth"), "oauth-endpoints": {
        "codex": {"device-url": f"{dead}/device", "token-url": f"{dead}/token"},
        "xai": {"discovery-url": f"{dead}/.well-known/openid-configuration"}}}))
    return config


@pytest.mark.parametrize("args", [("codex", "--device"), ("xai",)])
def test_login_with_the_identity_server_unreachable_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run("login", *args, "--config", str(_dead_endpoints(tmp_path)), home=tmp_path)
    line = _one_line_error(result)
    assert line.startswith(f"login failed: the identity server for {args[0]} could not be reached")
    assert "127.0.0.1" in line


def test_browser_login_without_a_browser_says_what_to_do(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()  # no browser on PATH and no display: Python's webbrowser finds none
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"auth-dir": str(tmp_path / "auth")}))
    started = time.monotonic()
    result = run("login", "codex", "--config", str(config), home=tmp_path, env={"PATH": str(empty)})
    line = _one_line_error(result)
    assert "no web browser found on this machine" in line
    hinted = line.split("`")[1::2]
    assert [h.split(" ", 1)[1] for h in hinted] == ["login codex --no-browser", "login codex --device"]
    program = hinted[0].split(" ", 1)[0]  # works as printed, from where the command was run
    assert (Path.cwd() / program).is_file() or shutil.which(program, path=str(empty)) is not None
    assert time.monotonic() - started < 30  # it did not wait for a callback


def test_serve_with_uvicorn_missing_is_one_line(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", "import importlib.util,sys; sys.exit(0 if "
                            "importlib.util.find_spec('uvicorn') is None else 1)"], capture_output=True)
    if probe.returncode == 0:
        result = run("serve", "--server", "uvicorn", "--port", str(free_port()), home=tmp_path)
    else:  # uvicorn is installed here: make it unfindable for this run
        result = subprocess.run(
            [sys.executable, "-c", "import sys, importlib.util as u; real = u.find_spec; "
             "u.find_spec = lambda name, *a: None if name == 'uvicorn' else real(name, *a); "
             "from crossroads.cli import app; sys.argv = ['crossroads', 'serve', '--server', 'uvicorn', "
             f"'--port', '{free_port()}']; app()"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    line = _one_line_error(result)
    assert "--server uvicorn: uvicorn is not installed" in line


def _jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_auth_list_names_expired_unknown_and_the_codex_plan(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    (auth / "claude-a.json").write_text(json.dumps({"type": "claude", "email": "a@example.com",
                                                    "access_token": "at-1", "refresh_token": "rt-1",
                                                    "expired": past}))
    (auth / "claude-b.json").write_text(json.dumps({"type": "claude", "email": "b@example.com",
                                                    "access_token": "at-2", "expired": past}))
    (auth / "mystery.json").write_text(json.dumps({"access_token": "at-3"}))
    id_token = _jwt({"email": "c@example.com", "https://api.openai.com/auth": {
        "chatgpt_plan_type": "pro", "chatgpt_account_id": "acct-1"}})
    (auth / "codex-c.json").write_text(json.dumps({"type": "codex", "email": "c@example.com", "id_token": id_token,
                                                   "access_token": "at-4", "refresh_token": "rt-4",
                                                   "account_id": "acct-1"}))
    result = run("auth", "list", "--auth-dir", str(auth), "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["claude-a"]["status"] == "expired (refreshable)"
    assert rows["claude-b"]["status"] == "expired"
    assert rows["mystery"]["status"].startswith("unknown type")
    assert rows["codex-c"]["plan"] == "pro" and rows["codex-c"]["status"] == "ok"


def _banner(tmp_path: Path, *args: str) -> str:
    proc = subprocess.Popen([sys.executable, "-m", "crossroads", "serve", "--port", str(free_port()), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or "Started worker" in line:  # stopped before its worker is up, granian waits for it
            break
        seen.append(line)
    proc.terminate()
    proc.communicate(timeout=60)
    return "".join(seen)


def test_the_banner_counts_stored_logins_and_names_the_login_command(tmp_path: Path) -> None:
    empty = _banner(tmp_path)
    assert "No upstream accounts yet" in empty and " login claude" in empty
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "claude-a.json").write_text(json.dumps({"type": "claude", "access_token": "at", "refresh_token": "rt"}))
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {auth}\n")
    stored = _banner(tmp_path, "--config", str(config))
    assert "No upstream accounts yet" not in stored
    assert f"0 upstream account(s) from the config, 1 stored login(s) in {auth}" in stored
    assert " login claude|codex|gemini" in stored
