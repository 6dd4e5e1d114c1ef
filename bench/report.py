"""From measurements to the report: Crossroads (and every target) compared with
direct and with the bare pass-through, the goals checked, the tables printed."""

from __future__ import annotations

from typing import Any

from children import NOISY_SHARE
from scenarios import HIGH_CONCURRENCY

# Targets from the brief: added p50 at c=1 and crossroads/raw-proxy throughput at c=32.
ADDED_P50_LIMIT_MS = {"passthrough": 0.5, "translated": 1.0}
THROUGHPUT_RATIO_MIN = 0.80


def compare(targets: dict[str, dict[str, Any]], stream: bool) -> dict[str, Any]:
    """Crossroads (and the raw proxy) minus direct, and crossroads / raw proxy."""
    direct = targets.get("direct")
    high = f"c{HIGH_CONCURRENCY}"
    out: dict[str, Any] = {}
    for key in (k for k in targets if k != "direct"):
        measured = targets.get(key)
        if not direct or not measured or "error" in measured or "error" in direct:
            continue
        added = {
            "c1_p50_ms": measured["c1"]["p50_ms"] - direct["c1"]["p50_ms"],
            "c1_p99_ms": measured["c1"]["p99_ms"] - direct["c1"]["p99_ms"],
            f"{high}_p50_ms": measured[high]["p50_ms"] - direct[high]["p50_ms"],
            f"{high}_p99_ms": measured[high]["p99_ms"] - direct[high]["p99_ms"],
        }
        if stream and "ttft" in measured["c1"] and "ttft" in direct["c1"]:
            added["ttft_p50_ms"] = measured["c1"]["ttft"]["p50_ms"] - direct["c1"]["ttft"]["p50_ms"]
            added["ttft_p99_ms"] = measured["c1"]["ttft"]["p99_ms"] - direct["c1"]["ttft"]["p99_ms"]
        out[f"{key}_added_vs_direct"] = added
    raw = targets.get("raw_proxy")
    for key in (k for k in targets if k not in ("direct", "raw_proxy")):
        ours = targets[key]
        if not raw or "error" in raw or "error" in ours or high not in ours:
            continue
        out[f"{key}_vs_raw_rps_{high}"] = ours[high]["rps"] / raw[high]["rps"]
        if ours[high].get("cpu_us_per_request") and raw[high].get("cpu_us_per_request"):
            # Throughput the CPU cost alone predicts: robust to a busy machine.
            out[f"raw_vs_{key}_cpu_per_request_{high}"] = (raw[high]["cpu_us_per_request"]
                                                           / ours[high]["cpu_us_per_request"])
    return out


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The brief's targets, each with its measured value and verdict."""
    found = []
    high = f"c{HIGH_CONCURRENCY}"
    for key, scenario in results.items():
        family, stream = scenario["family"], scenario["stream"]
        added = scenario["comparison"].get("crossroads_added_vs_direct")
        limit = ADDED_P50_LIMIT_MS[family]
        metric = "ttft_p50_ms" if stream else "c1_p50_ms"
        what = "added TTFT p50 at c=1" if stream else "added p50 at c=1"
        value = added.get(metric) if added else None
        found.append({"scenario": key, "check": what, "value": value, "limit": f"<= {limit} ms",
                      "pass": value is not None and value <= limit})
        info = "" if family == "passthrough" else " (info: raw proxy does not translate)"
        ratio = scenario["comparison"].get(f"crossroads_vs_raw_rps_{high}")
        found.append({"scenario": key, "check": f"rps c={HIGH_CONCURRENCY} / raw proxy", "value": ratio,
                      "limit": f">= {THROUGHPUT_RATIO_MIN:.0%}{info}",
                      "pass": ratio is not None and ratio >= THROUGHPUT_RATIO_MIN})
        cpu_ratio = scenario["comparison"].get(f"raw_vs_crossroads_cpu_per_request_{high}")
        found.append({"scenario": key, "check": "same, estimated from CPU µs/request", "value": cpu_ratio,
                      "limit": f">= {THROUGHPUT_RATIO_MIN:.0%}{info}",
                      "pass": cpu_ratio is not None and cpu_ratio >= THROUGHPUT_RATIO_MIN})
    return found



def fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    high = f"c{HIGH_CONCURRENCY}"
    table = Table(title=f"Crossroads benchmark ({report['meta']['mode']}) — latencies in ms, "
                        "'added' = minus direct", title_justify="left")
    for column in ("scenario", "target", "c1 rps", "c1 p50", "c1 p99", "added p50", "added p99",
                   f"{high} rps", f"{high} p50", f"{high} p99", f"added {high} p50", "CPU µs/req", "rps / raw",
                   "raw/ours CPU"):
        table.add_column(column, justify="left" if column in ("scenario", "target") else "right")
    for key, scenario in report["scenarios"].items():
        comparison = scenario["comparison"]
        share = scenario["machine_noise"]["foreign_cpu_share"]
        first_cells = [key, f"[yellow]noisy: others used {share:.0%} CPU" if share > NOISY_SHARE else ""]
        for row, (name, measured) in enumerate(scenario["targets"].items()):
            first = first_cells[row] if row < len(first_cells) else ""
            if "error" in measured:
                table.add_row(first, measured["label"], f"[red]FAILED: {measured['error'][:90]}")
                continue
            added = comparison.get(f"{name}_added_vs_direct", {})
            ratio = comparison.get(f"{name}_vs_raw_rps_{high}")
            cpu_ratio = comparison.get(f"raw_vs_{name}_cpu_per_request_{high}")
            c1, cc = measured["c1"], measured[high]
            failed = sum(cc["errors"].values()) + c1["non_200"]
            table.add_row(first, measured["label"], fmt(c1["rps"], 0), fmt(c1["p50_ms"], 3),
                          fmt(c1["p99_ms"], 3), fmt(added.get("c1_p50_ms"), 3, True),
                          fmt(added.get("c1_p99_ms"), 3, True), fmt(cc["rps"], 0), fmt(cc["p50_ms"]),
                          fmt(cc["p99_ms"]), fmt(added.get(f"{high}_p50_ms"), 2, True),
                          fmt(cc.get("cpu_us_per_request"), 0),
                          ("" if ratio is None else f"{ratio:.0%}") + (f" [red]{failed} errors" if failed else ""),
                          "" if cpu_ratio is None else f"{cpu_ratio:.0%}")
        table.add_section()
    console.print(table)
    noise = report["meta"]["machine_noise"]
    if noise["foreign_cpu_share"] > NOISY_SHARE or noise["steal_share"] > NOISY_SHARE:
        console.print(f"[yellow]warning: during the run other processes used {noise['foreign_cpu_share']:.0%} "
                      f"of the machine's CPU (steal {noise['steal_share']:.0%}); numbers are disturbed — "
                      "re-run on a quiet machine")

    ttft = Table(title="Streaming: time to first SSE data chunk at c=1 (ms)", title_justify="left")
    for column in ("scenario", "target", "TTFT p50", "TTFT p99", "added p50", "added p99", "whole stream p50"):
        ttft.add_column(column, justify="left" if column in ("scenario", "target") else "right")
    for key, scenario in report["scenarios"].items():
        if not scenario["stream"]:
            continue
        for name, measured in scenario["targets"].items():
            if "error" in measured or "ttft" not in measured["c1"]:
                continue
            added = scenario["comparison"].get(f"{name}_added_vs_direct", {})
            t = measured["c1"]["ttft"]
            ttft.add_row(key, measured["label"], fmt(t["p50_ms"], 3), fmt(t["p99_ms"], 3),
                         fmt(added.get("ttft_p50_ms"), 3, True), fmt(added.get("ttft_p99_ms"), 3, True),
                         fmt(measured["c1"]["p50_ms"], 3))
    console.print(ttft)

    verdicts = Table(title="Targets", title_justify="left")
    for column in ("scenario", "check", "measured", "target", "verdict"):
        verdicts.add_column(column)
    for check in report["checks"]:
        value = check["value"]
        shown = "-" if value is None else (f"{value:+.3f} ms" if "added" in check["check"] else f"{value:.0%}")
        verdict = "[green]PASS" if check["pass"] else "[red]FAIL"
        verdicts.add_row(check["scenario"], check["check"], shown, check["limit"], verdict)
    console.print(verdicts)

    for key, profile in report.get("profile", {}).items():
        if "skipped" in profile:
            console.print(f"profile {key}: skipped ({profile['skipped']})")
            continue
        top = Table(title=f"py-spy, {key} under wrk c={HIGH_CONCURRENCY}: "
                          f"{profile['samples']} samples", title_justify="left")
        top.add_column("self %", justify="right")
        top.add_column("function (self time)")
        top.add_column("incl %", justify="right")
        top.add_column("own code (inclusive)")
        for own, incl in zip(profile["self"], profile["inclusive"], strict=False):
            top.add_row(f"{own['percent']:.1f}", own["function"], f"{incl['percent']:.1f}", incl["function"])
        console.print(top)

