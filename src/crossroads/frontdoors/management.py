"""Management API (``/v0/management``): usage, cooldowns, quota windows, quota reset, and
OAuth logins driven from a browser elsewhere.

Enabled only when ``remote-management.secret-key`` is set; the key is sent as
``Authorization: Bearer`` or ``X-Management-Key``. Answers only loopback
clients unless ``remote-management.allow-remote`` is true.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from crossroads import ir, quota
from crossroads.auth import flows
from crossroads.auth.callback import parse_redirect
from crossroads.auth.oauth import LoginError
from crossroads.auth.persist import save_results
from crossroads.auth.spec import LoginResult, OAuthSpec
from crossroads.auth.table import OAuthTable
from crossroads.credentials.base import Store
from crossroads.frontdoors.base import Route, json_body
from crossroads.http import Reply, Request, json_reply
from crossroads.observe.usage_sql import Query
from crossroads.observe.usage_store import (
    DETAILS_LIMIT,
    UsageStore,
    cliproxy_usage,
    make_query,
    tables,
    to_csv,
)
from crossroads.providers import oauth_specs

if TYPE_CHECKING:
    from crossroads.server import App


def _authorize(app: App, request: Request) -> None:
    secret = app.config.management_secret
    check = app.runtime.management_check
    if not secret and not check.env_secret:
        raise ir.Error(404, "not_found", "the management API is disabled (set remote-management.secret-key)")
    settings = app.config.raw.get("remote-management") or {}
    remote = settings.get("allow-remote") or check.env_secret  # as CLIProxyAPI: MANAGEMENT_PASSWORD allows remote
    if not remote and request.client_host not in ("127.0.0.1", "::1", None):
        raise ir.Error(403, "permission", "management is only allowed from localhost")
    lockout = app.runtime.management_lockout
    locked = lockout.locked_for(request.client_host)
    if locked:
        raise ir.Error(429, "rate_limit", "too many wrong management keys from this address; try again later",
                       retry_after=locked)
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-management-key", "")
    if not presented or not (check.matches_env(presented) or (secret and check.matches(presented, secret))
                             or check.matches_local(presented, request.client_host)):
        lockout.failed(request.client_host)
        raise ir.Error(401, "authentication", "missing or wrong management key")
    lockout.succeeded(request.client_host)


def _usage_query(request: Request) -> Query:
    q = request.query
    try:
        return make_query(q.get("since"), q.get("until"), q.get("group"), key=q.get("key"),
                          account=q.get("account"), model=q.get("model"))
    except ValueError as exc:
        raise ir.bad_request(str(exc)) from None


def _usage_store(app: App) -> UsageStore:
    store = app.runtime.observer.usage
    if not store.available:
        raise ir.Error(503, "overloaded", f"the usage database at {store.db.where} could not be opened; "
                                          "see the server log")
    return store


def _csv(text: str) -> Reply:
    return Reply(200, text.encode(), content_type=b"text/csv; charset=utf-8")


async def usage_report(app: App, request: Request) -> Reply:
    """The usage database (every worker writes to it): totals by key,
    account and model, CLIProxyAPI's ``usage`` statistics, or with
    ``group=`` rows per group (``format=csv`` for CSV); ``since``/``until``
    bound the window."""
    _authorize(app, request)
    query = _usage_query(request)
    store = _usage_store(app)
    await store.flush()  # this worker's latest requests count too
    if query.groups:
        rows = await store.db.grouped(query)
        if request.query.get("format") == "csv":
            return _csv(to_csv(rows))
        return json_reply(200, {"group": list(query.groups), "since": query.since, "until": query.until,
                                "rows": rows})
    details = request.query.get("details", "")
    report: dict[str, Any]
    if app.runtime.state.shared and app.config.ops.usage.database != "postgres":
        report = await app.runtime.ledger.report()  # Redis: every replica's totals
    else:
        shared = app.config.ops.usage.database == "postgres"
        report = {**await tables(store.db, query), "scope": "shared" if shared else "replica"}
    report.update(await cliproxy_usage(store.db, query, int(details) if details.isdigit() else DETAILS_LIMIT))
    return json_reply(200, report)


async def usage_export(app: App, request: Request) -> Reply:
    """Every request of the window: ``format=csv`` rows, or CLIProxyAPI's
    export shape (``{version, exported_at, usage}``) with every detail."""
    _authorize(app, request)
    query = _usage_query(request)
    store = _usage_store(app)
    await store.flush()
    if request.query.get("format") == "csv":
        return _csv(to_csv([row.as_dict() for row in await store.db.rows(query)]))
    usage = await cliproxy_usage(store.db, query, details=None)
    return json_reply(200, {"version": 1, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "usage": usage["usage"]})


async def cooldowns(app: App, request: Request) -> Reply:
    _authorize(app, request)
    now = time.monotonic()
    labels = {account.id: account.label for account in app.registry.accounts}
    rows = [{"account": account, "label": labels.get(account, account), "model": model,
             "seconds_left": round(cd.until - now, 1), "reason": cd.reason}
            for (account, model), cd in app.runtime.health.snapshot().items()]
    return json_reply(200, {"cooldowns": rows})


async def quota_windows(app: App, request: Request) -> Reply:
    """Each account's quota windows: utilisation (with a bar), reset time, where
    the number came from and how old it is; and whether routing holds it back."""
    _authorize(app, request)
    runtime = app.runtime
    quotas = runtime.health.quotas
    now = time.time()
    rows = []
    for account in app.registry.accounts:
        windows = quotas.get(account.id)
        if not windows:
            continue
        held = {w.family or "*": w.until() for w in windows.values() if w.live(now) and w.used >= 1.0}
        rows.append({"account": account.id, "label": account.label, "pause_at": account.pause_at,
                     "windows": quota.describe(windows, now),
                     "exhausted_until": {k: quota.iso(v) for k, v in held.items()}})
    return json_reply(200, {"accounts": rows, "pause_at": {p: f for p, f in runtime.selector.rules.pause_at},
                            "prefer_soonest_reset": runtime.selector.rules.prefer_soonest_reset})


async def side_services(app: App, request: Request) -> Reply:
    """Each side service's state, with the service's own words when it is down."""
    _authorize(app, request)
    return json_reply(200, {"services": app.runtime.services.report()})


async def reset_quota(app: App, request: Request) -> Reply:
    _authorize(app, request)
    app.runtime.health.clear()
    return json_reply(200, {"status": "ok"})


ROUTES = [
    Route("GET", "/v0/management/usage", usage_report, "openai-chat", protected=False),
    Route("GET", "/v0/management/usage/export", usage_export, "openai-chat", protected=False),
    Route("GET", "/v0/management/cooldowns", cooldowns, "openai-chat", protected=False),
    Route("POST", "/v0/management/reset-quota", reset_quota, "openai-chat", protected=False),
    Route("GET", "/v0/management/side-services", side_services, "openai-chat", protected=False),
    Route("GET", "/v0/management/quota", quota_windows, "openai-chat", protected=False),
]


# ---------------------------------------------------------------- OAuth logins
# CLIProxyAPI's management names: GET /{name}-auth-url starts a login and
# returns the URL to open (device flows: the code and where to enter it); the
# user pastes where the browser landed to POST /oauth-callback;
# GET /get-auth-status?state= says how it went. The names are the providers'
# login names (their OAuth specs); the logins in progress live on the app's
# runtime (``app.runtime.logins``).


def _oauth(app: App) -> OAuthTable:
    """The OAuth table of the config in force."""
    return app.runtime.snapshot.oauth


def _store(app: App) -> Store:
    store = app.runtime.store
    if store is None:
        raise ir.Error(503, "overloaded", "the credential store is not open yet; try again")
    return store


def _login_spec(app: App, request: Request) -> tuple[str, OAuthSpec]:
    name = request.path.rsplit("/", 1)[1].removesuffix("-auth-url")
    spec = _oauth(app).by_login_name(name)
    if spec is None:
        raise ir.Error(404, "not_found", f"no login named {name!r}")
    return name, spec


async def start_login(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name, spec = _login_spec(app, request)
    if spec.uses_device(name):
        return await _start_device_login(app, spec, request)
    logins = app.runtime.logins
    try:
        login = logins.browser.add(flows.start(_oauth(app), spec.type, loopback=False, options=dict(request.query)))
    except LoginError as exc:
        raise ir.bad_request(str(exc)) from None
    logins.waiting(login.state)
    return json_reply(200, {"status": "ok", "url": login.url, "state": login.state})


async def finish_login(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = json_body(request)
    pasted = body.get("redirect_url") or (f"{body.get('code', '')}#{body.get('state', '')}"
                                          if body.get("code") else "")
    logins = app.runtime.logins
    try:
        redirect = parse_redirect(str(pasted))
        results = await logins.browser.complete(redirect)
    except LoginError as exc:
        if redirect_state := body.get("state"):
            logins.failed(str(redirect_state), str(exc))
        raise ir.bad_request(str(exc)) from None
    saved = await save_results(_store(app), results)
    if redirect.state:
        logins.succeeded(redirect.state, saved)
    return json_reply(200, {"status": "ok", "accounts": saved})


async def import_login(app: App, request: Request) -> Reply:
    """A login without a dialogue (a pasted cookie, a key file's contents):
    ``POST /v0/management/{name}-import`` with the login's options, e.g.
    ``{"cookie": "..."}``; the account is stored at once."""
    _authorize(app, request)
    name = request.path.rsplit("/", 1)[1].removesuffix("-import")
    spec = _oauth(app).by_login_name(name)
    if spec is None or not spec.imports:
        raise ir.Error(404, "not_found", f"no login named {name!r} takes an import")
    options = json_body(request)
    chosen = next((i for i in spec.imports if i.option in options), None)
    if chosen is None:
        raise ir.bad_request(f"{name} needs one of: {', '.join(i.option for i in spec.imports)}")
    try:
        results = await chosen.run(_oauth(app).entry(spec.type), options)
    except LoginError as exc:
        raise ir.bad_request(str(exc)) from None
    return json_reply(200, {"status": "ok", "accounts": await save_results(_store(app), results)})


async def _start_device_login(app: App, spec: OAuthSpec, request: Request) -> Reply:
    """Device flows: show the user code and the page to enter it on; the
    router polls the provider in the background and stores the account."""
    store = _store(app)

    async def save(results: list[LoginResult]) -> list[str]:
        return await save_results(store, results)

    try:
        state, login = await app.runtime.logins.devices.start(_oauth(app), spec.type, save, dict(request.query))
    except LoginError as exc:
        raise ir.Error(502, "server_error", f"the provider refused to start a device login: {exc}") from None
    return json_reply(200, {"status": "ok", "state": state, "user_code": login.user_code,
                            "url": login.verification_uri_complete or login.verification_uri,
                            "expires_in": max(0, round(login.expires_at - time.time()))})


async def login_status(app: App, request: Request) -> Reply:
    _authorize(app, request)
    try:
        return json_reply(200, app.runtime.logins.status(request.query.get("state", "")))
    except KeyError:
        raise ir.Error(404, "not_found", "unknown login state") from None


def login_routes(specs: list[OAuthSpec]) -> list[Route]:
    """One start route per login name (browser and device names alike)."""
    return [Route("GET", f"/v0/management/{name}-auth-url", start_login, "openai-chat", protected=False)
            for spec in specs if spec.browser is not None or spec.device is not None
            for name in spec.all_login_names] + [
        Route("POST", f"/v0/management/{name}-import", import_login, "openai-chat", protected=False)
        for spec in specs if spec.imports for name in spec.login_names]


ROUTES += [
    *login_routes(oauth_specs()),
    Route("POST", "/v0/management/oauth-callback", finish_login, "openai-chat", protected=False),
    Route("GET", "/v0/management/get-auth-status", login_status, "openai-chat", protected=False),
]
