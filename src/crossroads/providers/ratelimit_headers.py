"""Readers for the rate-limit header families several upstreams share, so an
account nearing its limit is avoided before it answers 429. A provider names
the families its upstream sends (``Provider.rate_limit_families``); a provider
with headers of its own parses them in its module with ``tightest``.

``anthropic``: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
{limit,remaining,reset}`` and the subscription windows
``anthropic-ratelimit-unified-{5h,7d}-utilization`` / ``-reset``.
``openai``: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (resets
like "1s", "6m0s").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from crossroads.dialects.kit import durations

Window = tuple[float, float]  # (fraction of the window left, seconds until it resets)

_ANTHROPIC = tuple((f"anthropic-ratelimit-{k}-limit", f"anthropic-ratelimit-{k}-remaining",
                    f"anthropic-ratelimit-{k}-reset") for k in ("requests", "tokens", "input-tokens", "output-tokens"))
_UNIFIED = tuple((f"anthropic-ratelimit-unified-{w}-utilization", f"anthropic-ratelimit-unified-{w}-reset")
                 for w in ("5h", "7d"))
_OPENAI = tuple((f"x-ratelimit-limit-{k}", f"x-ratelimit-remaining-{k}", f"x-ratelimit-reset-{k}")
                for k in ("requests", "tokens"))


def anthropic_windows(headers: Mapping[str, str]) -> list[Window]:
    windows: list[Window] = []
    if _ANTHROPIC[0][0] in headers or _UNIFIED[0][0] in headers or _ANTHROPIC[1][0] in headers:
        for limit_name, remaining_name, reset_name in _ANTHROPIC:
            limit, remaining = number(headers.get(limit_name)), number(headers.get(remaining_name))
            if limit and remaining is not None:
                windows.append((remaining / limit, _until_timestamp(headers.get(reset_name))))
        for used_name, reset_name in _UNIFIED:
            used = number(headers.get(used_name))
            if used is not None:
                used = used / 100.0 if used > 1.0 else used
                windows.append((1.0 - used, _until_timestamp(headers.get(reset_name))))
    return windows


def openai_windows(headers: Mapping[str, str]) -> list[Window]:
    windows: list[Window] = []
    if _OPENAI[0][0] in headers or _OPENAI[1][0] in headers:
        for limit_name, remaining_name, reset_name in _OPENAI:
            limit, remaining = number(headers.get(limit_name)), number(headers.get(remaining_name))
            if limit and remaining is not None:
                windows.append((remaining / limit, _duration(headers.get(reset_name))))
    return windows


FAMILIES: dict[str, Callable[[Mapping[str, str]], list[Window]]] = {
    "anthropic": anthropic_windows,
    "openai": openai_windows,
}


def tightest(windows: list[Window]) -> Window | None:
    return min(windows) if windows else None


def headroom(headers: Mapping[str, str], families: tuple[str, ...]) -> Window | None:
    """The tightest window of the named families, or None when the response
    carries none of their headers."""
    windows: list[Window] = []
    for family in families:
        windows.extend(FAMILIES[family](headers))
    return tightest(windows)


def number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _duration(value: str | None) -> float:
    if not value:
        return 60.0
    seconds = durations.duration(value)
    return seconds if seconds else 60.0


def _until_timestamp(value: str | None) -> float:
    """Anthropic resets are RFC 3339 times (or epoch seconds for unified windows)."""
    if not value:
        return 60.0
    seconds = number(value)
    if seconds is not None:
        return max(0.0, seconds - time.time()) if seconds > 1e9 else seconds
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time.time())
    except ValueError:
        return 60.0
