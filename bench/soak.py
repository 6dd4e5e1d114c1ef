"""Soak benchmark: minutes of mixed load with injected faults, watching the
router's memory, file descriptors and whether every request is accounted for.

    python bench/soak.py [--minutes 10] [--concurrency 16] [--output bench/soak.json]

Starts the bench upstream (bench/upstream.py, whose ``fault-*`` models answer
429 with Retry-After, 500, a stream cut after five events, or a slow first
byte) and ``crossroads serve``, then runs ``--concurrency`` clients for
``--minutes``: JSON and streaming pass-through, translated OpenAI chat ->
Anthropic Messages, fault models, and clients that hang up mid-stream. Every
10 s it samples the RSS of the router's process tree and the open file
descriptors of its processes. At the end it checks that every request got an
answer (or was abandoned by the client on purpose) and compares the router's
own usage count with the successful requests. Not a CI test: run by hand and
record the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import Children, crossroads_command, descendants, free_ports, venv_python
from scenarios import (
    ANTHROPIC_UPSTREAM_MODEL,
    BENCH_DIR,
    CLIENT_KEY,
    HOST,
    OPENAI_UPSTREAM_MODEL,
    UPSTREAM_KEY,
)

FAULTS = ("fault-429", "fault-500", "fault-cut", "fault-slow")
MANAGEMENT_KEY = "soak-management-key"


def config(upstream: int, port: int) -> str:
    base = f"http://{HOST}:{upstream}"
    faults = ", ".join(f"{{name: {f}}}" for f in FAULTS)
    return f"""\
host: {HOST}
port: {port}
api-keys: [{CLIENT_KEY}]
remote-management: {{secret-key: {MANAGEMENT_KEY}}}
request-retry: 1
max-retry-interval: 2
openai-compatibility:
  - name: soak
    base-url: {base}/v1
    api-key-entries: [{{api-key: {UPSTREAM_KEY}}}]
    models: [{{name: {OPENAI_UPSTREAM_MODEL}, alias: chat}}, {faults}]
claude-api-key:
  - api-key: {UPSTREAM_KEY}
    base-url: {base}
    models: [{{name: {ANTHROPIC_UPSTREAM_MODEL}, alias: claude}}]
"""


MIX = (("chat", False, 30), ("chat", True, 25), ("claude", False, 10), ("claude", True, 15),
       ("fault", False, 8), ("fault", True, 8), ("hangup", True, 4))


def pick(rng: random.Random) -> tuple[str, bool]:
    total = sum(weight for *_, weight in MIX)
    roll = rng.uniform(0, total)
    for model, stream, weight in MIX:
        roll -= weight
        if roll <= 0:
            return model, stream
    return "chat", False


async def client(session: aiohttp.ClientSession, url: str, deadline: float, seed: int, tally: Counter[str]) -> None:
    rng = random.Random(seed)
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"}
    while time.monotonic() < deadline:
        kind, stream = pick(rng)
        model = rng.choice(FAULTS) if kind == "fault" else "chat" if kind == "hangup" else kind
        body = orjson.dumps({"model": model, "stream": stream, "max_tokens": 50,
                             "messages": [{"role": "user", "content": f"soak {rng.random()}"}]})
        tally["sent"] += 1
        try:
            async with session.post(url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=60)) as response:
                if kind == "hangup":
                    await response.content.read(64)
                    response.close()  # the client leaves mid-stream
                    tally["abandoned by client"] += 1
                    continue
                data = await response.read()
                tally[f"status {response.status}"] += 1
                if response.status == 200 and model in ("chat", "claude"):
                    tally["succeeded"] += 1
                if stream and response.status == 200 and b"error" in data[-400:]:
                    tally["stream ended with an error event"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally[f"client error {type(exc).__name__}"] += 1


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid in descendants(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def tree_fds(root: int) -> int:
    count = 0
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{pid}/fd"))
    return count


async def sample(root: int, deadline: float, samples: list[dict[str, float]], started: float) -> None:
    while time.monotonic() < deadline:
        samples.append({"t": round(time.monotonic() - started), "rss_mb": round(tree_rss_mb(root), 1),
                        "fds": tree_fds(root)})
        await asyncio.sleep(10)


async def usage_requests(port: int) -> int:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://{HOST}:{port}/v0/management/usage", headers={"authorization": f"Bearer {MANAGEMENT_KEY}"}) as r:
        report = await r.json()
    return sum(int(row.get("requests", 0)) for name, row in report.get("by_model", {}).items()
               if name in ("chat", "claude"))


async def soak(minutes: float, concurrency: int, port: int, root: int) -> dict[str, Any]:
    tally: Counter[str] = Counter()
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    deadline = started + minutes * 60
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"http://{HOST}:{port}/v1/chat/completions"
        await asyncio.gather(sample(root, deadline, samples, started),
                             *(client(session, url, deadline, n, tally) for n in range(concurrency)))
    await asyncio.sleep(2)  # let the last usage records land
    samples.append({"t": round(time.monotonic() - started), "rss_mb": round(tree_rss_mb(root), 1),
                    "fds": tree_fds(root)})
    counted = await usage_requests(port)
    answered = sum(v for k, v in tally.items() if k.startswith("status ")) + tally["abandoned by client"]
    return {"minutes": minutes, "concurrency": concurrency, "tally": dict(tally), "samples": samples,
            "requests_answered_or_abandoned": answered, "requests_sent": tally["sent"],
            "router_usage_requests (chat+claude)": counted,
            # a client that hangs up mid-stream still used the upstream: the router records it too
            "client_successes_plus_abandoned": tally["succeeded"] + tally["abandoned by client"]}


def _soak_with(children: Children, tmp: Path, minutes: float, concurrency: int, lifetime: int) -> dict[str, Any]:
    upstream, port = free_ports(2)
    config_path = tmp / "config.yaml"
    config_path.write_text(config(upstream, port))
    children.start("upstream", [venv_python(), str(BENCH_DIR / "upstream.py"), "--port", str(upstream),
                                "--lifetime", str(lifetime)], None)
    children.start("crossroads", crossroads_command(config_path, "granian"), None, {"HOME": str(tmp)})
    children.wait_ready("upstream", upstream)
    children.wait_ready("crossroads", port)
    return asyncio.run(soak(minutes, concurrency, port, children.procs["crossroads"].pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "soak.json")
    args = parser.parse_args()
    lifetime = int(args.minutes * 60 + 120)
    with tempfile.TemporaryDirectory(prefix="crossroads-soak-") as tmp:
        children = Children(Path(tmp), lifetime)  # the children's hard stop
        try:
            result = _soak_with(children, Path(tmp), args.minutes, args.concurrency, lifetime)
        finally:
            children.stop_all()
    args.output.write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    rss = [s["rss_mb"] for s in result["samples"]]
    fds = [s["fds"] for s in result["samples"]]
    print(f"sent {result['requests_sent']}, answered or abandoned {result['requests_answered_or_abandoned']}")
    print(f"router usage {result['router_usage_requests (chat+claude)']} vs client successes + abandoned "
          f"{result['client_successes_plus_abandoned']}")
    print(f"RSS MB first/max/last: {rss[0]}/{max(rss)}/{rss[-1]}; fds first/max/last: {fds[0]}/{max(fds)}/{fds[-1]}")
    print("tally:", dict(sorted(result["tally"].items())))


if __name__ == "__main__":
    main()
