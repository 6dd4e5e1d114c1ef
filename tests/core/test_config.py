from __future__ import annotations

import pytest

from crossroads import config
from crossroads.snapshot import preview

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
    snapshot = preview(cfg)
    assert snapshot.unknown_keys == ["totally-new-key"]
    assert "remote-management" not in snapshot.unused_keys  # its secret-key guards the management API
    assert cfg.raw["totally-new-key"] == 1
    accounts = snapshot.accounts
    by_id = {a.label: a for a in accounts}
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
        preview(config.parse("claude-api-key: {api-key: x}\n"))


def test_missing_api_key_names_the_entry() -> None:
    cfg = config.parse("gemini-api-key:\n  - base-url: https://x.example\n")
    with pytest.raises(config.ConfigError, match=r"gemini-api-key\[0\]: 'api-key' is missing"):
        preview(cfg)


def test_open_router_binds_loopback_unless_told() -> None:
    assert config.parse("").bind_host == "127.0.0.1"
    assert config.parse("api-keys: [a]").bind_host == "0.0.0.0"
    assert config.parse("host: 0.0.0.0").bind_host == "0.0.0.0"


def test_empty_config_is_an_empty_pool() -> None:
    cfg = config.load(None)
    assert preview(cfg).accounts == []
    assert cfg.port == config.DEFAULT_PORT


def test_keys_read_by_providers_and_oauth_are_not_reported_unused() -> None:
    cfg = config.parse("vertex-api-key: []\noauth-excluded-models: {}\noauth-model-alias: {}\n"
                       "model-catalogue: {}\noauth-endpoints: {}\ntls: {enable: false}\npprof: {enable: true}\n")
    snapshot = preview(cfg)
    assert snapshot.unknown_keys == []
    assert snapshot.unused_keys == ["pprof"]


def test_account_ids_follow_the_credential_not_its_position() -> None:
    first = preview(config.parse("claude-api-key: [{api-key: sk-a}, {api-key: sk-b}]\n")).accounts
    swapped = preview(config.parse("claude-api-key: [{api-key: sk-b}, {api-key: sk-a}]\n")).accounts
    assert [a.id for a in first] == [a.id for a in reversed(swapped)]
    assert [a.label for a in first] == [a.label for a in swapped] == ["claude-api-key[0]", "claude-api-key[1]"]
    changed = preview(config.parse("claude-api-key: [{api-key: sk-c}, {api-key: sk-b}]\n")).accounts
    assert changed[0].id != first[0].id and changed[1].id == first[1].id
    twice = preview(config.parse("claude-api-key: [{api-key: sk-a}, {api-key: sk-a}]\n")).accounts
    assert len({a.id for a in twice}) == 2


def test_start_only_settings_are_reported_as_changed() -> None:
    old = config.parse("port: 8317\napi-keys: [a]\n")
    assert old.restart_changes(config.parse("port: 9000\napi-keys: [a]\n")) == ["port"]
    assert old.restart_changes(config.parse("port: 8317\n")) == ["host"]  # keys gone: would bind loopback
    assert old.restart_changes(config.parse("port: 8317\napi-keys: [b]\nrequest-retry: 1\n")) == []
