"""Management API (``/v0/management``): usage, cooldowns, quota reset, and
OAuth logins driven from a browser elsewhere.

Enabled only when ``remote-management.secret-key`` is set; the key is sent as
``Authorization: Bearer`` or ``X-Management-Key``. Answers only loopback
clients unless ``remote-management.allow-remote`` is true.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING

from crossroads import ir, reload
from crossroads.auth.callback import parse_redirect
from crossroads.auth.device import PendingDeviceLogins
from crossroads.auth.flows import LoginResult, PendingLogins, start
from crossroads.auth.oauth import LoginError
from crossroads.auth.persist import save_results
from crossroads.frontdoors.base import Route, json_body
from crossroads.http import Reply, Request, json_reply

if TYPE_CHECKING:
    from crossroads.server import App


def _authorize(app: App, request: Request) -> None:
    secret = app.config.management_secret
    if not secret:
        raise ir.Error(404, "not_found", "the management API is disabled (set remote-management.secret-key)")
    settings = app.config.raw.get("remote-management") or {}
    if not settings.get("allow-remote") and request.client_host not in ("127.0.0.1", "::1", None):
        raise ir.Error(403, "permission", "management is only allowed from localhost")
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-management-key", "")
    if not presented or not hmac.compare_digest(presented.encode(), secret.encode()):
        raise ir.Error(401, "authentication", "missing or wrong management key")


async def usage_report(app: App, request: Request) -> Reply:
    _authorize(app, request)
    return json_reply(200, await app.runtime.ledger.report())


async def cooldowns(app: App, request: Request) -> Reply:
    _authorize(app, request)
    now = time.monotonic()
    labels = {account.id: account.label for account in app.registry.accounts}
    rows = [{"account": account, "label": labels.get(account, account), "model": model,
             "seconds_left": round(cd.until - now, 1), "reason": cd.reason}
            for (account, model), cd in app.runtime.health.snapshot().items()]
    return json_reply(200, {"cooldowns": rows})


async def reset_quota(app: App, request: Request) -> Reply:
    _authorize(app, request)
    app.runtime.health.clear()
    return json_reply(200, {"status": "ok"})


ROUTES = [
    Route("GET", "/v0/management/usage", usage_report, "openai-chat", protected=False),
    Route("GET", "/v0/management/cooldowns", cooldowns, "openai-chat", protected=False),
    Route("POST", "/v0/management/reset-quota", reset_quota, "openai-chat", protected=False),
]


# ---------------------------------------------------------------- OAuth logins
# CLIProxyAPI's management names: GET /{provider}-auth-url starts a login and
# returns the URL to open; the user pastes where the browser landed to
# POST /oauth-callback; GET /get-auth-status?state= says how it went.

LOGIN_KINDS = {"anthropic": "claude", "claude": "claude", "codex": "codex", "gemini-cli": "gemini",
               "antigravity": "antigravity", "iflow": "iflow"}
DEVICE_KINDS = {"qwen": "qwen", "kimi": "kimi", "xai": "xai", "codex-device": "codex"}
_pending = PendingLogins()
_devices = PendingDeviceLogins()
_outcomes: dict[str, dict[str, object]] = {}


async def start_login(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = request.path.rsplit("/", 1)[1].removesuffix("-auth-url")
    kind = LOGIN_KINDS.get(name)
    if kind is None:
        raise ir.Error(404, "not_found", f"no login for {name!r}; known: {', '.join(sorted(LOGIN_KINDS))}")
    try:
        login = _pending.add(start(kind, loopback=False, options=dict(request.query)))
    except LoginError as exc:
        raise ir.bad_request(str(exc)) from None
    if len(_outcomes) > 1000:  # forget the oldest outcomes
        for state in list(_outcomes)[:500]:
            del _outcomes[state]
    _outcomes[login.state] = {"status": "wait"}
    return json_reply(200, {"status": "ok", "url": login.url, "state": login.state})


async def finish_login(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = json_body(request)
    pasted = body.get("redirect_url") or (f"{body.get('code', '')}#{body.get('state', '')}"
                                          if body.get("code") else "")
    try:
        redirect = parse_redirect(str(pasted))
        results = await _pending.complete(redirect)
    except LoginError as exc:
        if redirect_state := body.get("state"):
            _outcomes[str(redirect_state)] = {"status": "error", "error": str(exc)}
        raise ir.bad_request(str(exc)) from None
    store = reload.store_for(app)
    if store is None:
        raise ir.Error(503, "overloaded", "the credential store is not open yet; try again")
    saved = await save_results(store, results)
    if redirect.state:
        _outcomes[redirect.state] = {"status": "ok", "accounts": saved}
    return json_reply(200, {"status": "ok", "accounts": saved})


async def start_device_login(app: App, request: Request) -> Reply:
    """Device flows: show the user code and the page to enter it on; the
    router polls the provider in the background and stores the account."""
    _authorize(app, request)
    name = request.path.rsplit("/", 1)[1].removesuffix("-auth-url")
    store = reload.store_for(app)
    if store is None:
        raise ir.Error(503, "overloaded", "the credential store is not open yet; try again")

    async def save(results: list[LoginResult]) -> list[str]:
        return await save_results(store, results)

    try:
        state, login = await _devices.start(DEVICE_KINDS[name], save, dict(request.query))
    except LoginError as exc:
        raise ir.Error(502, "server_error", f"the provider refused to start a device login: {exc}") from None
    return json_reply(200, {"status": "ok", "state": state, "user_code": login.user_code,
                            "url": login.verification_uri_complete or login.verification_uri,
                            "expires_in": max(0, round(login.expires_at - time.time()))})


async def login_status(app: App, request: Request) -> Reply:
    _authorize(app, request)
    state = request.query.get("state", "")
    outcome = _outcomes.get(state)
    if outcome is None:
        try:
            return json_reply(200, _devices.status(state))
        except KeyError:
            raise ir.Error(404, "not_found", "unknown login state") from None
    return json_reply(200, outcome)


ROUTES += [Route("GET", f"/v0/management/{name}-auth-url", start_login, "openai-chat", protected=False)
           for name in LOGIN_KINDS]
ROUTES += [Route("GET", f"/v0/management/{name}-auth-url", start_device_login, "openai-chat", protected=False)
           for name in DEVICE_KINDS]
ROUTES += [
    Route("POST", "/v0/management/oauth-callback", finish_login, "openai-chat", protected=False),
    Route("GET", "/v0/management/get-auth-status", login_status, "openai-chat", protected=False),
]
