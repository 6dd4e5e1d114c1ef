"""One worker in the server's own process: granian embedded in our event loop.

With a single worker, granian's usual layout is a main process that only
watches a worker process; each is a full Python interpreter, and the main
one holds the command line's modules besides. Embedding granian instead
serves from the process that starts it, which saves that second interpreter
(about a third of an idle server's memory) and changes nothing on the wire:
the same Rust server accepts and parses, and calls the same application.

Guarantees, as with the worker process:
- the application starts before the port accepts its first request, and a
  start-up failure exits non-zero with nothing served;
- the first SIGTERM, SIGINT or SIGHUP stops accepting, lets requests and
  streams in flight finish for up to ``grace`` seconds, then flushes the
  application's state (``App.shutdown``) and returns;
- a second signal stops waiting at once; the state is flushed all the same;
- a process still alive five seconds after its grace period (a flush that
  hangs, a thread that will not end) is ended by the kernel (SIGALRM), as a
  supervisor would kill it: nothing in this process has to be responsive for
  that to happen.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvloop
from granian.constants import Interfaces
from granian.server.embed import Server

from crossroads.config import TLS
from crossroads.server import App
from crossroads.serving import StartupFailed

log = logging.getLogger("crossroads.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_MARGIN = 5  # seconds past the grace period for the flush, before the process is ended regardless


class _QuietExperimentalNotice(logging.Filter):
    """granian warns that embedding is experimental on every start; the
    supervisor's process tests cover what we rely on, so the notice would
    only alarm whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Embedded server is experimental")


def serve(app: App, *, interface: str, bind: str, port: int, grace: float, backpressure: int,
          tls: TLS | None) -> None:
    """Serve ``app`` on (bind, port) until a signal stops it."""
    settings: dict[str, Any] = {
        "address": bind, "port": port, "websockets": True, "backlog": 2048, "backpressure": backpressure,
        "log_access": False, "ssl_cert": Path(tls.cert) if tls else None,
        "ssl_key": Path(tls.key) if tls else None}
    # the application's life (start, flush) is ours to run around the server's, so granian gets only the
    # request entry point: RSGI's __rsgi__ without its init/del hooks, ASGI without lifespan
    if interface == "rsgi":
        server = Server(SimpleNamespace(__rsgi__=app.__rsgi__), interface=Interfaces.RSGI, **settings)
    else:
        server = Server(app, interface=Interfaces.ASGINL, **settings)
    logging.getLogger("_granian").addFilter(_QuietExperimentalNotice())
    uvloop.run(_serve(app, server, grace))


async def _serve(app: App, server: Server, grace: float) -> None:
    try:
        await app.startup()
    except Exception as exc:  # e.g. a state store that cannot be reached: one line, the details at debug
        log.debug("start-up failed", exc_info=True)
        masked = app.runtime.redaction.redactor(str(exc))  # e.g. a store's URL with its password
        raise StartupFailed(f"start-up failed: {type(exc).__name__}: {masked}") from None
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    serving = asyncio.ensure_future(server.serve())
    stopping = loop.create_future()

    def on_signal() -> None:
        if not stopping.done():
            stopping.set_result(None)
            server.stop()
            signal.alarm(int(grace) + STOP_MARGIN)  # SIGALRM's default action ends the process
        elif me is not None:
            me.cancel()  # a second signal: no more waiting

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():  # stopped by a signal: granian's serve() returns once the last request is answered
            await asyncio.wait_for(asyncio.shield(serving), grace)
        serving.result()  # a server that could not start says why
    except (TimeoutError, asyncio.CancelledError):
        if me is not None:
            me.uncancel()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await app.shutdown()
