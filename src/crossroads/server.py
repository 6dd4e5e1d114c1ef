"""The ASGI application: routes requests to front doors, renders errors in the
caller's dialect, owns the shared upstream client."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import import_module

from crossroads import config as config_module
from crossroads import dialects, ir, reload
from crossroads.access import KeyCheck
from crossroads.auth.pending import Logins
from crossroads.auth.refresher import Refresher
from crossroads.auth.table import OAuthTable
from crossroads.credentials.base import Record, Store
from crossroads.frontdoors import FRONTDOOR_MODULES, websocket
from crossroads.frontdoors.base import Route
from crossroads.http import (
    BodyTooLarge,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    StreamReply,
    json_reply,
    read_request,
    send_reply,
    send_stream,
)
from crossroads.pipeline import Pipeline
from crossroads.providers import Account, Provider, all_providers, oauth_specs, subscription_catalogue
from crossroads.providers.base import AccountContext, ModelRoute
from crossroads.routing.registry import Registry
from crossroads.transport import Transport

log = logging.getLogger("crossroads")

CONFIG_ENV = "CROSSROADS_CONFIG"


def oauth_table(cfg: config_module.Config) -> OAuthTable:
    """The subscription providers' OAuth settings under ``cfg``'s ``oauth-endpoints``."""
    try:
        return OAuthTable.build(oauth_specs(), cfg.raw)
    except ValueError as exc:
        raise config_module.ConfigError(f"{cfg.source}: {exc}") from None


def build_accounts(cfg: config_module.Config, records: Iterable[Record] = (),
                   ctx: AccountContext | None = None) -> list[Account]:
    """Accounts from the config's upstream lists and from stored credentials.
    Without ``ctx`` (checks, listings) the accounts get their own OAuth table
    and a refresher with no store."""
    if ctx is None:
        table = oauth_table(cfg)
        ctx = AccountContext(Refresher(oauth=lambda: table), table)
    accounts: list[Account] = []
    by_type: dict[str, Provider] = {}
    try:
        subscription_catalogue.configure(cfg.raw)  # model-catalogue overrides
    except ValueError as exc:
        raise config_module.ConfigError(f"{cfg.source}: {exc}") from None
    for provider in all_providers():
        entries = cfg.upstreams.get(provider.config_key) or []
        try:
            accounts.extend(provider.accounts(entries, ctx))
        except ValueError as exc:
            raise config_module.ConfigError(f"{cfg.source}: {exc}") from None
        for auth_type in provider.auth_types:
            by_type[auth_type] = provider
    for record in records:
        owner = by_type.get(record.type)
        if owner is None:
            log.warning("credential %s has unknown type %r; skipped", record.id, record.type)
            continue
        try:
            found = owner.accounts_from_record(record, ctx)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("credential %s cannot be used: %s", record.id, exc)
            continue
        for account in found:
            apply_channel_rules(account, record.type, cfg)
            accounts.append(account)
    return accounts


def apply_channel_rules(account: Account, channel: str, cfg: config_module.Config) -> None:
    """``oauth-excluded-models`` and ``oauth-model-alias`` for one OAuth channel
    (claude, codex, gemini, ...): exclude upstream models by wildcard, and
    expose upstream models under aliases (``fork: true`` keeps the original
    name as well)."""
    excluded = (cfg.raw.get("oauth-excluded-models") or {}).get(channel) or []
    if excluded:
        account.excluded = (*account.excluded, *map(str, excluded))
        account.routes = {k: r for k, r in account.routes.items() if not account.is_excluded(r.upstream)}
    for rule in (cfg.raw.get("oauth-model-alias") or {}).get(channel) or []:
        if not isinstance(rule, dict) or not rule.get("name") or not rule.get("alias"):
            continue
        upstream, alias = str(rule["name"]), str(rule["alias"])
        original = next((r for r in account.routes.values() if r.upstream == upstream), None)
        if original is None:
            continue
        if not rule.get("fork"):
            account.routes = {k: r for k, r in account.routes.items() if r.upstream != upstream}
        account.routes[alias] = ModelRoute(upstream=upstream, exposed=alias)
        if account.prefix:
            named = f"{account.prefix}/{alias}"
            account.routes[named] = ModelRoute(upstream=upstream, exposed=named)


# --- issue 9 (oauth-seam branch): a stand-in for the runtime the lead is
# building; management and reload reach the refresher, the logins in progress
# and the store through ``app.runtime``, and the OAuth table of the config in
# force through ``app.oauth`` (to become ``app.runtime.snapshot.oauth``).
@dataclass(slots=True)
class Runtime:
    refresher: Refresher
    logins: Logins = field(default_factory=Logins)
    store: Store | None = None  # set when the store opens (reload.start)


class App:
    def __init__(self, cfg: config_module.Config) -> None:
        self.config = cfg
        self.started_at = time.time()
        self.keys = KeyCheck(cfg.api_keys)
        self.oauth = oauth_table(cfg)
        self.runtime = Runtime(Refresher(oauth=lambda: self.oauth))
        self.registry = Registry(build_accounts(cfg, ctx=AccountContext(self.runtime.refresher, self.oauth)),
                                 cfg.force_model_prefix)
        self.transport = Transport(cfg.timeouts, cfg.proxy_url)
        self.pipeline = Pipeline(cfg, self.registry, self.transport)
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

    def apply(self, cfg: config_module.Config, records: Iterable[Record] = ()) -> None:
        """Swap in a new config and credential set. In-flight requests keep the
        objects they already hold; new requests see the new ones."""
        table = oauth_table(cfg)
        registry = Registry(build_accounts(cfg, records, AccountContext(self.runtime.refresher, table)),
                            cfg.force_model_prefix)
        self.oauth = table  # only once the config is accepted
        self.config = cfg
        self.keys = KeyCheck(cfg.api_keys)
        self.registry = registry
        self.pipeline.configure(cfg, registry)

    def route_for(self, method: str, path: str) -> Route | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route
        for candidate in self._prefixed:
            if candidate.method == method and path.startswith(candidate.path):
                return candidate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await websocket.serve(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        head_only = method == "HEAD"
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        route = self.route_for("GET" if head_only else method, path)
        error_dialect = route.error_dialect if route else _guess_dialect(path)
        try:
            request = await read_request(scope, receive)
            request.path = path
            if route is None:
                raise ir.Error(404, "not_found", f"no such endpoint: {method} {path}")
            request.client_key = self.keys.presented(request)
            if route.protected and not self.keys.allows(request):
                raise ir.Error(401, "authentication",
                               "missing or invalid client key: send it as 'Authorization: Bearer KEY', "
                               "'x-api-key', 'x-goog-api-key' or '?key='", code="invalid_api_key")
            if path == "/v1/models" and "anthropic-version" in request.headers:
                error_dialect = "anthropic"
            reply = await route.handler(self, request)
        except ir.Error as error:
            reply = self._error_reply(error_dialect, error)
        except BodyTooLarge:
            reply = self._error_reply(error_dialect, ir.Error(413, "request_too_large", "request body too large"))
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            reply = self._error_reply(error_dialect, ir.Error(500, "server_error",
                                                              "internal error in crossroads; see server log"))
        if isinstance(reply, StreamReply):
            await send_stream(send, receive, reply)
        else:
            await send_reply(send, reply, head_only)

    def _error_reply(self, dialect_name: str, error: ir.Error) -> Reply:
        status, payload = dialects.get(dialect_name).render_error(error)
        headers = []
        if error.retry_after is not None:
            headers.append((b"retry-after", str(max(1, round(error.retry_after))).encode()))
        return json_reply(status, payload, headers)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.pipeline.state.start()
                    self._background = await reload.start(self)
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._background:
                    task.cancel()
                self.runtime.logins.close()
                await self.transport.close()
                await self.pipeline.state.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _guess_dialect(path: str) -> str:
    if "/messages" in path:
        return "anthropic"
    if path.startswith("/v1beta") or ":" in path:
        return "gemini"
    return "openai-chat"


def create_app() -> App:
    """Factory used by the ASGI server; reads the config named by $CROSSROADS_CONFIG."""
    return App(config_module.load(os.environ.get(CONFIG_ENV) or None))


__all__ = ["App", "Reply", "Request", "create_app"]
