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


_ANTHROPIC = tuple((f"anthropic-ratelimit-{k}-limit", f"anthropic-ratelimit-{k}-remaining",
                    f"anthropic-ratelimit-{k}-reset") for k in ("requests", "tokens", "input-tokens", "output-tokens"))
_UNIFIED = tuple((f"anthropic-ratelimit-unified-{w}-utilization", f"anthropic-ratelimit-unified-{w}-reset")
                 for w in ("5h", "7d"))
_OPENAI = tuple((f"x-ratelimit-limit-{k}", f"x-ratelimit-remaining-{k}", f"x-ratelimit-reset-{k}")
                for k in ("requests", "tokens"))
_CODEX = tuple((f"x-codex-{w}-used-percent", f"x-codex-{w}-reset-after-seconds") for w in ("primary", "secondary"))


def headroom(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(fraction left of the tightest window, seconds until it resets), or None
    when the response carries no rate-limit headers."""
    windows: list[tuple[float, float]] = []
    if _ANTHROPIC[0][0] in headers or _UNIFIED[0][0] in headers or _ANTHROPIC[1][0] in headers:
        for limit_name, remaining_name, reset_name in _ANTHROPIC:
            limit, remaining = _num(headers.get(limit_name)), _num(headers.get(remaining_name))
            if limit and remaining is not None:
                windows.append((remaining / limit, _until_timestamp(headers.get(reset_name))))
        for used_name, reset_name in _UNIFIED:
            used = _num(headers.get(used_name))
            if used is not None:
                used = used / 100.0 if used > 1.0 else used
                windows.append((1.0 - used, _until_timestamp(headers.get(reset_name))))
    if _OPENAI[0][0] in headers or _OPENAI[1][0] in headers:
        for limit_name, remaining_name, reset_name in _OPENAI:
            limit, remaining = _num(headers.get(limit_name)), _num(headers.get(remaining_name))
            if limit and remaining is not None:
                windows.append((remaining / limit, _duration(headers.get(reset_name))))
    if _CODEX[0][0] in headers or _CODEX[1][0] in headers:
        for used_name, reset_name in _CODEX:
            used = _num(headers.get(used_name))
            if used is not None:
                windows.append((1.0 - used / 100.0, _num(headers.get(reset_name)) or 60.0))
    return min(windows) if windows else None


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
