"""Truthful cost labels for usage records.

Every answered request is labelled with how it was paid for:

- ``subscription``: included in a subscription's plan (Claude Pro/Max, ChatGPT,
  Gemini CLI...): no per-request price, whatever an API would have charged;
- ``per-token``: an API key billed by the token; ``cost_usd`` comes from the
  price table below (overridable per model in ``prices:``) and is None when
  the model is not in it or the upstream did not report the tokens needed;
- ``credits``: a subscription's purchased credits paid for it (its plan
  windows were spent and it still answered on credits);
- ``unknown``: nobody can say (side services, web sessions).

Never a made-up number: no price, no amount.
"""

from __future__ import annotations

import fnmatch
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossroads import ir, quota

LABELS = ("subscription", "per-token", "credits", "unknown")
MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float | None = None  # None: the vendor publishes none (cached tokens then make it unknown)
    cache_write: float | None = None
    long_context: tuple[int, float, float] | None = None  # (above this many input tokens: input, output)


# Vendors' published list prices (standard tier, checked December 2025). Models are matched by
# exact name first, then by the longest wildcard pattern. Maintained by hand; ``prices:`` overrides.
PRICES: dict[str, Price] = {
    "claude-opus-4-5*": Price(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-1*": Price(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4-2*": Price(15.0, 75.0, 1.50, 18.75),  # claude-opus-4-20250514
    "claude-sonnet-4-5*": Price(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4-2*": Price(3.0, 15.0, 0.30, 3.75),  # claude-sonnet-4-20250514
    "claude-haiku-4-5*": Price(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku*": Price(0.80, 4.0, 0.08, 1.0),
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-codex": Price(1.25, 10.0, 0.125),
    "gpt-5.1": Price(1.25, 10.0, 0.125),
    "gpt-5.1-codex": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
    "gpt-5.1-codex-mini": Price(0.25, 2.0, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-4.1": Price(2.0, 8.0, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4o": Price(2.50, 10.0, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gemini-2.5-pro": Price(1.25, 10.0, None, None, (200_000, 2.50, 15.0)),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
}
_LIST_PATTERNS = tuple(name for name in PRICES if any(c in name for c in "*?["))


def parse_prices(data: Any, where: str = "prices") -> dict[str, Price]:
    """``prices: {model-or-pattern: {input: 3.0, output: 15.0, cache-read: 0.3, cache-write: 3.75}}``
    (dollars per million tokens); raises ValueError with a readable message."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"'{where}' must map a model (or wildcard) to {{input: ..., output: ...}} "
                         "in dollars per million tokens")
    out: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
            raise ValueError(f"{where}.{model} needs 'input' and 'output' (dollars per million tokens)")
        try:
            values = {k: None if entry.get(k) is None else float(entry[k])
                      for k in ("input", "output", "cache-read", "cache-write")}
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{model}: prices must be numbers (dollars per million tokens)") from None
        out[str(model)] = Price(values["input"] or 0.0, values["output"] or 0.0, values["cache-read"],
                                values["cache-write"])
    return out


def price_of(model: str, overrides: Mapping[str, Price], list_prices: bool = True) -> Price | None:
    """The configured price of ``model``, else (``list_prices``) the vendors' list price."""
    for table in (overrides, PRICES) if list_prices else (overrides,):
        exact = table.get(model)
        if exact is not None:
            return exact
        if table:
            pattern = _best_pattern(model, _patterns(table) if table is not PRICES else _LIST_PATTERNS)
            if pattern is not None:
                return table[pattern]
    return None


def _patterns(table: Mapping[str, Price]) -> tuple[str, ...]:
    return tuple(name for name in table if any(c in name for c in "*?["))


@functools.lru_cache(maxsize=4096)  # asked per answer, for the few models a server sees
def _best_pattern(model: str, patterns: tuple[str, ...]) -> str | None:
    """The longest of ``patterns`` that ``model`` matches."""
    matches = [pattern for pattern in patterns if fnmatch.fnmatchcase(model, pattern)]
    return max(matches, key=len) if matches else None


def dollars(price: Price | None, usage: ir.Usage | None) -> float | None:
    """What the tokens cost at ``price``; None when anything needed is unknown."""
    if price is None or usage is None or usage.input_tokens is None or usage.output_tokens is None:
        return None
    read, write = usage.cache_read_tokens or 0, usage.cache_write_tokens or 0
    if (read and price.cache_read is None) or (write and price.cache_write is None):
        return None
    per_input, per_output = price.input, price.output
    if price.long_context is not None and usage.input_tokens > price.long_context[0]:
        per_input, per_output = price.long_context[1], price.long_context[2]
    fresh = max(0, usage.input_tokens - read - write)
    total = (fresh * per_input + usage.output_tokens * per_output + read * (price.cache_read or 0.0)
             + write * (price.cache_write or 0.0)) / MILLION
    return int(total * MILLION + 0.5) / MILLION  # to the millionth of a dollar; round() takes as long as the rest


def label(billing: str, windows: Mapping[str, quota.Window] | None, now: float | None = None) -> str:
    """The label for a request an account with ``billing`` answered, given its
    windows as they stood: a subscription whose plan windows were spent but
    whose credits were not paid with credits."""
    if billing != "subscription" or not windows:
        return billing
    now = time.time() if now is None else now
    credits = windows.get("credits")
    if credits is None or not credits.live(now) or credits.used >= 1.0:
        return billing
    spent = any(w.used >= 1.0 and w.live(now) for w in windows.values()
                if w.kind not in quota.RATE_KINDS and w.kind != "credits")
    return "credits" if spent else billing
