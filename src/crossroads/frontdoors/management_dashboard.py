"""The dashboard's page and assets, and the two management routes it reads
beyond CLIProxyAPI's:

- ``GET /management.html`` (CLIProxyAPI's panel path) and
  ``GET /management/<asset>``: served to anyone (the page holds no data;
  every call it makes needs the management secret), 404 with
  ``remote-management.disable-control-panel: true``;
- ``GET /v0/management/accounts``: every account the router routes to
  (config keys and logins alike) with provider, status, cooldowns, quota
  window where an upstream reported one, needs-login;
- ``GET /v0/management/requests?since=&limit=``: the newest model requests
  from the usage database (shared by every worker), newest first, for the
  live request log;
- ``GET /v0/management/logins``: the login names the OAuth routes accept,
  each with its flow (browser or device) and its import options.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from crossroads import dashboard, ir
from crossroads.frontdoors.base import Route
from crossroads.frontdoors.management import _authorize, _usage_query, _usage_store
from crossroads.http import Reply, Request, json_reply
from crossroads.providers import oauth_specs

if TYPE_CHECKING:
    from crossroads.server import App

ASSET_PREFIX = "/management/"
REQUESTS_LIMIT = 500


def _served(app: App, name: str, request: Request) -> Reply:
    settings = app.config.raw.get("remote-management") or {}
    body = dashboard.asset(name) if not settings.get("disable-control-panel") else None
    if body is None:
        raise ir.Error(404, "not_found", f"no such page: {request.path}")
    etag = b'"' + hashlib.sha256(body).hexdigest()[:16].encode() + b'"'
    headers = [(b"etag", etag), (b"cache-control", b"no-cache"), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
               (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")]
    if request.headers.get("if-none-match", "").encode() == etag:
        return Reply(304, b"", content_type=dashboard.ASSETS[name], headers=headers)
    return Reply(200, body, content_type=dashboard.ASSETS[name], headers=headers)


async def page(app: App, request: Request) -> Reply:
    return _served(app, dashboard.PAGE, request)


async def asset(app: App, request: Request) -> Reply:
    return _served(app, request.path.removeprefix(ASSET_PREFIX), request)


async def accounts(app: App, request: Request) -> Reply:
    _authorize(app, request)
    now = time.monotonic()
    health = app.runtime.health
    cooling: dict[str, list[dict[str, Any]]] = {}
    for (account_id, model), cd in health.snapshot().items():
        cooling.setdefault(account_id, []).append({"model": model, "seconds_left": round(cd.until - now, 1),
                                                   "reason": cd.reason})
    rows = []
    for account in app.registry.accounts:
        credential = account.credential
        refresh = getattr(credential, "status", "ok")
        window = health.headroom(account.id)
        status = ("disabled" if account.disabled else "needs_login" if refresh == "needs_login"
                  else "refresh_failing" if refresh == "failing" else "cooling" if account.id in cooling
                  else "active")
        rows.append({
            "id": account.id, "label": account.label or account.id, "provider": account.provider.config_key,
            "auth_file": f"{credential.id}.json" if credential is not None else None,
            "status": status, "disabled": account.disabled, "needs_login": refresh == "needs_login",
            "cooldowns": cooling.get(account.id, []), "models": len(account.routes),
            "quota": None if window is None or window.until <= now else
            {"remaining_fraction": round(window.fraction, 4), "resets_in": round(window.until - now, 1)},
        })
    return json_reply(200, {"accounts": rows})


async def requests(app: App, request: Request) -> Reply:
    _authorize(app, request)
    query = _usage_query(request)
    limit = request.query.get("limit", "100")
    if not limit.isdigit():
        raise ir.bad_request("limit must be a whole number", param="limit")
    store = _usage_store(app)
    await store.flush()
    rows = await store.db.rows(query, limit=min(int(limit), REQUESTS_LIMIT), newest_first=True)
    return json_reply(200, {"requests": [row.as_dict() for row in rows]})


async def logins(app: App, request: Request) -> Reply:
    _authorize(app, request)
    rows = [{"name": name, "type": spec.type, "flow": "device" if spec.uses_device(name) else "browser"}
            for spec in oauth_specs() if spec.browser is not None or spec.device is not None
            for name in spec.all_login_names]
    imports = [{"name": name, "type": spec.type, "options": [i.option for i in spec.imports]}
               for spec in oauth_specs() if spec.imports for name in spec.login_names]
    return json_reply(200, {"logins": rows, "imports": imports})


ROUTES = [
    Route("GET", "/" + dashboard.PAGE, page, "openai-chat", protected=False, shipped=True),
    Route("GET", ASSET_PREFIX, asset, "openai-chat", protected=False, prefix=True, shipped=True),
    Route("GET", "/v0/management/accounts", accounts, "openai-chat", protected=False),
    Route("GET", "/v0/management/requests", requests, "openai-chat", protected=False),
    Route("GET", "/v0/management/logins", logins, "openai-chat", protected=False),
]
