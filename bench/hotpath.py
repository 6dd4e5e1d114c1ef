"""Where a request's CPU goes, in-process: the Crossroads application and the
bare pass-through (bench/rawproxy.py) driven through ASGI directly (or, with
``--interface rsgi``, through granian's RSGI calls), with no HTTP server in
front, against the fake upstream (bench/upstream.py) in a child process.
What is left is the two applications' own Python, so the difference is
exactly what Crossroads adds on the hot path.

    python bench/hotpath.py [json|sse|translated|translated_sse] [-n 3000] [-c 8] [--interface rsgi]
                            [--log-level warning] [--profile]

It prints CPU microseconds per request for both and, with ``--profile``, the
functions of ours (and of the libraries under them) that cost the most, by
own and by inclusive time (cProfile). Not a benchmark of record: bench/run.py
is; this tells where to look.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from children import crossroads_config  # noqa: E402 (the bench directory is not a package)
from scenarios import (  # noqa: E402
    CHAT_ALIAS,
    CLAUDE_ALIAS,
    CLIENT_KEY,
    OPENAI_UPSTREAM_MODEL,
    UPSTREAM_KEY,
    Ports,
    chat_body,
    messages_body,
)

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
CHAT = "/v1/chat/completions"
# name -> (Crossroads' path and body, the bare pass-through's path and body): as bench/run.py pairs them,
# the translated scenarios' bare proxy forwards the already-Anthropic body
SCENARIOS = {
    "json": ((CHAT, chat_body(CHAT_ALIAS, False)), (CHAT, chat_body(OPENAI_UPSTREAM_MODEL, False))),
    "sse": ((CHAT, chat_body(CHAT_ALIAS, True)), (CHAT, chat_body(OPENAI_UPSTREAM_MODEL, True))),
    "translated": ((CHAT, chat_body(CLAUDE_ALIAS, False)), ("/v1/messages", messages_body(False))),
    "translated_sse": ((CHAT, chat_body(CLAUDE_ALIAS, True)), ("/v1/messages", messages_body(True))),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _headers(body: bytes) -> dict[str, str]:
    """What the client sends, in either interface's form."""
    return {"host": "127.0.0.1", "content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}",
            "x-api-key": UPSTREAM_KEY, "anthropic-version": "2023-06-01", "content-length": str(len(body))}


def _scope(path: str, body: bytes) -> dict[str, Any]:
    headers = [(name.encode(), value.encode()) for name, value in _headers(body).items()]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


async def _one(app: Asgi, path: str, body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path, body), receive, send)
    return status


class _RsgiScope:
    proto = "http"
    method = "POST"
    http_version = "1.1"
    scheme = "http"
    query_string = ""
    client = "127.0.0.1:50000"
    server = "127.0.0.1:8000"

    def __init__(self, path: str, body: bytes) -> None:
        self.path = path
        self.headers = _headers(body)  # granian's header map reads as a dict does


class _RsgiStream:
    __slots__ = ()

    async def send_bytes(self, data: bytes) -> None:
        pass

    async def send_str(self, data: str) -> None:
        pass


class _RsgiProtocol:
    """What an RSGI application is handed: the body in one call, a reply in one."""

    __slots__ = ("body", "status")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status = 0

    async def __call__(self) -> bytes:
        return self.body

    async def client_disconnect(self) -> None:
        await asyncio.sleep(3600)  # the client stays

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.status = status

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> _RsgiStream:
        self.status = status
        return _RsgiStream()


async def _one_rsgi(app: Any, path: str, body: bytes) -> int:
    protocol = _RsgiProtocol(body)
    await app.__rsgi__(_RsgiScope(path, body), protocol)
    return protocol.status


async def _drive(app: Any, path: str, body: bytes, count: int, concurrency: int) -> list[int]:
    statuses: list[int] = []
    one = _one_rsgi if hasattr(app, "__rsgi__") else _one

    async def worker(share: int) -> None:
        for _ in range(share):
            statuses.append(await one(app, path, body))

    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    return statuses


async def _lifespan(app: Asgi, phase: str) -> None:
    messages = asyncio.Queue[dict[str, Any]]()
    await messages.put({"type": f"lifespan.{phase}"})
    done = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].endswith(("complete", "failed")):
            done.set()

    async def receive() -> dict[str, Any]:
        return await messages.get()

    task = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
    await done.wait()
    if phase == "shutdown":
        await task
    else:
        task.cancel()  # the next phase is run by a new call, reading its own queue


async def _measure(name: str, app: Any, path: str, body: bytes, count: int, concurrency: int,
                   profile: cProfile.Profile | None) -> float:
    statuses = await _drive(app, path, body, min(count, 200), concurrency)  # warm: pools, caches
    if set(statuses) != {200}:
        raise SystemExit(f"{name}: warm-up answered {sorted(set(statuses))}")
    if profile is not None:
        profile.enable()
    started = time.process_time()
    statuses = await _drive(app, path, body, count, concurrency)
    spent = time.process_time() - started
    if profile is not None:
        profile.disable()
    if set(statuses) != {200}:
        raise SystemExit(f"{name}: answered {sorted(set(statuses))}")
    return spent / len(statuses) * 1e6


def _print_profile(profile: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profile)
    for order in ("tottime", "cumulative"):
        print(f"\n--- top {top} by {order}")
        stats.sort_stats(order).print_stats(top)


async def main_async(args: argparse.Namespace) -> None:
    (path, body), (raw_path, raw_body) = SCENARIOS[args.scenario]
    ports = Ports(upstream=_free_port(), raw_proxy=0, crossroads=0)
    pinned = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
    upstream = subprocess.Popen([sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(ports.upstream),
                                 "--lifetime", "600"],
                                preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pinned else None)
    if pinned:  # the upstream on one core, the applications measured on the other
        os.sched_setaffinity(0, {1})
    home = tempfile.mkdtemp(prefix="crossroads-hotpath-")
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", ports.upstream), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        config = Path(home) / "crossroads.yaml"
        config.write_text(crossroads_config(ports) + f"logs-dir: {home}/logs\nauth-dir: {home}/auths\n"
                          + (f"log-level: {args.log_level}\n" if args.log_level else ""))
        os.environ["RAWPROXY_UPSTREAM"] = f"http://127.0.0.1:{ports.upstream}"
        import rawproxy

        from crossroads import config as config_module
        from crossroads.server import App
        app = App(config_module.load(str(config)), config_path=str(config))
        await _lifespan(app, "startup")
        profile = cProfile.Profile() if args.profile else None
        bare, ours = [], []
        for _ in range(args.rounds):  # interleaved; the least disturbed round of each counts
            bare_app, our_app = (rawproxy.rsgi_app, app) if args.interface == "rsgi" else (rawproxy.app, app.__call__)
            bare.append(await _measure("bare", bare_app, raw_path, raw_body, args.n, args.c, None))
            ours.append(await _measure("crossroads", our_app, path, body, args.n, args.c, profile))
        await _lifespan(app, "shutdown")
        if rawproxy._session is not None:
            await rawproxy._session.close()
        print(f"{args.scenario} ({args.interface}): bare {min(bare):.0f} µs/request, crossroads {min(ours):.0f} µs/request"
              f"{' (profiled: inflated)' if profile else ''}, added {min(ours) - min(bare):.0f} µs")
        if profile is not None:
            _print_profile(profile, args.top)
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="?", default="json", choices=sorted(SCENARIOS))
    parser.add_argument("-n", type=int, default=3000, help="requests measured")
    parser.add_argument("-c", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--interface", choices=("asgi", "rsgi"), default="asgi",
                        help="drive both applications through ASGI (the default) or granian's RSGI")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--log-level", default="", help="the router's log-level setting")
    args = parser.parse_args()
    import uvloop
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
