"""The reference ceiling: a minimal raw pass-through proxy.

Bare ASGI on granian (uvloop, one worker — the same server setup as
``crossroads serve``; ``--interface rsgi``: granian's native interface), one shared aiohttp ClientSession. Per request it reads
the body, ``orjson.loads`` it (standing in for routing), forwards the bytes to
``$RAWPROXY_UPSTREAM + path`` and returns the reply; streams pass through
chunk by chunk. No auth, no model rewrite, no error handling beyond the
minimum: a Python proxy cannot be much cheaper than this.

    RAWPROXY_UPSTREAM=http://127.0.0.1:18400 python bench/rawproxy.py --port 18401
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any

import aiohttp
import orjson

UPSTREAM_ENV = "RAWPROXY_UPSTREAM"

_upstream = os.environ.get(UPSTREAM_ENV, "http://127.0.0.1:18400").rstrip("/")
_session: aiohttp.ClientSession | None = None


def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                                         skip_auto_headers=("User-Agent",))
    return _session


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    payload = orjson.loads(body) if body else {}
    stream = isinstance(payload, dict) and payload.get("stream") is True
    async with _client().post(_upstream + scope["path"], data=body,
                              headers={"content-type": "application/json"}) as response:
        content_type = response.headers.get("content-type", "application/json").encode()
        if not stream:
            data = await response.read()
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(b"content-type", content_type),
                                    (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
            return
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache")]})
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


class RSGIApp:
    """The same pass-through on granian's native RSGI interface (no ASGI
    message dicts: the body is read in one call, the reply written in one)."""

    def __rsgi_del__(self, loop: Any) -> None:
        if _session is not None:
            loop.run_until_complete(_session.close())

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        body = await protocol()
        payload = orjson.loads(body) if body else {}
        stream = isinstance(payload, dict) and payload.get("stream") is True
        async with _client().post(_upstream + scope.path, data=body,
                                  headers={"content-type": "application/json"}) as response:
            content_type = response.headers.get("content-type", "application/json")
            if not stream:
                protocol.response_bytes(response.status, [("content-type", content_type)], await response.read())
                return
            transport = protocol.response_stream(response.status, [("content-type", content_type),
                                                                   ("cache-control", "no-cache")])
            async for chunk in response.content.iter_any():
                await transport.send_bytes(chunk)


rsgi_app = RSGIApp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18401)
    parser.add_argument("--lifetime", type=float, default=900.0, help="exit after this many seconds")
    parser.add_argument("--interface", choices=("asgi", "rsgi"), default="asgi")
    args = parser.parse_args()

    from granian import Granian
    from granian.constants import Interfaces, Loops

    # Never outlive the benchmark, even if the runner dies without cleaning up.
    timer = threading.Timer(args.lifetime, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    rsgi = args.interface == "rsgi"
    Granian("rawproxy:rsgi_app" if rsgi else "rawproxy:app", address=args.host, port=args.port,
            interface=Interfaces.RSGI if rsgi else Interfaces.ASGI,
            loop=Loops.uvloop, workers=1, log_access=False, websockets=False,
            working_dir=Path(__file__).resolve().parent).serve()


if __name__ == "__main__":
    main()
