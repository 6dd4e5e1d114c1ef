"""Every retry hint an upstream gives, read one way.

* ``Retry-After``: seconds or an HTTP date;
* durations such as ``1m3.5s``, ``2S``, ``500ms`` (OpenAI messages and
  ``x-ratelimit-reset-*`` headers), Google's ``"3.5s"`` or ``{"seconds", "nanos"}``;
* "try again in 2s" / "retry in 41.2s" inside an error message;
* ``google.rpc.RetryInfo`` in a Google error's ``details``;
* Codex quota fields ``resets_in_seconds`` and ``resets_at`` (epoch seconds).

Every reader returns seconds (never negative) or None.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

_PIECE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)", re.IGNORECASE)
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|h|m|s)\s*)+", re.IGNORECASE)
_IN_MESSAGE = re.compile(r"(?:try again|retry) in\s+((?:\d+(?:\.\d+)?\s*(?:ms|h|m|s)\s*)+)", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def duration(value: Any) -> float | None:
    """``"1m3.5s"``, ``"2S"``, ``"500ms"``, ``"3.5s"``, a bare number of
    seconds, or a protobuf Duration object."""
    if isinstance(value, dict):
        seconds, nanos = _number(value.get("seconds", 0)), _number(value.get("nanos", 0))
        if seconds is None or nanos is None:
            return None
        return max(0.0, seconds + nanos / 1e9)
    number = _number(value)
    if number is not None:
        return max(0.0, number)
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        return None
    return sum(float(n) * _UNIT[unit.lower()] for n, unit in _PIECE.findall(value))


def retry_after_header(value: str | None) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP date."""
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def in_message(message: Any) -> float | None:
    """"Please try again in 1m3.5s" / "Please retry in 41.2s" inside a message."""
    if not isinstance(message, str):
        return None
    match = _IN_MESSAGE.search(message)
    return duration(match.group(1)) if match else None


def retry_info(details: Any) -> float | None:
    """The ``retryDelay`` of a ``google.rpc.RetryInfo`` among a Google error's details."""
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return duration(detail.get("retryDelay"))
    return None


def quota_reset(error: Any) -> float | None:
    """Codex usage limits: ``resets_in_seconds``, else ``resets_at`` (epoch seconds)."""
    if not isinstance(error, dict):
        return None
    seconds = _number(error.get("resets_in_seconds"))
    if seconds is not None:
        return max(0.0, seconds)
    resets_at = _number(error.get("resets_at"))
    if resets_at is not None:
        return max(0.0, resets_at - time.time())
    return None


def from_error(error: Any, message: Any = None) -> float | None:
    """Whatever an error object says about when to retry: quota fields,
    Google RetryInfo, then the message text."""
    if isinstance(error, dict):
        for found in (quota_reset(error), retry_info(error.get("details"))):
            if found is not None:
                return found
        if message is None:
            message = error.get("message")
    return in_message(message)
