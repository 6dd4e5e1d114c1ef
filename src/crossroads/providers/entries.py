"""Turning CLIProxyAPI-style config entries into accounts (shared by providers)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from crossroads import quota, reasoning
from crossroads.config import ConfigError, Timeouts, parse_timeouts
from crossroads.providers import error_rules
from crossroads.providers.base import Account, ModelRoute, Provider

_NO_CATALOGUE_METADATA = "the model list carries no per-model metadata"
# one model of an entry's ``models`` list (crossroads.configkeys notation)
MODEL_KEYS: dict[str, Any] = {
    "name": None, "alias": None,
    "force-mapping": None,  # what every reply does anyway: its model field is the name the client asked for
    "display-name": None, "max-context-length": None,  # in the Anthropic and Gemini model lists
    "thinking": {"levels": None},  # the reasoning levels this model takes; others are fitted to them
    "input-modalities": _NO_CATALOGUE_METADATA, "output-modalities": _NO_CATALOGUE_METADATA,
    "is-compat": "thinking blocks are translated the same way for every upstream",
    "image": "the image generation endpoints are not served",
}
# one entry of claude-, gemini-, codex-, vertex-, xai-api-key (providers add their own keys)
ENTRY_KEYS: dict[str, Any] = {
    "api-key": None, "base-url": None, "headers": None, "proxy-url": None, "prefix": None, "priority": None,
    "weight": None, "excluded-models": None, "disabled": None, "timeouts": {"connect": None, "first-byte": None,
                                                                           "idle": None},
    "disable-cooling": None, "request-retry": None, "models": [MODEL_KEYS],
    "pause-at": None,  # the account's own quota reserve (crossroads.quota)
    "request-scoped-errors": [{"status": None, "match": None, "match-regexr": None, "action": None}],
}


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
        headers={str(k): str(v) for k, v in headers.items() if not str(v).startswith("$")},
        copied_headers={str(k): str(v)[1:].lower() for k, v in headers.items() if str(v).startswith("$")},
        proxy_url=proxy_url or entry.get("proxy-url") or None,
        prefix=str(prefix).strip("/") if prefix else None,
        priority=int(entry.get("priority") or 0),
        weight=int(entry["weight"]) if entry.get("weight") is not None else 1,
        excluded=tuple(str(p) for p in excluded),
        disabled=bool(entry.get("disabled", False)),
        pause_at=quota.fraction(entry["pause-at"], f"{where}.pause-at") if entry.get("pause-at") is not None
        else None,
        disable_cooling=_optional_bool(entry, "disable-cooling", where),
        request_retry=_optional_retry(entry, where),
        error_rules=error_rules.parse(entry.get("request-scoped-errors"), f"{where}.request-scoped-errors"),
    )
    timeouts = entry.get("timeouts")
    if timeouts is not None:
        if not isinstance(timeouts, dict):
            raise ValueError(f"{where}: 'timeouts' must be a mapping of connect/first-byte/idle seconds")
        try:
            account.timeouts = parse_timeouts(timeouts, Timeouts(), f"{where}.timeouts", "config")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("config: ")) from None
    for upstream, exposed, extras in _model_pairs(entry, where, catalogue):
        if account.is_excluded(upstream):
            continue
        names = (exposed, f"{account.prefix}/{exposed}") if account.prefix else (exposed,)
        for name in names:
            route = ModelRoute(upstream=upstream, exposed=name, **extras)
            if name in account.routes:  # an alias repeated over several models: a pool of them
                account.pooled.append(route)
            else:
                account.routes[name] = route
    return account


def alias_pool_siblings(account: Account) -> list[Account]:
    """One more account per repeated alias of an entry (CLIProxyAPI: "repeat
    the same alias to build an internal model pool"): the same credential
    serving the alias with another upstream model, so the pool rotates over
    the models and fails over from one to the next before any output."""
    siblings: list[Account] = []
    for route in account.pooled:
        for sibling in siblings:  # the n-th repeat of a name goes to the n-th sibling
            if route.exposed not in sibling.routes:
                sibling.routes[route.exposed] = route
                break
        else:
            siblings.append(dataclasses.replace(
                account, id=f"{account.id}~{len(siblings) + 2}", label=f"{account.label}~{len(siblings) + 2}",
                routes={route.exposed: route}, pooled=[]))
    account.pooled = []
    return siblings


def _optional_bool(entry: dict[str, Any], key: str, where: str) -> bool | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ValueError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def _optional_retry(entry: dict[str, Any], where: str) -> int | None:
    """Per-entry ``request-retry``; omitted or negative inherits the global value (as CLIProxyAPI)."""
    value = entry.get("request-retry")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: 'request-retry' must be an integer, got {value!r}")
    return value if value >= 0 else None


def credential_id(config_key: str, secret: str, base_url: str, prefix: Any) -> str:
    """An account's identity: a digest of what it authenticates with, not its
    place in the list, so reordering entries keeps each one's cooldowns and a
    changed key starts afresh."""
    digest = hashlib.sha256(f"{secret}\0{base_url}\0{prefix or ''}".encode()).hexdigest()[:12]
    return f"{config_key}#{digest}"


def _model_pairs(entry: dict[str, Any], where: str,
                 catalogue: list[str] | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(upstream name, exposed name, the route's other fields) per model."""
    models = entry.get("models")
    if not models:
        return [(m, m, {}) for m in (catalogue or [])]
    if not isinstance(models, list):
        raise ValueError(f"{where}: 'models' must be a list")
    pairs: list[tuple[str, str, dict[str, Any]]] = []
    for i, model in enumerate(models):
        if isinstance(model, str):
            pairs.append((model, model, {}))
            continue
        if not isinstance(model, dict) or not model.get("name"):
            raise ValueError(f"{where}.models[{i}]: each model needs a 'name'")
        name = str(model["name"])
        pairs.append((name, str(model.get("alias") or name), _model_extras(model, f"{where}.models[{i}]")))
    return pairs


def _model_extras(model: dict[str, Any], where: str) -> dict[str, Any]:
    """``display-name``, ``max-context-length`` and ``thinking: {levels}`` of one configured model."""
    extras: dict[str, Any] = {}
    if model.get("display-name"):
        extras["display_name"] = str(model["display-name"])
    context = model.get("max-context-length")
    if context is not None:
        if isinstance(context, bool) or not isinstance(context, int) or context <= 0:
            raise ValueError(f"{where}: 'max-context-length' must be a positive integer, got {context!r}")
        extras["context"] = context
    thinking = model.get("thinking")
    if thinking is not None:
        levels = thinking.get("levels") if isinstance(thinking, dict) else None
        if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
            raise ValueError(f"{where}: 'thinking' must be {{levels: [...]}}")
        known = reasoning.LEVEL_BUDGETS
        unknown = [v for v in levels if v.lower() not in known]
        if unknown:
            raise ValueError(f"{where}.thinking.levels: {', '.join(unknown)} not one of {', '.join(known)}")
        extras["levels"] = tuple(v.lower() for v in levels)
    return extras


def simple_accounts(provider: Provider, entries: list[dict[str, Any]]) -> list[Account]:
    """Entries with one ``api-key`` each (claude-, gemini-, codex-api-key)."""
    return [
        build_account(provider, i, entry, entry.get("api-key", ""), catalogue=provider.catalogue())
        for i, entry in enumerate(entries)
    ]
