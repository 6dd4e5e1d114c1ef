"""The report: what was measured (per scenario and target), the summary the
issue asks for (one row per target), the goals with their verdicts and any
profiles, printed with rich; the summary and the goals also as Markdown."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import orjson
from children import NOISY_SHARE
from goals import HIGH, LEVELS, usable
from scenarios import BARES, BASELINE, BENCH_DIR, HIGH_CONCURRENCY, NAMES, OWN_PASSTHROUGH, ROOT, short_name

STREAMS_JSON = BENCH_DIR / "streams.json"
# The summary's sections: (title, JSON scenario, SSE scenario).
SECTIONS = (("pass-through", "passthrough", "passthrough_stream"),
            ("translated", "translated", "translated_stream"))
BASE = NAMES[BASELINE]
SUMMARY_COLUMNS = ("scenario", "target", "added p50 c=1", "added p99 c=1", f"req/s c={LEVELS[0][1:]}",
                   f"x {BASE}", f"req/s c={LEVELS[-1][1:]}", f"x {BASE}", f"SSE streams/s c={HIGH_CONCURRENCY}",
                   f"x {BASE}", "TTFT added p50", "CPU µs/request", "CPU µs/stream", "RSS, 1,000 streams")


def fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


# ---------------------------------------------------------------------------- summary


def streams_rss() -> tuple[dict[str, str], str] | None:
    """RSS with 1,000 open streams from bench/streams.json (bench/streams.py), if present:
    per target key, and the date it was measured."""
    if not STREAMS_JSON.exists():
        return None
    try:
        data = orjson.loads(STREAMS_JSON.read_bytes())
    except orjson.JSONDecodeError:
        return None
    date = data.get("date") or _committed(STREAMS_JSON) or datetime.date.fromtimestamp(
        STREAMS_JSON.stat().st_mtime).isoformat()
    found = {key: f"{data[key]['rss_mb_all_open']:,.0f} MB" for key in ("raw_proxy", "crossroads")
             if isinstance(data.get(key), dict) and "rss_mb_all_open" in data[key]}
    return found, str(date)[:10]


def _committed(path: Path) -> str | None:
    """The date of the commit that last changed a file (a checkout resets its mtime)."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%cs", "--", str(path)],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def summary_rows(report: dict[str, Any]) -> list[list[list[str]]]:
    """One section per family, one row per target: the pass-through (or translated)
    JSON scenario's latency, requests/s and CPU, and its SSE scenario's streams/s,
    TTFT and CPU. Ratios are to bare ASGI at the same concurrency."""
    rss = streams_rss()
    sections = []
    for title, json_key, sse_key in SECTIONS:
        json_s = report["scenarios"].get(json_key, {"targets": {}, "comparison": {}})
        sse_s = report["scenarios"].get(sse_key, {"targets": {}, "comparison": {}})
        # the own pass-through in the translated rounds is there for the goal's ratio only
        keys = [key for key in dict.fromkeys([*json_s["targets"], *sse_s["targets"]]) if key != OWN_PASSTHROUGH]
        rows: list[list[str]] = []
        for key in keys:
            name = short_name(key)
            cells = [title if not rows else "", f"**{name}**" if key == "crossroads" else name]
            cells += _json_cells(json_s, key) + _sse_cells(sse_s, key)
            cells += [_cpu(json_s, key), _cpu(sse_s, key)]
            cells.append(rss[0].get(key, "") if rss and json_key == "passthrough" else "")
            rows.append(cells)
        sections.append(rows)
    return sections


def _ratio_to_base(scenario: dict[str, Any], key: str, level: str) -> str:
    if key == BASELINE:
        return "1.00x"
    return ratio(scenario["comparison"].get(f"vs_{BASELINE}", {}).get(key, {}).get(f"rps_{level}"))


def _json_cells(scenario: dict[str, Any], key: str) -> list[str]:
    measured = scenario["targets"].get(key)
    if measured is None:
        return [""] * 6
    if not usable(measured):
        return ["FAILED"] + [""] * 5
    added = scenario["comparison"].get("added_vs_direct", {}).get(key, {})
    reference = key == "direct"
    cells = ["—" if reference else fmt(added.get("c1_p50_ms"), 3, True),
             "—" if reference else fmt(added.get("c1_p99_ms"), 3, True)]
    for level in (LEVELS[0], LEVELS[-1]):
        cells += [fmt(measured.get(level, {}).get("rps"), 0), _ratio_to_base(scenario, key, level)]
    return cells


def _sse_cells(scenario: dict[str, Any], key: str) -> list[str]:
    measured = scenario["targets"].get(key)
    if measured is None:
        return [""] * 3
    if not usable(measured):
        return ["FAILED", "", ""]
    added = scenario["comparison"].get("added_vs_direct", {}).get(key, {})
    return [fmt(measured.get(HIGH, {}).get("rps"), 0), _ratio_to_base(scenario, key, HIGH),
            "—" if key == "direct" else fmt(added.get("ttft_p50_ms"), 3, True)]


def _cpu(scenario: dict[str, Any], key: str) -> str:
    measured = scenario["targets"].get(key)
    if measured is None or not usable(measured):
        return ""
    return fmt(measured.get(HIGH, {}).get("cpu_us_per_request"), 0)


def summary_notes(report: dict[str, Any]) -> list[str]:
    meta = report["meta"]
    notes = [f"{meta['mode']} run of {meta['date']}: {meta['cpus']} CPUs, {meta['placement']}; crossroads on "
             f"{meta['crossroads_server']}; load generator {meta['load_generator']}. Added = minus direct, "
             f"at c=1 (ms; p99: difference of the p99s). x = ratio to {BASE} at the same concurrency. CPU µs: "
             f"the serving process tree's CPU time per request (stream) at c={HIGH_CONCURRENCY}.",
             "In the translated rows, direct and the bare pass-throughs send the Anthropic body to the upstream "
             "untranslated: they show what one hop costs, not what translation does."]
    rss = streams_rss()
    if rss:
        notes.append(f"RSS: the process tree with 1,000 SSE streams open at once, from bench/streams.json "
                     f"of {rss[1]} (bench/streams.py; {BASE} and Crossroads only; not measured in this run).")
    noise = meta["machine_noise"]
    if noise["foreign_cpu_share"] > NOISY_SHARE or noise["steal_share"] > NOISY_SHARE:
        notes.append(f"Warning: other processes used {noise['foreign_cpu_share']:.0%} of the machine's CPU "
                     f"during the run (steal {noise['steal_share']:.0%}); the numbers are disturbed.")
    return notes


def goal_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for check in report["checks"]:
        verdict = "PASS" if check["pass"] else "FAIL"
        cells = [check["scenario"], check["check"], check["measured"], check["target"], verdict]
        for bare in BARES:
            if bare == BASELINE:
                continue
            other = check.get(f"vs_{bare}")
            cells += ([other["measured"], other["target"], "pass" if other["pass"] else "fail"] if other
                      else ["", "", ""])
        rows.append(cells)
    return rows


GOAL_COLUMNS = ("scenario", "goal", f"measured (vs {BASE})", "target", "verdict",
                *(c for bare in BARES if bare != BASELINE
                  for c in (f"vs {NAMES[bare]}: measured", "target", "verdict")))


# ---------------------------------------------------------------------------- printing


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220)
    table = Table(title=f"Measured ({report['meta']['mode']}): latencies in ms, requests/s (streams/s), "
                        "CPU µs per request", title_justify="left")
    columns = ["scenario", "target", "c1 rps", "c1 p50", "c1 p99", "TTFT p50", "TTFT p99"]
    for level in LEVELS:
        columns += [f"{level} rps", f"{level} p50", f"{level} p99"]
    columns += [f"CPU µs {level}" for level in LEVELS]
    for column in columns:
        table.add_column(column, justify="left" if column in ("scenario", "target") else "right")
    for key, scenario in report["scenarios"].items():
        share = scenario["machine_noise"]["foreign_cpu_share"]
        first_cells = [key, f"[yellow]noisy: others used {share:.0%} CPU" if share > NOISY_SHARE else ""]
        for row, measured in enumerate(scenario["targets"].values()):
            first = first_cells[row] if row < len(first_cells) else ""
            if not usable(measured):
                table.add_row(first, measured["label"], f"[red]FAILED: {measured.get('error', '?')[:120]}")
                continue
            c1 = measured["c1"]
            ttft = c1.get("ttft", {})
            cells = [fmt(c1["rps"], 0), fmt(c1["p50_ms"], 3), fmt(c1["p99_ms"], 3), fmt(ttft.get("p50_ms"), 3),
                     fmt(ttft.get("p99_ms"), 3)]
            failed = c1["non_200"]
            for level in LEVELS:
                loaded = measured.get(level, {})
                failed += sum(loaded.get("errors", {}).values())
                cells += [fmt(loaded.get("rps"), 0), fmt(loaded.get("p50_ms")), fmt(loaded.get("p99_ms"))]
            cells += [fmt(measured.get(level, {}).get("cpu_us_per_request"), 0) for level in LEVELS]
            label = measured["label"] + (f" [red]{failed} errors" if failed else "")
            table.add_row(first, label, *cells)
        table.add_section()
    console.print(table)

    summary = Table(title=f"Summary (ratios: to {BASE})", title_justify="left")
    for column in SUMMARY_COLUMNS:
        summary.add_column(column, justify="left" if column in ("scenario", "target") else "right")
    for rows in summary_rows(report):
        for cells in rows:
            summary.add_row(*(c.replace("**", "") for c in cells),
                            style="bold" if cells[1].startswith("**") else None)
        summary.add_section()
    console.print(summary)
    for note in summary_notes(report):
        console.print(note, style="yellow" if note.startswith("Warning") else "dim")

    verdicts = Table(title="Targets (the issue's goals for Crossroads)", title_justify="left")
    for column in GOAL_COLUMNS:
        verdicts.add_column(column)
    for cells in goal_rows(report):
        colour = {"PASS": "[green]", "FAIL": "[red]", "pass": "[dim green]", "fail": "[dim red]"}
        verdicts.add_row(*(colour.get(c, "") + c for c in cells))
    console.print(verdicts)
    print_profiles(console, report.get("profile", {}))


def print_profiles(console: Any, profiles: dict[str, Any]) -> None:
    from rich.table import Table

    for key, profile in profiles.items():
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


# ---------------------------------------------------------------------------- markdown


def markdown_table(columns: tuple[str, ...], rows: list[list[str]], text_columns: int) -> list[str]:
    """A Markdown table whose first ``text_columns`` columns are left-aligned, the rest right-aligned."""
    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(c.strip().replace("|", "\\|") for c in cells) + " |"

    aligned = ["---" if n < text_columns else "---:" for n in range(len(columns))]
    return [line(columns), "|" + "|".join(aligned) + "|", *map(line, rows)]


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """The summary and the goals as Markdown, for pasting into the README."""
    lines = [f"<!-- bench/run.py --markdown: {report['meta']['mode']} run of {report['meta']['date']} -->", ""]
    lines += markdown_table(SUMMARY_COLUMNS, [row for rows in summary_rows(report) for row in rows], 2)
    lines += [""] + [note + "\n" for note in summary_notes(report)]
    lines += markdown_table(GOAL_COLUMNS, goal_rows(report), len(GOAL_COLUMNS))
    path.write_text("\n".join(lines).rstrip() + "\n")
