"""The least a held stream can cost on this stack: granian embedded in one
Python process (as ``crossroads serve`` runs it), RSGI, and an application
that answers ``POST /v1/chat/completions`` with one SSE chunk, holds the
stream for ``max_tokens`` seconds, then ends it. No upstream, no parsing
beyond that one field: what is left is granian's and the interpreter's own
cost per open stream, the floor under any router's figure.

    python bench/floor.py --port 8000 [--lifetime 900]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
from typing import Any

import orjson
import uvloop
from granian.constants import Interfaces
from granian.server.embed import Server

FIRST = b'data: {"choices":[{"index":0,"delta":{"content":"held"}}]}\n\n'
LAST = b"data: [DONE]\n\n"


class HoldApp:
    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        if scope.method != "POST":
            protocol.response_str(200, [("content-type", "application/json")], '{"status":"ok"}')
            return
        body = orjson.loads(await protocol())
        seconds = int(body.get("max_tokens") or 30)
        transport = protocol.response_stream(200, [("content-type", "text/event-stream")])
        await transport.send_bytes(FIRST)
        await asyncio.sleep(seconds)
        await transport.send_bytes(LAST)


async def serve(port: int, lifetime: float) -> None:
    server = Server(HoldApp(), address="127.0.0.1", port=port, interface=Interfaces.RSGI, backlog=2048,
                    backpressure=20_000, log_enabled=False)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    loop.call_later(lifetime, server.stop)
    await server.serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=900)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(serve(args.port, args.lifetime))


if __name__ == "__main__":
    main()
