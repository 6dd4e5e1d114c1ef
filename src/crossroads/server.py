"""The ASGI application: routes requests to front doors, renders errors in the
caller's dialect, owns the shared upstream client."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Sequence
from importlib import import_module
from typing import Any

from crossroads import config as config_module
from crossroads import dialects, heap, ir, keepalive, nonstream, reload, requestid
from crossroads.access import KeyCheck
from crossroads.asgi import AsgiWire
from crossroads.credentials.base import Record
from crossroads.frontdoors import FRONTDOOR_MODULES, websocket
from crossroads.frontdoors.base import Route
from crossroads.http import (
    BodyTooLarge,
    ClientGone,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    StreamReply,
    Wire,
    json_reply,
)
from crossroads.pipeline import Pipeline
from crossroads.providers import Provider
from crossroads.record import RequestRecord
from crossroads.routing.registry import Registry
from crossroads.rsgi import RsgiWire, websocket_messages
from crossroads.runtime import Runtime
from crossroads.snapshot import Snapshot

log = logging.getLogger("crossroads")

CONFIG_ENV = "CROSSROADS_CONFIG"
LISTEN_ENV = "CROSSROADS_LISTEN_HOST"  # the address ``serve`` bound, when the command line chose it


class App:
    def __init__(self, cfg: config_module.Config, providers: Sequence[Provider] | None = None,
                 config_path: str | None = None) -> None:
        self.started_at = time.time()
        self.config_path = config_path
        self.runtime = Runtime(cfg, providers)
        self.pipeline = Pipeline(self.runtime)
        self._background: list[asyncio.Task[None]] = []
        self._exact: dict[tuple[str, str], Route] = {}
        self._prefixed: list[Route] = []
        for module_name in FRONTDOOR_MODULES:
            for route in import_module(module_name).ROUTES:
                if route.prefix:
                    self._prefixed.append(route)
                else:
                    self._exact[(route.method, route.path)] = route
        self._prefixed.sort(key=lambda r: -len(r.path))

    # what the current config decides (front doors read these per request)
    @property
    def snapshot(self) -> Snapshot:
        return self.runtime.snapshot

    @property
    def config(self) -> config_module.Config:
        return self.runtime.snapshot.config

    @property
    def registry(self) -> Registry:
        return self.runtime.snapshot.registry

    @property
    def keys(self) -> KeyCheck:
        return self.runtime.snapshot.keys

    def apply(self, cfg: config_module.Config, records: Iterable[Record] = ()) -> None:
        """Swap in a new config and credential set (ConfigError: nothing changes).
        In-flight requests keep the snapshot they started with."""
        self.runtime.apply(cfg, records)

    def route_for(self, method: str, path: str) -> Route | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route
        for candidate in self._prefixed:
            if candidate.method == method and path.startswith(candidate.path):
                return candidate
        return None

    # ---------------------------------------------------------------- interfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI (uvicorn, or granian asked for it)."""
        kind = scope["type"]
        if kind == "http":
            await self._http(AsgiWire(scope, receive, send))
        elif kind == "websocket":
            await websocket.serve(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        """RSGI (granian's native interface, what ``serve`` runs)."""
        if scope.proto == "http":
            await self._http(RsgiWire(scope, protocol))
        elif scope.proto == "ws":
            await websocket.serve(self, *websocket_messages(scope, protocol))

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self.startup())
        except Exception:
            log.exception("start-up failed")  # as the ASGI lifespan says it; the worker then stops
            raise

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.shutdown())

    # ---------------------------------------------------------------- requests

    async def _http(self, wire: Wire) -> None:
        """Route, check the key from the headers alone, then read the body
        (bounded in size and time) and answer. A client that leaves at any
        point cancels the work done for it, upstream call included."""
        observer = self.runtime.observer
        record = observer.open()
        request = wire.head(record)
        method = request.method
        head_only = method == "HEAD"
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = request.path = path.rstrip("/")
        route = self.route_for("GET" if head_only else method, path)
        error_dialect = route.error_dialect if route else dialects.for_path(path)
        observer.identify(record, method, path, request.headers.get(requestid.HEADER))
        config = self.config
        inflight = self.runtime.inflight
        exchange = inflight.begin(wire.client_left, config.body_read_timeout)
        try:
            try:
                if route is None:
                    raise ir.Error(404, "not_found", f"no such endpoint: {method} {path}")
                if path == "/v1/models":  # shared by every OpenAI-style client and Claude Code
                    error_dialect = dialects.identified_by(request.headers) or error_dialect
                if route.protected:
                    self.check_client_key(request)
                await wire.read_body(request, config.max_body_bytes)
                inflight.body_read(exchange)
                observer.received(record, request.headers, request.body)
                if config.nonstream_keepalive and nonstream.eligible(method, path, request.body):
                    reply = await nonstream.padded(route.handler(self, request), config.nonstream_keepalive,
                                                   lambda error: self._error_reply(error_dialect, error, record))
                else:
                    reply = await route.handler(self, request)
                if not route.protected and not route.shipped and isinstance(reply, Reply):  # nothing secret shown
                    reply.body = self.runtime.redaction.redactor.bytes(reply.body)
            except ir.Error as error:
                reply = self._error_reply(error_dialect, error, record)
            except BodyTooLarge:
                reply = self._error_reply(error_dialect, ir.Error(
                    413, "request_too_large", f"request body too large (the limit is {config.max_body_bytes} bytes)"),
                    record)
            except ClientGone:
                record.client_left()
                return
            except Exception:
                log.exception("unhandled error on %s %s", method, path)
                reply = self._error_reply(error_dialect, ir.Error(500, "server_error",
                                                                  "internal error in crossroads; see server log"),
                                          record)
            record.status = reply.status
            reply.headers.append((b"x-request-id", record.request_id.encode()))
            if isinstance(reply, StreamReply):  # the watcher, still on, cancels the stream when the client leaves
                if config.stream_keepalive and reply.content_type == b"text/event-stream":
                    reply.chunks = keepalive.sse(reply.chunks, config.stream_keepalive)
                await wire.stream(observer.capture(reply, record))
            else:
                inflight.end(exchange)
                observer.replied(record, reply.body)
                await wire.reply(reply, head_only)
        except asyncio.CancelledError:
            if exchange is None or not exchange.absorb():
                raise
            if exchange.timed_out:
                reply = self._error_reply(error_dialect, ir.Error(
                    408, "invalid_request", "the request body was not received in time"), record)
                record.status = reply.status
                reply.headers.append((b"x-request-id", record.request_id.encode()))
                await wire.reply(reply)
            else:
                record.client_left()
                log.debug("client left %s %s before it was answered; its work was cancelled", method, path)
        finally:
            inflight.end(exchange)
            observer.finish(record, request.client_key)

    def check_client_key(self, request: Request) -> None:
        """Raise ir.Error (401, or 429 while the address is locked out) unless the request's key is good."""
        keys = self.runtime.snapshot.keys
        request.client_key = keys.presented(request)
        if keys.open:
            return
        lockout = self.runtime.client_lockout
        locked = lockout.locked_for(request.client_host)
        if locked:
            raise ir.Error(429, "rate_limit", "too many wrong client keys from this address; try again later",
                           retry_after=locked, code="too_many_failed_keys")
        if request.client_key is None or not keys.accepts(request.client_key):
            if request.client_key is not None:  # a wrong key is a guess; a missing one is not
                lockout.failed(request.client_host)
            raise ir.Error(401, "authentication",
                           "missing or invalid client key: send it as 'Authorization: Bearer KEY', "
                           "'x-api-key', 'x-goog-api-key' or '?key='", code="invalid_api_key")
        lockout.succeeded(request.client_host)

    def _error_reply(self, dialect_name: str, error: ir.Error, record: RequestRecord) -> Reply:
        error.message = self.runtime.redaction.redactor(error.message)
        record.error = error
        status, payload = dialects.get(dialect_name).render_error(error)
        payload = requestid.stamp(payload, record.request_id)
        headers = []
        if error.retry_after is not None:
            headers.append((b"retry-after", str(max(1, round(error.retry_after))).encode()))
        return json_reply(status, payload, headers)

    # ---------------------------------------------------------------- life

    async def startup(self) -> None:
        await self.runtime.observer.start()  # first: its log file gets the redaction filter too
        self.runtime.redaction.install()
        await self.runtime.state.start()
        self._background = await reload.start(self.runtime, self.config_path)
        self._background.append(asyncio.create_task(self.runtime.inflight.run(), name="crossroads-inflight"))
        await self.runtime.services.start()
        self._background.append(self.runtime.prober.start())
        heap.settle()

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        await self.runtime.services.stop()
        self.runtime.logins.close()
        await self.runtime.images.close()
        await self.runtime.transport.close()
        await self.runtime.state.close()
        await self.runtime.observer.close()
        self.runtime.redaction.uninstall()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> App:
    """Factory used by the ASGI server; reads the config named by $CROSSROADS_CONFIG."""
    path = os.environ.get(CONFIG_ENV) or None
    app = App(config_module.load(path), config_path=path)
    app.runtime.listen_host = os.environ.get(LISTEN_ENV) or app.runtime.listen_host
    return app


__all__ = ["App", "Reply", "Request", "create_app"]
