"""Typed configuration, read from CLIProxyAPI-compatible YAML.

Only the server-wide keys are typed here. Upstream lists belong to the
provider that reads them (each provider names its own config key), so they
stay in ``Config.raw``; :mod:`crossroads.snapshot` sorts the remaining keys
into used, recognised-but-unused and unknown, so a CLIProxyAPI config.yaml
loads unchanged and the user is told what is not (yet) used.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crossroads import configkeys, cost, opsconfig, quota
from crossroads import payload as payload_rules
from crossroads.access.lockout import LockoutPolicy
from crossroads.access.policy import KeyPolicy, parse_key
from crossroads.state import StateConfig
from crossroads.state import parse_config as parse_state_config

DEFAULT_PORT = 8317
LEGACY_TRANSIENT_COOLDOWN = 60.0  # transient-error-cooldown-seconds: 0

_TIMEOUTS = {"connect": None, "first-byte": None, "idle": None}

# The server-wide keys this module reads, at every depth (see crossroads.configkeys for the
# notation); providers, the snapshot and the side services add theirs.
SHAPE: dict[str, Any] = {
    "host": None, "port": None, "auth-dir": None, "api-keys": None, "debug": None, "proxy-url": None,
    "request-retry": None, "max-retry-credentials": None, "max-retry-interval": None,
    "routing": {"strategy": None, "session-affinity": None, "session-affinity-ttl": None,
                "pause-at": None, "prefer-soonest-reset": None, "quota-probe": None},
    "prices": None,  # crossroads.cost reads it
    "timeouts": _TIMEOUTS, "fallbacks": None, "force-model-prefix": None,
    "stream-resume": None,  # crossroads.resume
    "image-fetch": {"max-bytes": None, "max-images": None, "timeout": None, "allowed-hosts": None,
                    "allowed-networks": None},
    "transient-error-cooldown-seconds": None, "disable-cooling": None, "passthrough-headers": None,
    "remote-management": {
        "allow-remote": None, "secret-key": None,
        "disable-control-panel": None,  # the built-in dashboard (frontdoors.management_dashboard)
        "disable-auto-update-panel": "the dashboard is built in; nothing is downloaded or updated",
        "panel-github-repository": "the dashboard is built in; nothing is downloaded or updated"},
    "request-body": {"max-bytes": None, "read-timeout": None},
    "auth-lockout": {"attempts": None, "window": None, "duration": None},
    "shutdown-grace-seconds": None, "tls": {"enable": None, "cert": None, "key": None},
    "store": {"*": None},  # crossroads.credentials.select validates it
    "state": {"backend": None, "url": None, "prefix": None},
    **{key: None for key in opsconfig.KEYS},  # request log, log files, metrics, usage database
    # CLIProxyAPI's keys that this version does not act on, and why (README: "Not supported")
    "ws-auth": configkeys.OnlyAs(True, "the WebSocket API always takes a client key (there is no /v1/ws relay "
                                       "to open)"),
    "pprof": "there is no Go profiler to expose",
    "commercial-mode": "there is no heavy per-request middleware to turn off",
    "usage-statistics-enabled": None,  # false: nothing for the usage queue (observe.observer)
    "redis-usage-queue-retention-seconds": None,  # observe.usage_queue reads it
    "save-cooldown-status": "cooldowns live in 'state:' (memory, or Redis to survive restarts)",
    "auth-auto-refresh-workers": "token refreshes are scheduled per account; there is no pool to size",
    "quota-exceeded": {
        # every project of a login is an account of its own: one out of quota always fails over to the next
        "switch-project": configkeys.OnlyAs(True, "a project out of quota always fails over to the next "
                                                  "(each project is an account of its own)"),
        "switch-preview-model": "a model out of quota is never swapped for a preview model; use 'fallbacks'",
        "antigravity-credits": "credits are not used as a last resort"},
    "nonstream-keepalive-interval": None,  # crossroads.nonstream
    "streaming": {"keepalive-seconds": None,
                  "bootstrap-retries": "streams fail over until their first event anyway (see README)"},
    "payload": None,  # crossroads.payload reads it
    "plugins": "Go plugins cannot be loaded",
    "interactions-api-key": "the Gemini Interactions API (/v1beta/interactions) is not served",
    "disable-image-generation": "no image_generation tool is injected, so there is nothing to disable",
    "gpt-image-2-base-model": "the image generation endpoints are not served",
    "video-result-auth-cache-ttl": "the video endpoints are not served",
    "credential-concurrency": "per-credential concurrency comes from each provider (requests_per_credential)",
    "credential-in-flight": "there is no in-flight observation snapshot",
}


# Read once when the server starts: a running server reports a change of
# these and keeps its current values until it is restarted.
RESTART_ONLY = ("host", "port", "tls", "auth-dir", "store", "state", "usage", "logs-dir", "logging-to-file")


class ConfigError(Exception):
    """A config file that cannot be used; the message names file and line."""


@dataclass(slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0  # time to response headers
    idle: float = 300.0  # max silence between stream chunks


@dataclass(slots=True, frozen=True)
class TLS:
    cert: str
    key: str


@dataclass(slots=True, frozen=True)
class ImageFetchPolicy:
    """Fetching remote images for upstreams that take only inline data."""

    max_bytes: int = 20 * 1024 * 1024
    max_images: int = 16  # per request
    timeout: float = 15.0  # per image, connection to last byte
    allowed_hosts: tuple[str, ...] = ()  # wildcards; empty: any public host
    allowed_networks: tuple[str, ...] = ()  # CIDRs exempt from the refusal of private addresses


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
    session_affinity: bool = True
    stream_resume: bool = False  # a stream cut mid-answer continues on the next account (crossroads.resume)
    pause_at: tuple[tuple[str, float], ...] = ()  # routing.pause-at: (model pattern, fraction used)
    prefer_soonest_reset: bool = True  # routing.prefer-soonest-reset
    quota_probe: bool = True  # routing.quota-probe: read providers' usage endpoints
    prices: dict[str, cost.Price] = field(default_factory=dict)  # prices: per-model overrides ($ per Mtok)
    session_affinity_ttl: float = 3600.0
    force_model_prefix: bool = False
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    key_policies: dict[str, KeyPolicy] = field(default_factory=dict)
    management_secret: str | None = None
    transient_cooldown: float = 10.0  # 0: transient errors do not cool an account
    disable_cooling: bool = False  # no cooldowns at all (an entry's own disable-cooling wins)
    tls: TLS | None = None  # HTTPS on the listener
    passthrough_headers: bool = False  # the upstream's response headers go on to the client (filtered)
    payload: payload_rules.Rules = field(default_factory=payload_rules.Rules)  # payload: body edits
    nonstream_keepalive: float = 0.0  # nonstream-keepalive-interval: blank lines while a reply is made (0: none)
    stream_keepalive: float = 0.0  # streaming.keepalive-seconds: SSE comments after this much silence (0: none)
    timeouts: Timeouts = field(default_factory=Timeouts)
    image_fetch: ImageFetchPolicy = field(default_factory=ImageFetchPolicy)
    max_body_bytes: int = 64 * 1024 * 1024
    body_read_timeout: float = 30.0
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    shutdown_grace: float = 30.0
    state: StateConfig = field(default_factory=StateConfig)
    ops: opsconfig.OpsSettings = field(default_factory=opsconfig.OpsSettings)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    text: str = ""  # the file as read (crossroads.configkeys finds each key's line in it)

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

    def restart_changes(self, newer: Config) -> list[str]:
        """The start-only settings that differ in ``newer``."""
        changed = [k for k in RESTART_ONLY if self.raw.get(k) != newer.raw.get(k)]
        if "host" not in changed and self.bind_host != newer.bind_host:
            changed.insert(0, "host")  # implied by adding or removing every client key
        return changed


def load(path: str | os.PathLike[str] | None) -> Config:
    if path is None:
        return Config()
    p = Path(path).expanduser()
    try:
        text = decode(p.read_bytes(), str(p))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    return parse(text, source=str(p))


def decode(data: bytes, source: str) -> str:
    """A config file's text; invalid UTF-8 is a ConfigError naming its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source}: line {line} is not valid UTF-8 (byte {exc.start})") from None


def is_blank(text: str) -> bool:
    """Nothing but whitespace and comments: what an editor leaves for a moment
    when it truncates a file before writing it again."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


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
    cfg = _from_mapping(data, source)
    cfg.text = text
    return cfg


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


def _from_mapping(data: dict[str, Any], source: str) -> Config:
    cfg = Config(raw=data, source=source)

    cfg.host = _opt(data, "host", str, source) or None
    cfg.port = _opt(data, "port", int, source) or DEFAULT_PORT
    cfg.auth_dir = _opt(data, "auth-dir", str, source) or cfg.auth_dir
    keys = data.get("api-keys") or []
    if not isinstance(keys, list):
        raise ConfigError(f"{source}: 'api-keys' must be a list")
    for i, entry in enumerate(keys):
        if entry == "" or entry is None:
            continue
        try:
            policy = parse_key(entry, f"api-keys[{i}]")
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        cfg.api_keys.append(policy.key)
        cfg.key_policies[policy.key] = policy
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
    if cfg.routing_strategy not in ("round-robin", "fill-first", "weighted-round-robin", "weighted"):
        raise ConfigError(f"{source}: routing.strategy must be round-robin, weighted-round-robin or "
                          f"fill-first, got {cfg.routing_strategy!r}")
    if "session-affinity" in routing:
        cfg.session_affinity = bool(routing["session-affinity"])
    if "session-affinity-ttl" in routing:
        cfg.session_affinity_ttl = _seconds(routing["session-affinity-ttl"], "routing.session-affinity-ttl",
                                            source)
    cfg.pause_at = _pause_at(routing.get("pause-at"), source)
    if "prefer-soonest-reset" in routing:
        cfg.prefer_soonest_reset = bool(routing["prefer-soonest-reset"])
    if "quota-probe" in routing:
        cfg.quota_probe = bool(routing["quota-probe"])
    try:
        cfg.prices = cost.parse_prices(data.get("prices"))
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cfg.force_model_prefix = bool(data.get("force-model-prefix", False))
    cfg.stream_resume = bool(data.get("stream-resume", False))
    if "transient-error-cooldown-seconds" in data:
        seconds = _number(data["transient-error-cooldown-seconds"], "transient-error-cooldown-seconds", source)
        # CLIProxyAPI's meaning: 0 keeps its legacy 60 s, a negative value disables transient cooldowns
        cfg.transient_cooldown = LEGACY_TRANSIENT_COOLDOWN if seconds == 0 else max(0.0, seconds)
    cfg.disable_cooling = _flag(data, "disable-cooling", source)
    cfg.passthrough_headers = _flag(data, "passthrough-headers", source)
    try:
        cfg.payload = payload_rules.parse(data.get("payload"))
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cfg.tls = _tls(_section(data, "tls", source), source)
    if data.get("nonstream-keepalive-interval") is not None:
        cfg.nonstream_keepalive = max(0.0, _number(data["nonstream-keepalive-interval"],
                                                   "nonstream-keepalive-interval", source))
    streaming = _section(data, "streaming", source)
    if streaming.get("keepalive-seconds") is not None:
        cfg.stream_keepalive = max(0.0, _number(streaming["keepalive-seconds"], "streaming.keepalive-seconds", source))
    fallbacks = data.get("fallbacks") or {}
    if not isinstance(fallbacks, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
            for k, v in fallbacks.items()):
        raise ConfigError(f"{source}: 'fallbacks' must map a model to a list of models, "
                          "e.g. {claude-opus-4-5: [claude-sonnet-4-5, gemini-2.5-pro]}")
    cfg.fallbacks = {k: list(v) for k, v in fallbacks.items()}
    management = data.get("remote-management") or {}
    if isinstance(management, dict) and management.get("secret-key"):
        cfg.management_secret = str(management["secret-key"])

    t = data.get("timeouts") or {}
    if not isinstance(t, dict):
        raise ConfigError(f"{source}: 'timeouts' must be a mapping")
    cfg.timeouts = parse_timeouts(t, Timeouts(), "timeouts", source)
    cfg.image_fetch = _image_fetch(_section(data, "image-fetch", source), source)
    body = _section(data, "request-body", source)
    if "max-bytes" in body:
        cfg.max_body_bytes = int(_number(body["max-bytes"], "request-body.max-bytes", source))
    if "read-timeout" in body:
        cfg.body_read_timeout = _number(body["read-timeout"], "request-body.read-timeout", source)
    lockout = _section(data, "auth-lockout", source)
    cfg.lockout = LockoutPolicy(
        attempts=int(_number(lockout.get("attempts", 10), "auth-lockout.attempts", source)),
        window=_seconds(lockout.get("window", 60), "auth-lockout.window", source),
        duration=_seconds(lockout.get("duration", 300), "auth-lockout.duration", source))
    if "shutdown-grace-seconds" in data:
        cfg.shutdown_grace = _number(data["shutdown-grace-seconds"], "shutdown-grace-seconds", source)

    try:
        cfg.state = parse_state_config(data.get("state"))
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        cfg.ops = opsconfig.parse(data, cfg.auth_dir, cfg.debug)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None

    return cfg


def _section(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping")
    return value


def _flag(data: dict[str, Any], key: str, source: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
    return value


def _tls(tls: dict[str, Any], source: str) -> TLS | None:
    """CLIProxyAPI's ``tls: {enable, cert, key}``: HTTPS with that certificate and key."""
    if not _flag(tls, "enable", source):
        return None
    paths = []
    for name in ("cert", "key"):
        value = tls.get(name)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: 'tls.enable' is true but 'tls.{name}' names no file")
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"{source}: 'tls.{name}': {path} is not a readable file")
        paths.append(str(path))
    return TLS(*paths)


def _image_fetch(img: dict[str, Any], source: str) -> ImageFetchPolicy:
    base = ImageFetchPolicy()
    hosts = _strings(img.get("allowed-hosts"), "image-fetch.allowed-hosts", source)
    networks = _strings(img.get("allowed-networks"), "image-fetch.allowed-networks", source)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"{source}: 'image-fetch.allowed-networks' has {network!r}, "
                              "which is not an address or CIDR network") from None
    return ImageFetchPolicy(
        max_bytes=int(_number(img.get("max-bytes", base.max_bytes), "image-fetch.max-bytes", source)),
        max_images=int(_number(img.get("max-images", base.max_images), "image-fetch.max-images", source)),
        timeout=_number(img.get("timeout", base.timeout), "image-fetch.timeout", source),
        allowed_hosts=tuple(h.lower() for h in hosts), allowed_networks=tuple(networks))


def _strings(value: Any, key: str, source: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: '{key}' must be a list of strings")
    return value


def parse_timeouts(data: dict[str, Any], base: Timeouts, where: str, source: str) -> Timeouts:
    """``{connect, first-byte, idle}`` in seconds; missing values come from ``base``."""
    return Timeouts(
        connect=_number(data.get("connect", base.connect), f"{where}.connect", source),
        first_byte=_number(data.get("first-byte", base.first_byte), f"{where}.first-byte", source),
        idle=_number(data.get("idle", base.idle), f"{where}.idle", source),
    )


def _seconds(value: Any, key: str, source: str) -> float:
    """A duration as a number of seconds or a string like "90s", "30m", "1h"."""
    if isinstance(value, str):
        units = {"s": 1, "m": 60, "h": 3600}
        if value and value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
            return float(value[:-1]) * units[value[-1]]
        raise ConfigError(f"{source}: '{key}' must be seconds or a duration like 30m, got {value!r}")
    return _number(value, key, source)


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


def _pause_at(value: Any, source: str) -> tuple[tuple[str, float], ...]:
    """``routing.pause-at``: one threshold for every pool, or per model pattern."""
    if value is None:
        return ()
    try:
        if isinstance(value, dict):
            return tuple((str(k), quota.fraction(v, f"routing.pause-at.{k}")) for k, v in value.items())
        return (("*", quota.fraction(value, "routing.pause-at")),)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
