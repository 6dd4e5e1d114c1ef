"""What Crossroads needs to know about one side service, read from its
config entry (``{enabled, endpoint, api-key, prefix, max-concurrency,
timeouts, health-path, models, headers, proxy-url, tools, command, cwd, env}``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from crossroads.config import ConfigError, Timeouts, parse_timeouts
from crossroads.services.refine import Quirks

ToolMode = Literal["native", "emulated", "reject"]
TOOL_MODES: tuple[ToolMode, ...] = ("native", "emulated", "reject")


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a kind of service does unless its entry says otherwise."""

    prefix: str
    max_concurrency: int | None = None  # None: no limit in Crossroads
    tools: ToolMode = "native"
    health_path: str | None = None  # None: GET the models path
    timeouts: Timeouts = field(default_factory=Timeouts)
    quirks: Quirks = field(default_factory=Quirks)  # how its replies are read


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # the config key, or "side-services[<name>]"
    label: str  # for people: "<name> at <endpoint>"
    endpoint: str  # without a trailing slash
    api_key: str | None = None
    prefix: str = ""
    max_concurrency: int | None = None
    queue_size: int = 100  # requests waiting for a slot before new ones are refused
    queue_timeout: float = 600.0  # longest wait for a slot
    timeouts: Timeouts = field(default_factory=Timeouts)
    health_path: str | None = None
    models_path: str = "/v1/models"
    models: tuple[str, ...] = ()  # used when the service lists none
    headers: tuple[tuple[str, str], ...] = ()
    proxy_url: str | None = None
    tools: ToolMode = "native"
    quirks: Quirks = field(default_factory=Quirks)
    check_interval: float = 15.0  # seconds between health checks
    models_interval: float = 300.0  # seconds between model-list refreshes
    command: tuple[str, ...] = ()  # run and supervise the service when set
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    @property
    def check_path(self) -> str:
        return self.health_path or self.models_path


def enabled(entry: dict[str, Any]) -> bool:
    return bool(entry.get("enabled", True))


def parse(entry: dict[str, Any], name: str, defaults: Defaults, service: str = "") -> ServiceSpec:
    """A spec from one config entry; ValueError names the entry and the key."""
    endpoint = entry.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"{name}: 'endpoint' must be an http(s) URL, got {endpoint!r}")
    api_key = entry.get("api-key")
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError(f"{name}: 'api-key' must be a string")
    prefix = entry.get("prefix", defaults.prefix)
    if not isinstance(prefix, str):
        raise ValueError(f"{name}: 'prefix' must be a string (\"\" for none)")
    concurrency = entry.get("max-concurrency", defaults.max_concurrency)
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        raise ValueError(f"{name}: 'max-concurrency' must be a positive integer, got {concurrency!r}")
    tools = entry.get("tools", defaults.tools)
    if tools not in TOOL_MODES:
        raise ValueError(f"{name}: 'tools' must be one of {', '.join(TOOL_MODES)}, got {tools!r}")
    timeouts = defaults.timeouts
    if entry.get("timeouts") is not None:
        if not isinstance(entry["timeouts"], dict):
            raise ValueError(f"{name}: 'timeouts' must be a mapping of connect/first-byte/idle seconds")
        try:
            timeouts = parse_timeouts(entry["timeouts"], defaults.timeouts, f"{name}.timeouts", "config")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("config: ")) from None
    models = entry.get("models") or []
    if not isinstance(models, list):
        raise ValueError(f"{name}: 'models' must be a list of model names")
    names = [str(m["name"]) if isinstance(m, dict) and m.get("name") else m for m in models]
    if not all(isinstance(m, str) and m for m in names):
        raise ValueError(f"{name}: 'models' must be a list of model names")
    headers = _string_map(entry.get("headers"), name, "headers")
    command = entry.get("command")
    if isinstance(command, str):
        command = command.split()
    if command is not None and (not isinstance(command, list) or not command
                                or not all(isinstance(c, str) for c in command)):
        raise ValueError(f"{name}: 'command' must be a command line or a list of its words")
    endpoint = endpoint.rstrip("/")
    label = f"{service} ({name} at {endpoint})" if service else f"{name} at {endpoint}"
    return ServiceSpec(
        name=name, label=label, endpoint=endpoint, api_key=api_key or None, prefix=prefix,
        max_concurrency=concurrency,
        queue_size=int(_positive(entry.get("queue-size", 100), name, "queue-size")),
        queue_timeout=float(_positive(entry.get("queue-timeout", max(timeouts.first_byte, 600.0)), name,
                                      "queue-timeout")),
        timeouts=timeouts, health_path=_path(entry.get("health-path", defaults.health_path), name),
        models=tuple(names), headers=tuple(headers.items()), proxy_url=entry.get("proxy-url") or None,
        tools=tools, quirks=_quirks(entry, name, defaults.quirks, label),
        check_interval=float(_positive(entry.get("health-interval", 15), name, "health-interval")),
        models_interval=float(_positive(entry.get("models-interval", 300), name, "models-interval")),
        command=tuple(command or ()), cwd=str(entry["cwd"]) if entry.get("cwd") else None,
        env=tuple(_string_map(entry.get("env"), name, "env").items()),
    )


def _quirks(entry: dict[str, Any], name: str, base: Quirks, label: str) -> Quirks:
    """``think-tags`` (reasoning inline as <think>), ``error-prefixes`` (an
    answer starting so is an error) and ``usage: reported|unknown``."""
    think = entry.get("think-tags", base.think_tags)
    if not isinstance(think, bool):
        raise ValueError(f"{name}: 'think-tags' must be true or false")
    prefixes = entry.get("error-prefixes", list(base.error_prefixes))
    if not isinstance(prefixes, list) or not all(isinstance(p, str) and p for p in prefixes):
        raise ValueError(f"{name}: 'error-prefixes' must be a list of texts")
    usage = entry.get("usage", "reported" if base.usage_known else "unknown")
    if usage not in ("reported", "unknown"):
        raise ValueError(f"{name}: 'usage' must be reported or unknown, got {usage!r}")
    return Quirks(think, tuple(prefixes), usage == "reported", label)


def _string_map(value: Any, name: str, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name}: '{key}' must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _positive(value: Any, name: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name}: '{key}' must be a positive number, got {value!r}")
    return value


def _path(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{name}: 'health-path' must be a path starting with '/', got {value!r}")
    return value
