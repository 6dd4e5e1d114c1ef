"""State shared between replicas: in-process by default, Redis when configured::

    state: {backend: redis, url: redis://127.0.0.1:6379/0, prefix: crossroads}

See ``base`` for the interface and what may wait on the network.
"""

from __future__ import annotations

from typing import Any

from crossroads.state.base import (
    DEFAULT_PREFIX,
    DEFAULT_URL,
    Cooldown,
    Limits,
    Refusal,
    State,
    StateConfig,
    StateUnavailable,
)
from crossroads.state.memory import MemoryState

BACKENDS = ("memory", "redis")


def parse_config(data: Any, where: str = "state") -> StateConfig:
    """``state:`` from the config file; raises ValueError with a readable message."""
    if data is None:
        return StateConfig()
    if not isinstance(data, dict):
        raise ValueError(f"'{where}' must be a mapping like {{backend: redis, url: redis://host:6379/0}}")
    backend = str(data.get("backend") or "memory")
    if backend not in BACKENDS:
        raise ValueError(f"{where}.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    url = data.get("url") or DEFAULT_URL
    prefix = data.get("prefix") or DEFAULT_PREFIX
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{where}.url must be a redis://, rediss:// or unix:// URL, got {url!r}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"{where}.prefix must be a non-empty string")
    return StateConfig(backend, url, prefix)


def open_state(config: StateConfig) -> State:
    if config.backend == "redis":
        from crossroads.state.redis import RedisState  # the redis package loads only when used

        return RedisState(config.url, config.prefix)
    return MemoryState()


__all__ = ["Cooldown", "Limits", "MemoryState", "Refusal", "State", "StateConfig", "StateUnavailable",
           "open_state", "parse_config"]
