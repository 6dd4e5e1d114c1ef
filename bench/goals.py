"""The numbers that matter and the issue's goals: every target compared with
direct (added latency) and with both bare pass-throughs (ratios), then the
goals checked against bare ASGI and, for information, bare RSGI."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scenarios import BARES, BASELINE, CONCURRENCY, HIGH_CONCURRENCY, OWN_PASSTHROUGH

LEVELS = tuple(f"c{n}" for n in CONCURRENCY)
HIGH = f"c{HIGH_CONCURRENCY}"

# The goals; "bare" is the bare pass-through (bench/rawproxy.py), checked
# against bare ASGI and shown against bare RSGI.
RPS_VS_BARE_MIN = 0.90  # JSON and SSE pass-through: requests (streams)/s at c=32 >= 0.90x bare
ADDED_P50_VS_BARE_MAX = 1.10  # JSON pass-through: added p50 at c=1 <= 1.10x the bare's added p50
CPU_VS_BARE_MAX = 1.15  # JSON pass-through: CPU per request at c=32 <= 1.15x the bare's
TTFT_OVER_BARE_MAX_MS = 0.1  # SSE pass-through: added TTFT p50 <= the bare's added TTFT + 0.1 ms
TRANSLATED_VS_OWN_MIN = 0.75  # translated rps at c=32 >= 0.75x crossroads' own pass-through rps


def within_rounds(ours: dict[str, Any], theirs: dict[str, Any], figure: str) -> list[float] | None:
    """``figure``'s ratio in each loaded round (the rounds are interleaved, so the two
    were measured seconds apart), or None when the rounds do not pair up."""
    mine, other = ours.get("rounds") or [], theirs.get("rounds") or []
    if not mine or len(mine) != len(other) or not all(figure in r for r in (*mine, *other)):
        return None
    if not all(r[figure] for r in other):
        return None
    return [a[figure] / b[figure] for a, b in zip(mine, other, strict=True)]


def ratio_of(ours: dict[str, Any], theirs: dict[str, Any], figure: str) -> float:
    """The median of the per-round ratios: each round's targets ran back to back, so
    a slow spell of the machine between rounds cancels out (as the issue asks, "ratios
    taken within a round"); the ratio of the medians when the rounds do not pair up."""
    per_round = within_rounds(ours, theirs, figure)
    return statistics.median(per_round) if per_round else ours[figure] / theirs[figure]


def usable(measured: dict[str, Any] | None) -> bool:
    return measured is not None and "error" not in measured and "c1" in measured


def added_vs_direct(measured: dict[str, Any], direct: dict[str, Any]) -> dict[str, float]:
    """The target's figures minus direct's, in ms (p99: the difference of the two p99s)."""
    added = {"c1_p50_ms": measured["c1"]["p50_ms"] - direct["c1"]["p50_ms"],
             "c1_p99_ms": measured["c1"]["p99_ms"] - direct["c1"]["p99_ms"]}
    for level in LEVELS:
        if level in measured and level in direct:
            added[f"{level}_p50_ms"] = measured[level]["p50_ms"] - direct[level]["p50_ms"]
            added[f"{level}_p99_ms"] = measured[level]["p99_ms"] - direct[level]["p99_ms"]
    if "ttft" in measured["c1"] and "ttft" in direct["c1"]:
        added["ttft_p50_ms"] = measured["c1"]["ttft"]["p50_ms"] - direct["c1"]["ttft"]["p50_ms"]
        added["ttft_p99_ms"] = measured["c1"]["ttft"]["p99_ms"] - direct["c1"]["ttft"]["p99_ms"]
    return added


def ratios_vs(measured: dict[str, Any], bare: dict[str, Any], added: dict[str, float] | None,
              bare_added: dict[str, float] | None) -> dict[str, float]:
    """A target against a bare pass-through: requests/s ratios (higher is better), CPU per
    request and added latency ratios (lower is better), added TTFT difference (ms)."""
    out: dict[str, float] = {}
    for level in LEVELS:
        ours, theirs = measured.get(level), bare.get(level)
        if not ours or not theirs:
            continue
        out[f"rps_{level}"] = ratio_of(ours, theirs, "rps")
        if ours.get("cpu_us_per_request") and theirs.get("cpu_us_per_request"):
            out[f"cpu_per_request_{level}"] = ratio_of(ours, theirs, "cpu_us_per_request")
    if added and bare_added:
        if bare_added["c1_p50_ms"] > 0:
            out["added_c1_p50"] = added["c1_p50_ms"] / bare_added["c1_p50_ms"]
        if "ttft_p50_ms" in added and "ttft_p50_ms" in bare_added:
            out["added_ttft_p50_minus_bare_ms"] = added["ttft_p50_ms"] - bare_added["ttft_p50_ms"]
    return out


def compare(targets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``added_vs_direct``: each target minus direct; ``vs_raw_proxy`` and
    ``vs_raw_proxy_rsgi``: each target against that bare pass-through (the bare
    RSGI one against bare ASGI among them)."""
    direct = targets.get("direct")
    added: dict[str, dict[str, float]] = {}
    if direct is not None and usable(direct):
        added = {key: added_vs_direct(m, direct) for key, m in targets.items() if key != "direct" and usable(m)}
    out: dict[str, Any] = {"added_vs_direct": added}
    for bare in BARES:
        base = targets.get(bare)
        if base is None or not usable(base):
            continue
        out[f"vs_{bare}"] = {key: ratios_vs(m, base, added.get(key), added.get(bare))
                             for key, m in targets.items() if key != bare and usable(m)}
    return out


# ---------------------------------------------------------------------------- goals


@dataclass(frozen=True, slots=True)
class Reading:
    """One goal measured against one reference: the value, its bound, how to show them."""

    value: float
    bound: float
    shown: str
    target: str
    at_least: bool  # the value must be >= bound (else <=)

    def as_dict(self) -> dict[str, Any]:
        passed = self.value >= self.bound if self.at_least else self.value <= self.bound
        return {"value": self.value, "bound": self.bound, "measured": self.shown, "target": self.target,
                "pass": passed}


def _loaded(results: dict[str, Any], scenario: str, key: str) -> dict[str, Any] | None:
    measured = results.get(scenario, {}).get("targets", {}).get(key)
    return measured.get(HIGH) if measured is not None and usable(measured) else None


def _per_round(ours: dict[str, Any], theirs: dict[str, Any], figure: str) -> str:
    per_round = within_rounds(ours, theirs, figure)
    return f"rounds {', '.join(f'{r:.2f}' for r in per_round)}; " if per_round and len(per_round) > 1 else ""


def _rps_vs_bare(results: dict[str, Any], scenario: str, bare: str) -> Reading | None:
    ours, theirs = _loaded(results, scenario, "crossroads"), _loaded(results, scenario, bare)
    if ours is None or theirs is None:
        return None
    value = ratio_of(ours, theirs, "rps")
    shown = f"{value:.2f}x ({_per_round(ours, theirs, 'rps')}{ours['rps']:,.0f} / {theirs['rps']:,.0f}/s)"
    return Reading(value, RPS_VS_BARE_MIN, shown, f"≥ {RPS_VS_BARE_MIN:.2f}x", at_least=True)


def _cpu_vs_bare(results: dict[str, Any], scenario: str, bare: str) -> Reading | None:
    ours, theirs = _loaded(results, scenario, "crossroads"), _loaded(results, scenario, bare)
    if not ours or not theirs or "cpu_us_per_request" not in ours or "cpu_us_per_request" not in theirs:
        return None
    value = ratio_of(ours, theirs, "cpu_us_per_request")
    shown = (f"{value:.2f}x ({_per_round(ours, theirs, 'cpu_us_per_request')}"
             f"{ours['cpu_us_per_request']:.0f} / {theirs['cpu_us_per_request']:.0f} µs)")
    return Reading(value, CPU_VS_BARE_MAX, shown, f"≤ {CPU_VS_BARE_MAX:.2f}x", at_least=False)


def _added(results: dict[str, Any], scenario: str, key: str, figure: str) -> float | None:
    return results.get(scenario, {}).get("comparison", {}).get("added_vs_direct", {}).get(key, {}).get(figure)


def _added_p50_vs_bare(results: dict[str, Any], scenario: str, bare: str) -> Reading | None:
    ours, theirs = _added(results, scenario, "crossroads", "c1_p50_ms"), _added(results, scenario, bare, "c1_p50_ms")
    if ours is None or theirs is None:
        return None
    bound = ADDED_P50_VS_BARE_MAX * theirs
    return Reading(ours, bound, f"{ours:+.3f} ms", f"≤ {bound:+.3f} ms ({ADDED_P50_VS_BARE_MAX:.2f} x {theirs:+.3f})",
                   at_least=False)


def _ttft_vs_bare(results: dict[str, Any], scenario: str, bare: str) -> Reading | None:
    ours, theirs = _added(results, scenario, "crossroads", "ttft_p50_ms"), _added(results, scenario, bare,
                                                                                   "ttft_p50_ms")
    if ours is None or theirs is None:
        return None
    bound = theirs + TTFT_OVER_BARE_MAX_MS
    return Reading(ours, bound, f"{ours:+.3f} ms",
                   f"≤ {bound:+.3f} ms ({theirs:+.3f} + {TTFT_OVER_BARE_MAX_MS})", at_least=False)


def _translated_vs_own(passthrough: str) -> Callable[[dict[str, Any], str, str], Reading | None]:
    """Translated against Crossroads' own pass-through measured in the same rounds
    (a run before that target existed: against the pass-through scenario, minutes apart)."""
    def reading(results: dict[str, Any], scenario: str, bare: str) -> Reading | None:
        ours = _loaded(results, scenario, "crossroads")
        own = _loaded(results, scenario, OWN_PASSTHROUGH)
        apart = own is None
        if apart:
            own = _loaded(results, passthrough, "crossroads")
        if ours is None or own is None:
            return None
        value = ours["rps"] / own["rps"] if apart else ratio_of(ours, own, "rps")
        shown = f"{value:.2f}x ({'' if apart else _per_round(ours, own, 'rps')}{ours['rps']:,.0f} / {own['rps']:,.0f}/s"
        if ours.get("cpu_us_per_request") and own.get("cpu_us_per_request"):
            cpu = own["cpu_us_per_request"] / ours["cpu_us_per_request"] if apart else (
                ratio_of(own, ours, "cpu_us_per_request"))
            shown += f"; from CPU per request {cpu:.2f}x"
        if apart:
            shown += f"; {passthrough} measured minutes apart"
        else:
            other = _loaded(results, passthrough, "crossroads")
            if other is not None:
                shown += f"; {ours['rps'] / other['rps']:.2f}x against {passthrough}'s"
        return Reading(value, TRANSLATED_VS_OWN_MIN, shown + ")", f"≥ {TRANSLATED_VS_OWN_MIN:.2f}x own {passthrough}",
                       at_least=True)
    return reading


# (scenario, goal, how it is measured, whether it is measured against a bare pass-through)
GOALS: tuple[tuple[str, str, Callable[[dict[str, Any], str, str], Reading | None], bool], ...] = (
    ("passthrough", f"requests/s at c={HIGH_CONCURRENCY} vs bare", _rps_vs_bare, True),
    ("passthrough", "added p50 at c=1 vs bare's", _added_p50_vs_bare, True),
    ("passthrough", f"CPU per request at c={HIGH_CONCURRENCY} vs bare's", _cpu_vs_bare, True),
    ("passthrough_stream", f"streams/s at c={HIGH_CONCURRENCY} vs bare", _rps_vs_bare, True),
    ("passthrough_stream", "added TTFT p50 at c=1 vs bare's", _ttft_vs_bare, True),
    ("translated", f"requests/s at c={HIGH_CONCURRENCY} vs own pass-through", _translated_vs_own("passthrough"),
     False),
    ("translated_stream", f"streams/s at c={HIGH_CONCURRENCY} vs own pass-through",
     _translated_vs_own("passthrough_stream"), False),
)


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals for Crossroads, each with its measured value and verdict against
    bare ASGI and, where a bare pass-through is the reference, the same against bare RSGI."""
    found = []
    for scenario, goal, measure, against_bare in GOALS:
        primary = measure(results, scenario, BASELINE)
        check: dict[str, Any] = {"scenario": scenario, "check": goal,
                                 "against": BASELINE if against_bare else "crossroads",
                                 **(primary.as_dict() if primary else {"value": None, "measured": "-",
                                                                       "target": "-", "pass": False})}
        for bare in BARES:
            if against_bare and bare != BASELINE:
                other = measure(results, scenario, bare)
                check[f"vs_{bare}"] = other.as_dict() if other else None
        found.append(check)
    return found
