"""Crossroads benchmark: overhead vs direct, throughput vs two bare pass-throughs.

    python bench/run.py [--quick | --smoke] [--peers auto|none|LIST] [--profile SECONDS]
                        [--output bench/results.json] [--markdown PATH]

Starts the fake upstream (bench/upstream.py), the bare pass-through proxy
(bench/rawproxy.py) twice, on granian's ASGI and on its native RSGI interface,
``crossroads serve`` and any installed peer gateways as subprocesses, pinned
with taskset (upstream + load generator on CPU0, proxies on CPU1), then
measures, in one run, each scenario against the upstream directly, through
both bare pass-throughs, through crossroads and through the peers:

- c=1: a sequential Python client over one keep-alive connection (raw socket,
  so the client adds almost nothing); latency percentiles, requests/s and,
  for streams, time to first SSE ``data:`` chunk.
- c=32 and c=64: ``wrk`` (one thread, Lua script for the POST body);
  requests/s, latency percentiles and the serving process tree's CPU time per
  request. Without wrk, an aiohttp load generator.

Then it checks the issue's goals (bench/README.md) and prints a summary table
(also written as Markdown with ``--markdown``). Every loop is bounded in count
and time; every subprocess runs under ``timeout`` and is killed at the end,
even on error. Loopback only. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from children import (
    NOISY_SHARE,
    Children,
    CpuSnapshot,
    free_ports,
    pinning_available,
    raise_priority,
    start_all,
    tree_jiffies,
    wait_for_quiet,
    wait_until_idle,
)
from goals import checks, compare
from load import TargetFailed, run_concurrent, sequential, validate
from peers import PEERS
from profiling import profile_server
from report import print_report, write_markdown
from scenarios import (
    BENCH_DIR,
    CONCURRENCY,
    OWN_PASSTHROUGH,
    Ports,
    Scenario,
    Target,
    build_scenarios,
    short_name,
)


@dataclass(frozen=True, slots=True)
class Budget:
    warmup_s: float  # c=1, per target
    c1_seconds: float  # c=1, per target
    c1_max_requests: int
    loaded_seconds: int  # wrk, per round, concurrency level and target
    loaded_rounds: int

    def estimate_s(self, targets: int, scenarios: int) -> float:
        """How long the measurements take, roughly (wrk start-up and validation included)."""
        loaded = self.loaded_rounds * len(CONCURRENCY) * (self.loaded_seconds + 0.3)
        return scenarios * targets * (self.warmup_s + self.c1_seconds + loaded)

    def as_dict(self) -> dict[str, Any]:
        return {"warmup_s": self.warmup_s, "c1_seconds": self.c1_seconds, "c1_max_requests": self.c1_max_requests,
                "loaded_seconds": self.loaded_seconds, "loaded_rounds": self.loaded_rounds,
                "concurrency": list(CONCURRENCY)}


# five rounds: on a shared machine one round in three or four can be disturbed, and the
# median of five ratios still comes from undisturbed ones
FULL = Budget(warmup_s=1.0, c1_seconds=2.5, c1_max_requests=20_000, loaded_seconds=2, loaded_rounds=5)
QUICK = Budget(warmup_s=0.25, c1_seconds=0.75, c1_max_requests=5_000, loaded_seconds=2, loaded_rounds=1)
# that everything runs and answers correctly, in well under a minute: for CI, never for figures
SMOKE = Budget(warmup_s=0.05, c1_seconds=0.1, c1_max_requests=100, loaded_seconds=1, loaded_rounds=1)

# Which subprocess serves each target (whose CPU time a request costs); a peer's is its own key.
SERVER_OF = {"direct": "upstream", "raw_proxy": "raw_proxy", "raw_proxy_rsgi": "raw_proxy_rsgi",
             "crossroads": "crossroads", OWN_PASSTHROUGH: "crossroads"}


def measure_loaded(target: Target, connections: int, budget: Budget, workdir: Path, pin: list[str],
                   server_pid: int | None) -> dict[str, Any]:
    """One loaded round, plus the serving process tree's CPU time per request:
    a figure that a busy machine disturbs much less than requests/s."""
    wait_until_idle()
    before = tree_jiffies(server_pid) if server_pid else 0
    result = run_concurrent(target, connections, budget.loaded_seconds, workdir, pin)
    if server_pid and result["requests"]:
        spent = (tree_jiffies(server_pid) - before) / os.sysconf("SC_CLK_TCK")
        result["cpu_us_per_request"] = spent * 1e6 / result["requests"]
    return result


def measure_scenario(scenario: Scenario, budget: Budget, workdir: Path, pin: list[str],
                     progress: Callable[[str], None], server_pids: dict[str, int]) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    live: list[Target] = []
    for target in scenario.targets:
        targets[target.key] = {"label": target.label, "name": short_name(target.key), "url": target.url}
        try:
            targets[target.key]["reply_bytes"] = validate(target)
            live.append(target)
        except TargetFailed as exc:
            targets[target.key]["error"] = str(exc)
            progress(f"  {target.label} failed: {str(exc)[:300]}")
    progress(f"  c=1, interleaved: {', '.join(t.label for t in live)}")
    sequential(live, budget.warmup_s, budget.c1_max_requests)  # warm pools, caches, lazy imports
    for key, samples in sequential(live, budget.c1_seconds, budget.c1_max_requests).items():
        targets[key]["c1"] = samples.summary()
    levels = " and ".join(f"c={n}" for n in CONCURRENCY)
    progress(f"  {levels}, {budget.loaded_rounds} interleaved round(s) of {budget.loaded_seconds}s")
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for number in range(budget.loaded_rounds):
        for index, connections in enumerate(CONCURRENCY):
            # forward, then backward: a slow spell of the machine hits every target alike
            for target in live if (number + index) % 2 == 0 else live[::-1]:
                if "error" in targets[target.key]:
                    continue
                server_pid = server_pids.get(SERVER_OF.get(target.key, target.key))
                try:
                    measured = measure_loaded(target, connections, budget, workdir, pin, server_pid)
                except TargetFailed as exc:
                    targets[target.key]["error"] = str(exc)
                    progress(f"  {target.label} failed at c={connections}: {str(exc)[:300]}")
                    continue
                rounds.setdefault((target.key, connections), []).append(measured)
    for (key, connections), measured_rounds in rounds.items():
        if "error" not in targets[key]:
            targets[key][f"c{connections}"] = merge_rounds(measured_rounds)
    return targets


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the rounds (robust to one disturbed round)."""
    merged: dict[str, Any] = {"method": f"{rounds[0]['method']}, median of {len(rounds)} round(s)",
                              "requests": sum(r["requests"] for r in rounds),
                              "seconds": round(sum(r["seconds"] for r in rounds), 3)}
    for figure in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "cpu_us_per_request"):
        if all(figure in r for r in rounds):
            merged[figure] = statistics.median(r[figure] for r in rounds)
    errors: Counter[str] = Counter()
    for r in rounds:
        errors.update(r["errors"])
    merged["errors"] = dict(errors)
    merged["rounds"] = [{k: r[k] for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request") if k in r} for r in rounds]
    return merged



def measure_all(scenarios: list[Scenario], budget: Budget, workdir: Path, pin: list[str],
                progress: Callable[[str], None], server_pids: dict[str, int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in scenarios:
        progress(f"{scenario.key}: {scenario.title}")
        before = CpuSnapshot.take()
        targets = measure_scenario(scenario, budget, workdir, pin, progress, server_pids)
        noise = CpuSnapshot.take().since(before)
        if noise["foreign_cpu_share"] > NOISY_SHARE:
            progress(f"  warning: other processes used {noise['foreign_cpu_share']:.0%} of the machine meanwhile")
        results[scenario.key] = {"title": scenario.title, "family": scenario.family, "stream": scenario.stream,
                                 "targets": targets, "comparison": compare(targets),
                                 "machine_noise": noise}
    return results


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Abort the whole run (and so kill every child) if it overruns."""
    def overrun(signum: int, frame: Any) -> None:
        raise TimeoutError(f"benchmark exceeded its {seconds}s budget")

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGALRM, overrun)
    previous_term = signal.signal(signal.SIGTERM, terminated)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGTERM, previous_term)


def machine_facts(pinned: bool, boosted: bool, server: str, interface: str) -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "pinned": pinned, "nice_minus_10": boosted,
            "placement": "upstream + load generator on CPU0, proxies on CPU1" if pinned else "not pinned",
            "crossroads_server": server if server == "uvicorn" else f"{server} ({interface})",
            "load_generator": "wrk" if shutil.which("wrk") else "aiohttp"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about a minute and a half)")
    parser.add_argument("--smoke", action="store_true",
                        help="only check that every target runs and answers (CI); the figures mean nothing")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="also sample each proxy with py-spy under c=32 load, per scenario")
    parser.add_argument("--server", default="granian", choices=("granian", "uvicorn"),
                        help="server crossroads runs on")
    parser.add_argument("--interface", default="rsgi", choices=("rsgi", "asgi"),
                        help="granian interface crossroads runs on (uvicorn speaks ASGI)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to leave the CPUs alone")
    parser.add_argument("--peers", default="auto", metavar="LIST",
                        help="peer gateways to measure too: auto (those installed by bench/peers/setup.sh), "
                             "none, or a comma-separated list of " + ", ".join(PEERS))
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument("--markdown", type=Path, metavar="PATH",
                        help="also write the summary and the goals as Markdown tables (for the README)")
    return parser.parse_args()


def chosen_peers(spec: str, progress: Callable[[str], None]) -> list[str]:
    if spec == "none":
        return []
    wanted = list(PEERS) if spec == "auto" else [p.strip() for p in spec.split(",") if p.strip()]
    chosen = []
    for key in wanted:
        if key not in PEERS:
            raise SystemExit(f"unknown peer {key!r}; known: {', '.join(PEERS)}")
        missing = PEERS[key].missing()
        if missing is None:
            chosen.append(key)
        elif spec != "auto":
            raise SystemExit(f"peer {key}: {missing}")
        else:
            progress(f"peer {key} skipped: {missing}")
    return chosen


def main() -> int:
    args = parse_args()
    budget = SMOKE if args.smoke else QUICK if args.quick else FULL
    pinned = pinning_available() and not args.no_pin
    if pinned:
        os.sched_setaffinity(0, {0})  # this process is the c=1 load generator
    pin = ["taskset", "-c", "0"] if pinned else []
    workdir = Path(tempfile.mkdtemp(prefix="crossroads-bench-"))
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    peers = chosen_peers(args.peers, progress)
    upstream_port, raw_port, rsgi_port, crossroads_port, *peer_ports = free_ports(4 + len(peers))
    ports = Ports(upstream=upstream_port, raw_proxy=raw_port, crossroads=crossroads_port, raw_proxy_rsgi=rsgi_port,
                  peers=dict(zip(peers, peer_ports, strict=True)))
    scenarios = build_scenarios(ports)
    overall = int(1.5 * budget.estimate_s(len(scenarios[0].targets), len(scenarios)) + 60 + 120 * len(peers)
                  + (2 * len(scenarios) * (args.profile + 5) if args.profile else 0))
    children = Children(workdir, lifetime=overall + 60)

    boosted = raise_priority()
    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet, progress)
    waited = time.monotonic() - started
    profile: dict[str, Any] = {}
    run_start = CpuSnapshot.take()
    try:
        with time_limit(overall):
            progress(f"starting upstream :{ports.upstream}, bare ASGI :{ports.raw_proxy}, "
                     f"bare RSGI :{ports.raw_proxy_rsgi}, crossroads :{ports.crossroads} (logs in {workdir})")
            start_all(children, ports, workdir, pinned, args.server, args.interface)
            server_pids = {name: proc.pid for name, proc in children.procs.items()}
            results = measure_all(scenarios, budget, workdir, pin, progress, server_pids)
            run_noise = CpuSnapshot.take().since(run_start)
            if args.profile:
                for scenario in scenarios:
                    for target in scenario.targets[1:]:
                        if "error" in results[scenario.key]["targets"][target.key]:
                            continue
                        progress(f"profiling {target.key} on {scenario.key} for {args.profile}s ...")
                        profile[f"{target.key}, {scenario.key}"] = profile_server(
                            children, target.key, target, args.profile, workdir, pin)
    except BaseException:
        print(f"benchmark aborted; subprocess logs kept in {workdir}", file=sys.stderr)
        for name in children.procs:
            print(f"--- {name} log tail:\n{children.log_tail(name)}", file=sys.stderr)
        raise
    finally:
        children.stop_all()
    report: dict[str, Any] = {
        "meta": {"mode": "smoke" if args.smoke else "quick" if args.quick else "full",
                 "date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "budget": budget.as_dict(),
                 "wall_seconds": round(time.monotonic() - started - waited, 1),
                 "waited_for_quiet_seconds": round(waited, 1), "machine_noise": run_noise,
                 **machine_facts(pinned, boosted, args.server, args.interface)},
        "scenarios": results,
        "checks": checks(results),
        "profile": profile,
    }
    args.output.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print_report(report)
    if args.markdown:
        write_markdown(report, args.markdown)
        print(f"Markdown tables written to {args.markdown}", file=sys.stderr)
    print(f"results written to {args.output}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

