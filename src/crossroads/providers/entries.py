"""Turning CLIProxyAPI-style config entries into accounts (shared by providers)."""

from __future__ import annotations

import hashlib
from typing import Any

from crossroads import quota
from crossroads.config import ConfigError, Timeouts, parse_timeouts
from crossroads.providers.base import Account, ModelRoute, Provider


def build_account(provider: Provider, index: int, entry: dict[str, Any], secret: str,
                  *, label: str | None = None, sub: int | None = None,
                  proxy_url: str | None = None, catalogue: list[str] | None = None) -> Account:
    where = f"{provider.config_key}[{index}]" + (f".api-key-entries[{sub}]" if sub is not None else "")
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"{where}: 'api-key' is missing")
    base_url = entry.get("base-url") or provider.default_base_url
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"{where}: 'base-url' must be an http(s) URL, got {base_url!r}")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError(f"{where}: 'headers' must be a mapping")
    prefix = entry.get("prefix") or None
    excluded = entry.get("excluded-models") or []
    if not isinstance(excluded, list):
        raise ValueError(f"{where}: 'excluded-models' must be a list")
    account = Account(
        id=credential_id(provider.config_key, secret, base_url.rstrip("/"), prefix),
        provider=provider,
        secret=secret,
        base_url=base_url.rstrip("/"),
        label=label or where,
        headers={str(k): str(v) for k, v in headers.items()},
        proxy_url=proxy_url or entry.get("proxy-url") or None,
        prefix=str(prefix).strip("/") if prefix else None,
        priority=int(entry.get("priority") or 0),
        weight=int(entry["weight"]) if entry.get("weight") is not None else 1,
        excluded=tuple(str(p) for p in excluded),
        disabled=bool(entry.get("disabled", False)),
        pause_at=quota.fraction(entry["pause-at"], f"{where}.pause-at") if entry.get("pause-at") is not None
        else None,
    )
    timeouts = entry.get("timeouts")
    if timeouts is not None:
        if not isinstance(timeouts, dict):
            raise ValueError(f"{where}: 'timeouts' must be a mapping of connect/first-byte/idle seconds")
        try:
            account.timeouts = parse_timeouts(timeouts, Timeouts(), f"{where}.timeouts", "config")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("config: ")) from None
    for upstream, exposed in _model_pairs(entry, where, catalogue):
        if account.is_excluded(upstream):
            continue
        account.routes[exposed] = ModelRoute(upstream=upstream, exposed=exposed)
        if account.prefix:
            named = f"{account.prefix}/{exposed}"
            account.routes[named] = ModelRoute(upstream=upstream, exposed=named)
    return account


def credential_id(config_key: str, secret: str, base_url: str, prefix: Any) -> str:
    """An account's identity: a digest of what it authenticates with, not its
    place in the list, so reordering entries keeps each one's cooldowns and a
    changed key starts afresh."""
    digest = hashlib.sha256(f"{secret}\0{base_url}\0{prefix or ''}".encode()).hexdigest()[:12]
    return f"{config_key}#{digest}"


def _model_pairs(entry: dict[str, Any], where: str, catalogue: list[str] | None) -> list[tuple[str, str]]:
    models = entry.get("models")
    if not models:
        return [(m, m) for m in (catalogue or [])]
    if not isinstance(models, list):
        raise ValueError(f"{where}: 'models' must be a list")
    pairs = []
    for i, model in enumerate(models):
        if isinstance(model, str):
            pairs.append((model, model))
            continue
        if not isinstance(model, dict) or not model.get("name"):
            raise ValueError(f"{where}.models[{i}]: each model needs a 'name'")
        name = str(model["name"])
        pairs.append((name, str(model.get("alias") or name)))
    return pairs


def simple_accounts(provider: Provider, entries: list[dict[str, Any]]) -> list[Account]:
    """Entries with one ``api-key`` each (claude-, gemini-, codex-api-key)."""
    return [
        build_account(provider, i, entry, entry.get("api-key", ""), catalogue=provider.catalogue())
        for i, entry in enumerate(entries)
    ]
