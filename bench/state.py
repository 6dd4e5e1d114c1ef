"""What shared state costs on the hot path: in-process vs Redis.

Starts a throw-away redis-server on loopback (or uses --url) and prints:
- ns per account pick with cooldowns in memory vs mirrored from Redis (must match:
  selection reads only the local copy);
- us per admission of a rate-limited client key (memory vs one Lua call) and of
  a key without limits (no Redis call);
- ns per usage record (Redis writes are batched in the background) and how many
  pipelined flushes a burst needed;
- ms for a cooldown set on one replica to reach another (pub/sub).

    python bench/state.py [--url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from crossroads import config, ir
from crossroads.access.policy import Limiter, parse_key
from crossroads.routing.health import Health
from crossroads.routing.registry import Registry
from crossroads.routing.selection import RoundRobin, Selector
from crossroads.snapshot import preview
from crossroads.state import MemoryState, State
from crossroads.state.redis import RedisState
from crossroads.usage import Ledger

ACCOUNTS = 1_000
PICKS = 20_000
ADMISSIONS = 2_000
RECORDS = 20_000


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (scripts/setup.d/40-redis.sh); or pass --url")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                                 "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait()


def registry() -> Registry:
    keys = "\n".join(f"      - api-key: k{i}" for i in range(ACCOUNTS))
    return preview(config.parse(f"""
openai-compatibility:
  - name: pool
    base-url: http://127.0.0.1:9/v1
    api-key-entries:
{keys}
    models: [{{name: up, alias: m}}]
""")).registry


async def pick_ns(state: State, writer: State) -> float:
    pool = registry().pool("m")
    assert pool is not None
    for cand in pool.candidates[:3]:  # cooldowns written by (possibly) another replica
        Health(state=writer).record_failure(cand.account.id, "up", ir.Error(429, "rate_limit", "x", retry_after=600))
    deadline = time.monotonic() + 2
    while len(state.cooldowns) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    selector = Selector(Health(state=state), RoundRobin())
    start = time.perf_counter_ns()
    for _ in range(PICKS):
        next(selector.candidates(pool))
    return (time.perf_counter_ns() - start) / PICKS


async def admit_us(state: State, key: str) -> float:
    limiter = Limiter({"limited": parse_key({"key": "limited", "rpm": 10**9}, "bench")}, state)
    start = time.perf_counter_ns()
    for _ in range(ADMISSIONS):
        await limiter.acquire(key, "m")
    return (time.perf_counter_ns() - start) / ADMISSIONS / 1000


async def record_ns(state: State) -> float:
    ledger = Ledger(state=state)
    usage = ir.Usage(input_tokens=10, output_tokens=5)
    start = time.perf_counter_ns()
    for i in range(RECORDS):
        ledger.record("client-key-0001", f"acct{i % 10}", "m", usage)
        if i % 100 == 99:
            await asyncio.sleep(0)  # requests yield to the loop; the flush runs here
    return (time.perf_counter_ns() - start) / RECORDS


async def propagation_ms(a: RedisState, b: RedisState) -> float:
    samples = []
    for i in range(200):
        start = time.perf_counter()
        Health(state=a).record_failure(f"p{i}", "m", ir.Error(429, "rate_limit", "x", retry_after=60))
        while (f"p{i}", "m") not in b.cooldowns:
            await asyncio.sleep(0)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def run(url: str) -> None:
    prefix = f"bench{time.time_ns()}"
    a, b = RedisState(url, prefix), RedisState(url, prefix)
    await a.start()
    await b.start()
    memory = MemoryState()
    try:
        print(f"pick, {ACCOUNTS:,} accounts, 3 cooling   memory {await pick_ns(memory, memory):8.0f} ns"
              f"   redis {await pick_ns(b, a):8.0f} ns (cooldowns from the other replica)")
        print(f"admit, key with rpm           memory {await admit_us(MemoryState(), 'limited'):8.2f} us"
              f"   redis {await admit_us(a, 'limited'):8.2f} us (one Lua call)")
        print(f"admit, key without limits     memory {await admit_us(MemoryState(), 'open'):8.2f} us"
              f"   redis {await admit_us(a, 'open'):8.2f} us (no Redis call)")
        flushes = 0
        original = a._flush_usage

        async def counted() -> None:
            nonlocal flushes
            flushes += 1
            await original()

        a._flush_usage = counted  # type: ignore[method-assign]
        memory_record = await record_ns(MemoryState())
        redis_record = await record_ns(a)
        await asyncio.sleep(0.1)
        print(f"usage record                  memory {memory_record:8.0f} ns   redis {redis_record:8.0f} ns"
              f" ({RECORDS:,} records in {flushes} pipelined flushes)")
        print(f"cooldown A -> B (pub/sub)     median {await propagation_ms(a, b):.3f} ms")
    finally:
        await a.close()
        await b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an existing Redis (default: start redis-server on a free port)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url))
        return
    with redis_server() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
