"""Readers for the rate-limit and quota header families several upstreams
share, mapped into quota windows (``crossroads.quota``), so an account nearing
a limit is avoided before it answers 429. A provider names the families its
upstream sends (``Provider.rate_limit_families``); a provider with headers of
its own reads them in its module with the helpers here.

``anthropic``: per-minute ``anthropic-ratelimit-{requests,tokens,input-tokens,
output-tokens}-{limit,remaining,reset}`` (API keys), and the subscription
windows ``anthropic-ratelimit-unified-<claim>-{utilization,reset,status}``
where the claim is ``5h``, ``7d`` or a model-scoped weekly claim such as
``7d_opus``; ``-unified-status: rejected`` with ``-unified-reset`` and the
``-representative-claim`` marks the binding window as exhausted.
``openai``: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (resets
like "1s", "6m0s").

Every reader is tolerant: a missing or unreadable header yields no window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from crossroads import quota
from crossroads.dialects.kit import durations
from crossroads.quota import Window

_UNIFIED = "anthropic-ratelimit-unified-"

_ANTHROPIC = tuple((kind, f"anthropic-ratelimit-{k}-limit", f"anthropic-ratelimit-{k}-remaining",
                    f"anthropic-ratelimit-{k}-reset")
                   for kind, k in (("requests-per-minute", "requests"), ("tokens-per-minute", "tokens"),
                                   ("tokens-per-minute", "input-tokens"), ("tokens-per-minute", "output-tokens")))
_OPENAI = tuple((kind, f"x-ratelimit-limit-{k}", f"x-ratelimit-remaining-{k}", f"x-ratelimit-reset-{k}")
                for kind, k in (("requests-per-minute", "requests"), ("tokens-per-minute", "tokens")))


def anthropic_windows(headers: Mapping[str, str]) -> list[Window]:
    now = time.time()
    windows: list[Window] = []
    if _ANTHROPIC[0][1] in headers or _ANTHROPIC[1][1] in headers:
        tightest: dict[str, Window] = {}
        for kind, limit_name, remaining_name, reset_name in _ANTHROPIC:
            limit, remaining = number(headers.get(limit_name)), number(headers.get(remaining_name))
            if limit and remaining is not None:
                item = quota.window(kind, 1.0 - remaining / limit, _reset_epoch(headers.get(reset_name), now),
                                    "header", limit=limit, now=now)
                if kind not in tightest or item.used > tightest[kind].used:
                    tightest[kind] = item
        windows.extend(tightest.values())
    if _UNIFIED + "status" in headers or _UNIFIED + "5h-utilization" in headers \
            or _UNIFIED + "7d-utilization" in headers:
        windows.extend(_unified(headers, now))
    return windows


def claim_kind(claim: str) -> tuple[str, str | None] | None:
    """A unified claim (``5h``, ``7d``, ``7d_opus``, ``five_hour``, ``seven_day_sonnet``)
    as (kind, model family)."""
    claim = claim.strip().lower().replace("-", "_")
    for prefix, kind in (("5h", "five-hour"), ("five_hour", "five-hour"), ("7d", "weekly"),
                         ("seven_day", "weekly")):
        if claim == prefix:
            return kind, None
        if claim.startswith(prefix + "_") and kind == "weekly":
            return "weekly-family", claim[len(prefix) + 1:]
    return None


def _unified(headers: Mapping[str, str], now: float) -> list[Window]:
    windows: dict[str, Window] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if not (lowered.startswith(_UNIFIED) and lowered.endswith("-utilization")):
            continue
        named = claim_kind(lowered[len(_UNIFIED):-len("-utilization")])
        used = number(value)
        if named is None or used is None:
            continue
        claim = lowered[len(_UNIFIED):-len("-utilization")]
        if headers.get(f"{_UNIFIED}{claim}-status", "").lower() == "rejected":
            used = max(used, 1.0)
        item = quota.window(named[0], used / 100.0 if used > 1.5 else used,
                            _reset_epoch(headers.get(f"{_UNIFIED}{claim}-reset"), now, None), "header",
                            family=named[1], now=now)
        windows[item.key] = item
    if headers.get(_UNIFIED + "status", "").lower() == "rejected":
        named = claim_kind(headers.get(_UNIFIED + "representative-claim", "") or "5h") or ("five-hour", None)
        reset = _reset_epoch(headers.get(_UNIFIED + "reset"), now, None)
        item = quota.window(named[0], 1.0, reset, "header", family=named[1], now=now)
        known = windows.get(item.key)
        windows[item.key] = item if known is None or known.resets_at is None else \
            quota.window(item.kind, 1.0, known.resets_at, "header", family=item.family, now=now)
    return list(windows.values())


def openai_windows(headers: Mapping[str, str]) -> list[Window]:
    windows: list[Window] = []
    if _OPENAI[0][1] in headers or _OPENAI[1][1] in headers:
        now = time.time()
        for kind, limit_name, remaining_name, reset_name in _OPENAI:
            limit, remaining = number(headers.get(limit_name)), number(headers.get(remaining_name))
            if limit and remaining is not None:
                windows.append(quota.window(kind, 1.0 - remaining / limit, now + duration(headers.get(reset_name)),
                                            "header", limit=limit, now=now))
    return windows


FAMILIES: dict[str, Callable[[Mapping[str, str]], list[Window]]] = {
    "anthropic": anthropic_windows,
    "openai": openai_windows,
}


def headroom(headers: Mapping[str, str], families: tuple[str, ...]) -> list[Window]:
    """The windows of the named families a response's headers carry (none: [])."""
    windows: list[Window] = []
    for family in families:
        windows.extend(FAMILIES[family](headers))
    return windows


def number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def duration(value: str | None) -> float:
    """Seconds from "6m0s", "1m30s", "2ms" or a bare number (60 when unreadable)."""
    if not value:
        return 60.0
    seconds = durations.duration(value)
    return seconds if seconds else 60.0


def epoch(value: str | None) -> float | None:
    """An absolute time: epoch seconds (or milliseconds) or RFC 3339; None when unreadable."""
    if not value:
        return None
    seconds = number(value)
    if seconds is not None:
        return seconds / 1000.0 if seconds > 1e12 else seconds if seconds > 1e9 else None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _reset_epoch(value: str | None, now: float, default: float | None = 60.0) -> float | None:
    """Anthropic resets: RFC 3339 or epoch seconds, or (old style) seconds from now."""
    absolute = epoch(value)
    if absolute is not None:
        return absolute
    relative = number(value)
    if relative is not None:
        return now + relative
    return None if default is None else now + default
