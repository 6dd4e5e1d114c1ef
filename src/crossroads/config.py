"""Typed configuration, read from CLIProxyAPI-compatible YAML.

Only the keys Crossroads acts on are typed here. Every other key is kept in
``Config.raw`` and listed in ``Config.unknown_keys`` so that a CLIProxyAPI
config.yaml loads unchanged and the user is told what is not (yet) used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PORT = 8317

# Keys CLIProxyAPI knows that Crossroads accepts without acting on them yet.
_RECOGNISED_NOT_USED = {
    "remote-management", "ws-auth", "pprof", "commercial-mode", "logging-to-file",
    "logs-max-total-size-mb", "error-logs-max-files", "request-log", "usage-statistics-enabled",
    "redis-usage-queue-retention-seconds", "passthrough-headers", "disable-cooling",
    "save-cooldown-status", "transient-error-cooldown-seconds", "auth-auto-refresh-workers",
    "quota-exceeded", "nonstream-keepalive-interval", "streaming", "oauth-excluded-models",
    "oauth-model-alias", "oauth-request-scoped-errors", "payload", "plugins", "tls",
    "interactions-api-key", "xai-api-key", "vertex-api-key", "force-model-prefix",
    "antigravity-signature-cache-enabled", "antigravity-signature-bypass-strict", "antigravity",
    "disable-claude-cloak-mode", "claude-code", "claude-header-defaults", "codex",
    "codex-header-defaults", "xai", "disable-image-generation", "credential-concurrency",
    "credential-in-flight", "fallbacks",
}

_KNOWN = {
    "host", "port", "auth-dir", "api-keys", "debug", "proxy-url", "request-retry",
    "max-retry-credentials", "max-retry-interval", "routing", "claude-api-key", "gemini-api-key",
    "codex-api-key", "openai-compatibility", "timeouts", "image-fetch",
}


class ConfigError(Exception):
    """A config file that cannot be used; the message names file and line."""


@dataclass(slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0  # time to response headers
    idle: float = 300.0  # max silence between stream chunks


@dataclass(slots=True)
class Config:
    host: str | None = None  # None: decided from api-keys (see bind_host)
    port: int = DEFAULT_PORT
    auth_dir: str = "~/.crossroads"
    api_keys: list[str] = field(default_factory=list)
    debug: bool = False
    proxy_url: str | None = None
    request_retry: int = 3
    max_retry_credentials: int = 0  # 0 = no limit
    max_retry_interval: float = 30.0
    routing_strategy: str = "round-robin"
    timeouts: Timeouts = field(default_factory=Timeouts)
    image_fetch_max_bytes: int = 20 * 1024 * 1024
    upstreams: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)
    unused_keys: list[str] = field(default_factory=list)
    source: str | None = None

    @property
    def bind_host(self) -> str:
        """Where to listen. With no client keys the router is open, so it stays
        on loopback unless the config names a host explicitly."""
        if self.host:
            return self.host
        return "0.0.0.0" if self.api_keys else "127.0.0.1"

    @property
    def is_open(self) -> bool:
        return not self.api_keys


UPSTREAM_KEYS = ("claude-api-key", "gemini-api-key", "codex-api-key", "openai-compatibility")


def load(path: str | os.PathLike[str] | None) -> Config:
    if path is None:
        return Config()
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    return parse(text, source=str(p))


def parse(text: str, source: str = "<config>") -> Config:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(f"{source}: YAML syntax error at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    return _from_mapping(data, source)


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


def _from_mapping(data: dict[str, Any], source: str) -> Config:
    cfg = Config(raw=data, source=source)
    cfg.unknown_keys = sorted(k for k in data if k not in _KNOWN and k not in _RECOGNISED_NOT_USED)
    cfg.unused_keys = sorted(k for k in data if k in _RECOGNISED_NOT_USED)

    cfg.host = _opt(data, "host", str, source) or None
    cfg.port = _opt(data, "port", int, source) or DEFAULT_PORT
    cfg.auth_dir = _opt(data, "auth-dir", str, source) or cfg.auth_dir
    keys = data.get("api-keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConfigError(f"{source}: 'api-keys' must be a list of strings")
    cfg.api_keys = [k for k in keys if k]
    cfg.debug = bool(data.get("debug", False))
    cfg.proxy_url = _opt(data, "proxy-url", str, source) or None
    cfg.request_retry = _opt(data, "request-retry", int, source) if "request-retry" in data else 3
    cfg.max_retry_credentials = _opt(data, "max-retry-credentials", int, source) or 0
    interval = data.get("max-retry-interval")
    if interval is not None:
        cfg.max_retry_interval = float(_number(interval, "max-retry-interval", source))
    routing = data.get("routing") or {}
    if not isinstance(routing, dict):
        raise ConfigError(f"{source}: 'routing' must be a mapping")
    cfg.routing_strategy = str(routing.get("strategy") or "round-robin")

    t = data.get("timeouts") or {}
    if not isinstance(t, dict):
        raise ConfigError(f"{source}: 'timeouts' must be a mapping")
    cfg.timeouts = Timeouts(
        connect=float(_number(t.get("connect", 10), "timeouts.connect", source)),
        first_byte=float(_number(t.get("first-byte", 120), "timeouts.first-byte", source)),
        idle=float(_number(t.get("idle", 300), "timeouts.idle", source)),
    )
    img = data.get("image-fetch") or {}
    if isinstance(img, dict) and "max-bytes" in img:
        cfg.image_fetch_max_bytes = int(_number(img["max-bytes"], "image-fetch.max-bytes", source))

    for key in UPSTREAM_KEYS:
        entries = data.get(key) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"{source}: '{key}' must be a list of mappings")
        cfg.upstreams[key] = entries
    return cfg


def _opt(data: dict[str, Any], key: str, typ: type, source: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if typ is int and isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
    if not isinstance(value, typ):
        raise ConfigError(f"{source}: '{key}' must be {typ.__name__}, got {value!r}")
    return value


def _number(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
    return float(value)
