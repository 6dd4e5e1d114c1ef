"""Memory with many open streams: the RSS of a proxy while N streams are open
through it at once, against the raw pass-through proxy in the same run.

    python bench/streams.py [--streams 1000] [--idle 10000] [--seconds 20]

The bench upstream's ``hold`` model sends one chunk, idles, then ends; the
clients open ``--streams`` streams through each proxy in turn, wait until
every one has received its first chunk, read the RSS of the proxy's whole
process tree (Crossroads' server, or the raw proxy's granian main process
and worker), then let the streams finish and count errors. The same streams
are held by ``bench/floor.py`` (granian and a trivial application, no
upstream): the least a stream costs on this stack. ``--idle`` then opens
that many streams at once through Crossroads and reports how many completed
without error. The open-file limit is raised as ``serve`` raises it; each
stream holds two sockets, so where one process may not open enough of them,
the idle streams go through a second Crossroads with as many ``--workers``
as the limit asks for (the way to serve them on such a machine), and the
result says how many.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import Children, crossroads_command, crossroads_config, free_ports, venv_python
from scenarios import BENCH_DIR, CHAT_ALIAS, CLIENT_KEY, HOST, Ports
from soak import tree_rss_mb

from crossroads.serving import FILES_BESIDES_STREAMS, raise_open_file_limit

# the router, the bare pass-through, and the floor: granian holding streams itself, no upstream (bench/floor.py)
TARGETS = ("crossroads", "raw_proxy", "floor")


async def open_streams(port: int, model: str, count: int, seconds: int, root: int) -> dict[str, Any]:
    body = orjson.dumps({"model": model, "stream": True, "max_tokens": seconds,
                         "messages": [{"role": "user", "content": "hold"}]})
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"}
    opened = asyncio.Event()
    first = 0
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=seconds + 60)) as s:

        async def one() -> None:
            nonlocal first
            try:
                async with s.post(f"http://{HOST}:{port}/v1/chat/completions", data=body, headers=headers) as r:
                    if r.status != 200:
                        errors.append(f"HTTP {r.status}")
                        return
                    await r.content.readany()
                    first += 1
                    if first == count:
                        opened.set()
                    data = await r.read()
                    if b"[DONE]" not in data:
                        errors.append("no [DONE]")
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(type(exc).__name__)
                if first + len(errors) >= count:
                    opened.set()

        started = time.monotonic()
        tasks = [asyncio.create_task(one()) for _ in range(count)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.wait(), timeout=seconds + 30)
        rss = tree_rss_mb(root)
        open_after = time.monotonic() - started
        await asyncio.gather(*tasks)
    return {"streams": count, "open_at_once": first, "rss_mb_all_open": round(rss, 1),
            "seconds_to_open_all": round(open_after, 2), "errors": len(errors),
            "error_kinds": sorted(set(errors))[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "streams.json")
    args = parser.parse_args()
    limit = raise_open_file_limit()  # as serve raises it: the server's limit is the same
    result: dict[str, Any] = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "fd_soft_limit": limit}
    with tempfile.TemporaryDirectory(prefix="crossroads-streams-") as tmp:
        workdir = Path(tmp)
        children = Children(workdir, lifetime=900)
        try:
            upstream, raw, ours, floor = free_ports(4)
            ports = Ports(upstream, raw, ours)
            config = workdir / "crossroads.yaml"
            config.write_text(crossroads_config(ports).replace("gpt-4o-mini, alias", "hold, alias"))
            children.start("upstream", [venv_python(), str(BENCH_DIR / "upstream.py"), "--port", str(upstream),
                                        "--lifetime", "900"], None)
            children.start("raw_proxy", [venv_python(), str(BENCH_DIR / "rawproxy.py"), "--port", str(raw),
                                         "--lifetime", "900"], None, {"RAWPROXY_UPSTREAM": f"http://{HOST}:{upstream}"})
            children.start("crossroads", crossroads_command(config, "granian"), None, {"HOME": tmp})
            children.start("floor", [venv_python(), str(BENCH_DIR / "floor.py"), "--port", str(floor),
                                     "--lifetime", "900"], None)
            for name, port in (("upstream", upstream), ("raw_proxy", raw), ("crossroads", ours), ("floor", floor)):
                children.wait_ready(name, port)
            idle = {name: round(tree_rss_mb(children.procs[name].pid), 1) for name in TARGETS}
            result["rss_mb_idle"] = idle
            result["floor"] = asyncio.run(open_streams(floor, "hold", args.streams, args.seconds,
                                                       children.procs["floor"].pid))
            result["raw_proxy"] = asyncio.run(open_streams(raw, "hold", args.streams, args.seconds,
                                                           children.procs["raw_proxy"].pid))
            result["crossroads"] = asyncio.run(open_streams(ours, CHAT_ALIAS, args.streams, args.seconds,
                                                            children.procs["crossroads"].pid))
            for name in TARGETS:
                added = result[name]["rss_mb_all_open"] - idle[name]
                result[name]["kb_per_stream"] = round(added * 1024 / max(1, result[name]["open_at_once"]), 1)
            if args.idle:
                # two sockets a stream: past what one process may open, the streams need more workers
                workers = max(1, math.ceil((2 * args.idle + FILES_BESIDES_STREAMS) / limit))
                port, pid = ours, children.procs["crossroads"].pid
                if workers > 1:
                    port = free_ports(1)[0]
                    children.start("crossroads_workers", [*crossroads_command(config, "granian"), "--port", str(port),
                                                          "--workers", str(workers)], None, {"HOME": tmp})
                    children.wait_ready("crossroads_workers", port)
                    pid = children.procs["crossroads_workers"].pid
                result["crossroads_idle_streams"] = {
                    "workers": workers, **asyncio.run(open_streams(port, CHAT_ALIAS, args.idle, args.seconds, pid))}
            result["crossroads_processes"] = len(children.python_pids("crossroads"))  # not the timeout wrapper
        finally:
            children.stop_all()
    args.output.write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
