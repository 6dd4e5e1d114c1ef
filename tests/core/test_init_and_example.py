"""`crossroads init` writes a config that loads, from flags or answers; the
repository's config.example.yaml uses every key the router reads and
nothing it ignores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from crossroads import config
from crossroads.cli import app
from crossroads.providers import all_providers, oauth_specs
from crossroads.snapshot import config_shape, preview

ROOT = Path(__file__).resolve().parents[2]


def _supported_paths(shape: Any, path: str = "") -> set[str]:
    """Every key path the router acts on ("[]" for list items), except sections another module validates."""
    found: set[str] = set()
    for key, sub in shape.items():
        if key == "*" or isinstance(sub, str) or (isinstance(sub, dict) and all(
                isinstance(v, str) for v in sub.values())):
            continue  # keys not acted on, or a section of nothing but such keys
        here = f"{path}.{key}" if path else key
        found.add(here)
        if isinstance(sub, dict) and "*" not in sub:
            found |= _supported_paths(sub, here)
        elif isinstance(sub, list) and isinstance(sub[0], dict):
            found |= _supported_paths(sub[0], f"{here}[]")
    return found


def _used_paths(node: Any, path: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            found |= {here} | _used_paths(value, here)
    elif isinstance(node, list):
        for item in node:
            found |= _used_paths(item, f"{path}[]")
    return found


def test_config_example_uses_every_supported_key_and_nothing_ignored() -> None:
    example = ROOT / "config.example.yaml"
    snapshot = preview(config.load(example))
    assert snapshot.findings == ()
    assert all(account.routes for account in snapshot.accounts)
    used = _used_paths(yaml.safe_load(example.read_text()))
    supported = _supported_paths(config_shape(all_providers()))

    def covered(path: str) -> bool:  # claude-api-key's entry shows the keys every upstream list shares
        head, sep, rest = path.partition("[].")
        return path in used or (bool(sep) and head in used and f"claude-api-key[].{rest}" in used)

    assert sorted(p for p in supported if not covered(p)) == []


def test_init_from_flags_writes_a_config_that_loads(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    result = subprocess.run([sys.executable, "-m", "crossroads", "init", "-o", str(target), "--port", "9100",
                             "--client-key", "k-1", "--claude-key", "sk-ant-1"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    text = target.read_text()
    assert text.startswith("# Crossroads config") and "# codex-api-key:" in text  # commented, with what is off
    snapshot = preview(config.load(target))
    assert (snapshot.config.port, snapshot.config.api_keys) == (9100, ["k-1"])
    assert [a.secret for a in snapshot.accounts] == ["sk-ant-1"] and snapshot.findings == ()
    assert f"serve --config {target}" in result.stdout
    again = subprocess.run([sys.executable, "-m", "crossroads", "init", "-o", str(target)],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert again.returncode == 1 and "exists; pass --force" in again.stderr
    assert target.read_text() == text


def test_init_asks_in_a_terminal(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    answers = "9200\nmy-key\n\nsk-openai\n\n"  # port, client key, Anthropic (none), OpenAI, Gemini (none)
    result = CliRunner().invoke(app, ["init", "-o", str(target), "--ask"], input=answers)
    assert result.exit_code == 0, result.output
    cfg = config.load(target)
    assert (cfg.port, cfg.api_keys) == (9200, ["my-key"])
    assert [(a.provider.config_key, a.secret) for a in preview(cfg).accounts] == [("codex-api-key", "sk-openai")]


def test_init_without_a_client_key_is_open(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    result = CliRunner().invoke(app, ["init", "-o", str(target), "--no-ask", "--open"])
    assert result.exit_code == 0, result.output
    assert config.load(target).is_open


def test_every_install_path_runs_the_same_install_script() -> None:
    install = "scripts/install.sh"
    docker = (ROOT / "Dockerfile").read_text()
    run_lines = [line for line in docker.splitlines() if line.startswith("RUN")]
    assert any(install in line for line in run_lines)
    for script in ("scripts/serve.sh", "scripts/test.sh"):
        text = (ROOT / script).read_text()
        assert f"bash {install}" in text, script
        assert "pip install" not in text, f"{script} installs on its own"
    assert not [line for line in docker.splitlines() if "pip install" in line and not line.startswith("#")]
    assert "ln -sf" in (ROOT / install).read_text()  # `crossroads` on PATH afterwards
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert set(compose["services"]) == {"crossroads", "redis", "postgres"}
    published = " ".join(compose["services"]["crossroads"]["ports"])
    redirects = {str(spec.defaults.callback_port) for spec in oauth_specs() if spec.defaults.callback_port}
    assert redirects
    for port in {"8317", *redirects}:  # the API and each login's redirect
        assert f"{port}:{port}" in published and f" {port}" in docker, port
