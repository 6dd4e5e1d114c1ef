"""One quota model for every provider: per account, a set of windows.

A window is one limit the upstream counts against: per-minute requests or
tokens, a 5-hour session, a day, a week, a week scoped to one model family,
a month, or a credit balance. Each carries how much of it is used (a
fraction; over 1 means exhausted), when it resets, where the number came
from and when it was seen. Providers map their own signals into windows
(response headers, usage endpoints, quota errors); routing reads them;
the state backend shares them between replicas.

Unknown stays unknown: a window is only what an upstream said, and once its
reset time has passed it says nothing any more.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("requests-per-minute", "tokens-per-minute", "five-hour", "daily", "weekly", "weekly-family",
         "monthly", "credits")
SOURCES = ("header", "usage-endpoint", "ledger", "error")
RATE_KINDS = ("requests-per-minute", "tokens-per-minute")  # short bursts, not a plan's allowance

LOW_HEADROOM = 0.05  # at or below 5 % of a window left, prefer other accounts
NO_RESET_TRUST = 3600.0  # a window without a reset time is believed this long after it was seen
EXHAUSTED_RETRY = 60.0  # an exhausted window without a reset time: look again after this long


@dataclass(frozen=True, slots=True)
class Window:
    kind: str  # one of KINDS
    used: float  # fraction used, 0..1 (1 or more: exhausted)
    resets_at: float | None  # epoch seconds; None: not said
    source: str  # one of SOURCES
    observed_at: float  # epoch seconds
    family: str | None = None  # the model family a scoped window counts (e.g. "opus")
    limit: float | None = None  # the absolute limit when the upstream says it

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.family}" if self.family else self.kind

    def live(self, now: float) -> bool:
        """Whether the window still says something (its reset has not passed)."""
        if self.resets_at is not None:
            return self.resets_at > now
        return now - self.observed_at < NO_RESET_TRUST

    def applies_to(self, model: str) -> bool:
        return self.family is None or self.family in model.lower()

    def until(self) -> float:
        return self.resets_at if self.resets_at is not None else self.observed_at + EXHAUSTED_RETRY

    def wire(self) -> dict[str, Any]:
        return {"k": self.kind, "u": self.used, "r": self.resets_at, "s": self.source, "o": self.observed_at,
                "f": self.family, "l": self.limit}


def window(kind: str, used: float, resets_at: float | None, source: str, *, family: str | None = None,
           limit: float | None = None, now: float | None = None) -> Window:
    return Window(kind, max(0.0, used), resets_at, source, time.time() if now is None else now,
                  family or None, limit)


def from_wire(value: Any) -> Window | None:
    """A window as stored or published; None for anything unreadable."""
    if not isinstance(value, dict):
        return None
    try:
        resets = value.get("r")
        limit = value.get("l")
        return Window(str(value["k"]), float(value["u"]), None if resets is None else float(resets),
                      str(value.get("s") or "header"), float(value["o"]), value.get("f") or None,
                      None if limit is None else float(limit))
    except (KeyError, TypeError, ValueError):
        return None


Windows = dict[str, Window]  # window key -> window, for one account


def merge_into(windows: Windows, new: Iterable[Window]) -> None:
    """Lay ``new`` over ``windows`` in place, the later observation of each window winning."""
    for item in new:
        key = item.key
        known = windows.get(key)
        if known is None or item.observed_at >= known.observed_at:
            windows[key] = item


def fraction(value: Any, where: str) -> float:
    """A threshold as written in config: ``90%``, ``0.9`` or ``90`` (ValueError otherwise)."""
    text = str(value).strip()
    try:
        number = float(text.removesuffix("%"))
    except ValueError:
        raise ValueError(f"{where} must be a percentage like 90% or a fraction like 0.9, got {value!r}") from None
    if text.endswith("%") or number > 1.0:
        number /= 100.0
    if not 0.0 < number <= 1.0:
        raise ValueError(f"{where} must be between 0% and 100%, got {value!r}")
    return number


def kind_for_minutes(minutes: float) -> str:
    """A window length in minutes as a kind (Codex names its windows only by length)."""
    if minutes <= 1:
        return "requests-per-minute"
    if minutes <= 6 * 60:
        return "five-hour"
    if minutes <= 26 * 60:
        return "daily"
    if minutes <= 8 * 24 * 60:
        return "weekly"
    return "monthly"


@dataclass(frozen=True, slots=True)
class Assessment:
    """What an account's windows say about sending it one request for a model."""

    blocked_until: float | None = None  # epoch: exhausted or paused until then
    low: bool = False  # nearly out: use others first
    binding_reset: float | None = None  # reset of the most-used plan window (not a per-minute one)


CLEAR = Assessment()


def assess(windows: Mapping[str, Window], model: str, pause_at: float | None, now: float) -> Assessment:
    """Exhausted (or past ``pause_at``, for a plan's windows) means blocked until
    the reset; at or below ``LOW_HEADROOM`` left means low. (On the hot path:
    plain loops, no allocation unless something is found.)"""
    blocked: float | None = None
    low = False
    binding: Window | None = None
    lowered: str | None = None
    plan_limit = 1.0 if pause_at is None else min(1.0, pause_at)
    for item in windows.values():
        resets = item.resets_at
        if (resets <= now) if resets is not None else (now - item.observed_at >= NO_RESET_TRUST):
            continue  # reset since (or too old to trust): says nothing any more
        if item.family is not None:
            if lowered is None:
                lowered = model.lower()
            if item.family not in lowered:
                continue
        rate = item.kind in RATE_KINDS
        used = item.used
        if used >= (1.0 if rate else plan_limit):
            until = resets if resets is not None else item.observed_at + EXHAUSTED_RETRY
            if until > now:  # (without a reset time: looked at again after EXHAUSTED_RETRY)
                blocked = until if blocked is None else max(blocked, until)
        elif used >= 1.0 - LOW_HEADROOM:
            low = True
        if not rate and (binding is None or used > binding.used):
            binding = item  # a plan's window: its reset is capacity that may expire unused
    if blocked is None and not low and binding is None:
        return CLEAR
    return Assessment(blocked, low, binding.resets_at if binding is not None else None)


def tightest(windows: Mapping[str, Window], now: float) -> Window | None:
    """The most used window that still says something (None: none does)."""
    live = [w for w in windows.values() if w.live(now)]
    return max(live, key=lambda w: w.used) if live else None


def describe(windows: Mapping[str, Window], now: float | None = None) -> list[dict[str, Any]]:
    """Windows for people: utilisation, a bar, the reset time and how old the number is."""
    now = time.time() if now is None else now
    rows = []
    for item in sorted(windows.values(), key=lambda w: (KINDS.index(w.kind) if w.kind in KINDS else 99, w.key)):
        live = item.live(now)
        rows.append({
            "window": item.key, "kind": item.kind, "family": item.family,
            "used_percent": round(item.used * 100, 1) if live else None,
            "bar": bar(item.used) if live else "(reset since)",
            "resets_at": iso(item.resets_at), "resets_in_seconds":
                None if item.resets_at is None else max(0, round(item.resets_at - now)),
            "source": item.source, "observed_at": iso(item.observed_at),
            "age_seconds": max(0, round(now - item.observed_at)), "limit": item.limit,
        })
    return rows


def bar(used: float, width: int = 20) -> str:
    filled = max(0, min(width, round(used * width)))
    return "[" + "#" * filled + "." * (width - filled) + f"] {min(used, 9.99) * 100:.0f}%"


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
