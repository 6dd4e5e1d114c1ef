"""CLIProxyAPI's own config.example.yaml, every commented block enabled
(tests/core/data/cliproxyapi-config.example.yaml names its source): what is
served, what is reported, and that no key is dropped without a word."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from crossroads import config
from crossroads.snapshot import preview

EXAMPLE = Path(__file__).parent / "data" / "cliproxyapi-config.example.yaml"

# The top-level keys of the example that this version acts on (everything else must be reported).
ACTED_ON = {
    "host", "port", "tls", "remote-management", "auth-dir", "api-keys", "debug", "pprof", "plugins",
    "commercial-mode", "logging-to-file", "logs-max-total-size-mb", "error-logs-max-files",
    "usage-statistics-enabled", "redis-usage-queue-retention-seconds", "proxy-url", "force-model-prefix", "passthrough-headers", "request-retry",
    "max-retry-credentials", "max-retry-interval", "disable-cooling", "save-cooldown-status",
    "transient-error-cooldown-seconds", "disable-claude-cloak-mode", "claude-code", "disable-image-generation",
    "routing", "codex", "xai", "nonstream-keepalive-interval", "ws-auth", "antigravity-signature-bypass-strict",
    "gemini-api-key", "codex-api-key", "xai-api-key", "claude-api-key", "openai-compatibility",
    "vertex-api-key", "oauth-model-alias", "oauth-excluded-models", "oauth-request-scoped-errors", "payload",
}


def _key_paths(node: object, path: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            found |= {here} | _key_paths(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found |= _key_paths(item, f"{path}[{index}]")
    return found


def test_the_example_config_loads_and_serves_its_entries() -> None:
    snapshot = preview(config.load(EXAMPLE))
    registry = snapshot.registry
    assert snapshot.config.api_keys == ["your-api-key-1", "your-api-key-2", "your-api-key-3"]
    assert snapshot.config.transient_cooldown == 60.0  # its 0 means CLIProxyAPI's legacy 60 s
    pool = registry.pool("claude-opus-4.66")  # the alias repeated over three models, two keys each
    assert pool is not None
    assert sorted({c.route.upstream for c in pool.candidates}) == ["deepseek-v3.1", "glm-5", "kimi-k2.5"]
    assert len(pool) == 6
    assert [c.route.upstream for c in registry.pool("test/kimi-k2").candidates] == ["moonshotai/kimi-k2:free"] * 2
    assert registry.pool("grok-latest").candidates[0].account.base_url == "https://api.x.ai/v1"
    assert "xai/grok-latest" in registry
    assert {"vertex-flash", "test/vertex-pro", "gemini-2.5-pro", "claude-sonnet-4-5"} <= {m for m, _ in
                                                                                           registry.models()}
    weights = sorted(a.weight for a in snapshot.accounts if a.label.startswith("openrouter#") and "~" not in a.label)
    assert weights == [1, 5]  # a key entry's own weight
    # entries whose listed models are all excluded serve nothing, and say so (below)
    by_label = {a.label: a for a in snapshot.accounts}
    assert [r.action for r in by_label["gemini-api-key[0]"].error_rules] == ["stop"]  # request-scoped-errors
    assert by_label["gemini-api-key[0]"].request_retry == 3 and by_label["gemini-api-key[0]"].disable_cooling is False
    idle = sorted(a.label for a in snapshot.accounts if not a.routes)
    assert idle == ["claude-api-key[1]", "codex-api-key[0]", "gemini-api-key[0]"]


def test_every_key_is_acted_on_or_reported_with_its_line() -> None:
    snapshot = preview(config.load(EXAMPLE))
    lines = EXAMPLE.read_text().splitlines()
    reported = {f.path: f for f in snapshot.findings}
    for finding in snapshot.findings:  # each names the line its key is on
        assert finding.line is not None
        if finding.path.endswith("]"):  # a list item: its line starts it
            assert lines[finding.line - 1].lstrip().startswith("- "), finding
            continue
        key = finding.path.rsplit(".", 1)[-1].split("[", 1)[0]
        assert lines[finding.line - 1].lstrip(" -").startswith(f"{key}:"), finding
    top = set(yaml.safe_load(EXAMPLE.read_text()))
    silent = sorted(k for k in top - ACTED_ON if not any(p == k or p.startswith(f"{k}.") for p in reported))
    assert silent == [], f"keys neither acted on nor reported: {silent}"
    # per-entry and per-model keys are reported too, at their depth
    for path in ("claude-api-key[1].cloak", "xai-api-key[0].websockets", "payload.default[0]",
                 "openai-compatibility[0].models[0].input-modalities",
                 "quota-exceeded.switch-preview-model", "streaming.bootstrap-retries"):
        assert path in reported, path
    assert reported["xai-api-key[0].websockets"].reason  # known to CLIProxyAPI: a reason, not "unknown"
    assert snapshot.unknown_keys == []  # every key of CLIProxyAPI's own example is recognised
    # keys acted on are not reported
    for path in ("tls", "transient-error-cooldown-seconds", "gemini-api-key[0].disable-cooling",
                 "gemini-api-key[0].request-retry", "openai-compatibility[0].models[0].force-mapping",
                 "xai-api-key", "vertex-api-key", "oauth-model-alias", "oauth-excluded-models",
                 "gemini-api-key[0].request-scoped-errors", "oauth-request-scoped-errors",
                 "streaming.keepalive-seconds", "passthrough-headers",
                 "openai-compatibility[0].models[0].thinking", "codex-api-key[0].models[0].max-context-length",
                 "gemini-api-key[0].models[0].display-name", "quota-exceeded.switch-project", "ws-auth"):
        assert path not in reported, path
    all_paths = _key_paths(yaml.safe_load(EXAMPLE.read_text()))
    assert {re.sub(r"\[\d+\]$", "", p) for p in reported} <= all_paths


def test_check_config_prints_what_serve_prints(tmp_path: Path) -> None:
    typo = tmp_path / "config.yaml"
    typo.write_text("port: 8400\nclaude-api-key:\n  - api-key: sk-1\n    modles: [x]\n"
                    "    models:\n      - {name: a, alias: b, is-compat: true}\n"
                    "pprof: {enable: true}\n")
    out = subprocess.run([sys.executable, "-m", "crossroads", "check-config", str(typo)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stderr.split())
    assert "line 4: claude-api-key[0].modles (unknown key, ignored)" in text
    assert "line 6: claude-api-key[0].models[0].is-compat (not acted on:" in text
    assert "line 7: pprof (not acted on:" in text
    assert "3 key(s) the router does not act on (1 unknown)" in text
    example = subprocess.run([sys.executable, "-m", "crossroads", "check-config", str(EXAMPLE)],
                             capture_output=True, text=True, timeout=60)
    listed = " ".join(example.stderr.split())
    assert "gemini-api-key[0] serves no model" in listed
    for finding in preview(config.load(EXAMPLE)).findings:
        assert " ".join(str(finding).split()) in listed


def test_a_setting_is_reported_only_when_it_asks_for_something_else() -> None:
    on = preview(config.parse("quota-exceeded: {switch-project: true}\n"))
    off = preview(config.parse("quota-exceeded: {switch-project: false}\n"))
    assert on.findings == ()  # what the router does anyway
    assert [f.path for f in off.findings] == ["quota-exceeded.switch-project"]
