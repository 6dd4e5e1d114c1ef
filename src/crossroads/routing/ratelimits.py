"""Rate-limit headroom from upstream response headers, so an account nearing
its limit is avoided before it answers 429.

Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
{limit,remaining,reset}`` and the subscription windows
``anthropic-ratelimit-unified-{5h,7d}-utilization`` / ``-reset``.
OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (resets like
"1s", "6m0s"). Codex: ``x-codex-{primary,secondary}-used-percent`` and
``-reset-after-seconds``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def headroom(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(fraction left of the tightest window, seconds until it resets), or None
    when the response carries no rate-limit headers."""
    windows: list[tuple[float, float]] = []
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        limit = _num(headers.get(f"anthropic-ratelimit-{kind}-limit"))
        remaining = _num(headers.get(f"anthropic-ratelimit-{kind}-remaining"))
        if limit and remaining is not None:
            windows.append((remaining / limit, _until_timestamp(headers.get(f"anthropic-ratelimit-{kind}-reset"))))
    for window in ("5h", "7d"):
        used = _num(headers.get(f"anthropic-ratelimit-unified-{window}-utilization"))
        if used is not None:
            used = used / 100.0 if used > 1.0 else used
            windows.append((1.0 - used, _until_timestamp(headers.get(f"anthropic-ratelimit-unified-{window}-reset"))))
    for kind in ("requests", "tokens"):
        limit = _num(headers.get(f"x-ratelimit-limit-{kind}"))
        remaining = _num(headers.get(f"x-ratelimit-remaining-{kind}"))
        if limit and remaining is not None:
            windows.append((remaining / limit, _duration(headers.get(f"x-ratelimit-reset-{kind}"))))
    for window in ("primary", "secondary"):
        used = _num(headers.get(f"x-codex-{window}-used-percent"))
        if used is not None:
            reset = _num(headers.get(f"x-codex-{window}-reset-after-seconds")) or 60.0
            windows.append((1.0 - used / 100.0, reset))
    if not windows:
        return None
    return min(windows)


def _num(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _duration(value: str | None) -> float:
    if not value:
        return 60.0
    total = sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(value))
    return total or (_num(value) or 60.0)


def _until_timestamp(value: str | None) -> float:
    """Anthropic resets are RFC 3339 times (or epoch seconds for unified windows)."""
    if not value:
        return 60.0
    number = _num(value)
    if number is not None:
        return max(0.0, number - time.time()) if number > 1e9 else number
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time.time())
    except ValueError:
        return 60.0
