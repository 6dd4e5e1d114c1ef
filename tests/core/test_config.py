from __future__ import annotations

import pytest

from crossroads import config
from crossroads.server import build_accounts

CLIPROXY_CONFIG = """
port: 9000
api-keys: ["k1", "k2"]
remote-management:
  allow-remote: false
totally-new-key: 1
claude-api-key:
  - api-key: sk-ant-1
    prefix: team
    models:
      - name: claude-sonnet-4-5
        alias: sonnet
    excluded-models: ["claude-opus-*"]
gemini-api-key:
  - api-key: AIza-1
    excluded-models: ["gemini-2.5-flash-lite", "gemini-3*"]
codex-api-key:
  - api-key: sk-1
    base-url: https://example.invalid/v1
openai-compatibility:
  - name: openrouter
    base-url: https://openrouter.example/api/v1
    api-key-entries:
      - api-key: or-1
      - api-key: or-2
        proxy-url: http://127.0.0.1:3128
    models:
      - name: moonshotai/kimi-k2
        alias: kimi-k2
"""


def test_cliproxyapi_config_loads_unchanged() -> None:
    cfg = config.parse(CLIPROXY_CONFIG)
    assert cfg.port == 9000
    assert cfg.api_keys == ["k1", "k2"]
    assert cfg.unknown_keys == ["totally-new-key"]
    assert "remote-management" not in cfg.unused_keys  # its secret-key guards the management API
    assert cfg.raw["totally-new-key"] == 1
    accounts = build_accounts(cfg)
    by_id = {a.id: a for a in accounts}
    claude = by_id["claude-api-key[0]"]
    assert set(claude.routes) == {"sonnet", "team/sonnet"}
    assert claude.routes["team/sonnet"].upstream == "claude-sonnet-4-5"
    gemini = by_id["gemini-api-key[0]"]
    assert "gemini-2.5-pro" in gemini.routes
    assert "gemini-2.5-flash-lite" not in gemini.routes
    assert not any(name.startswith("gemini-3") for name in gemini.routes)
    assert by_id["codex-api-key[0]"].base_url == "https://example.invalid/v1"
    compat = [a for a in accounts if a.provider.config_key == "openai-compatibility"]
    assert [a.secret for a in compat] == ["or-1", "or-2"]
    assert compat[1].proxy_url == "http://127.0.0.1:3128"
    assert compat[0].routes["kimi-k2"].upstream == "moonshotai/kimi-k2"


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(config.ConfigError, match=r"line 2, column 6"):
        config.parse("port: 1\n  bad: [\nx: y\n")


def test_wrong_types_are_clear() -> None:
    with pytest.raises(config.ConfigError, match="'port' must be an integer"):
        config.parse("port: true\n")
    with pytest.raises(config.ConfigError, match="'claude-api-key' must be a list"):
        config.parse("claude-api-key: {api-key: x}\n")


def test_missing_api_key_names_the_entry() -> None:
    cfg = config.parse("gemini-api-key:\n  - base-url: https://x.example\n")
    with pytest.raises(config.ConfigError, match=r"gemini-api-key\[0\]: 'api-key' is missing"):
        build_accounts(cfg)


def test_open_router_binds_loopback_unless_told() -> None:
    assert config.parse("").bind_host == "127.0.0.1"
    assert config.parse("api-keys: [a]").bind_host == "0.0.0.0"
    assert config.parse("host: 0.0.0.0").bind_host == "0.0.0.0"


def test_empty_config_is_an_empty_pool() -> None:
    cfg = config.load(None)
    assert build_accounts(cfg) == []
    assert cfg.port == config.DEFAULT_PORT
