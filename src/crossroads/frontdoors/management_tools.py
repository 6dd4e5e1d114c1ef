"""Management API, CLIProxyAPI's tool routes (``/v0/management``):

- ``GET usage-queue?count=``: pops the oldest usage records this worker
  still holds (see crossroads.observe.usage_queue);
- ``GET api-key-usage``: per API-key account (``{provider: {"base_url|key":
  {success, failed, recent_requests}}}``, twenty 10-minute buckets), from the
  usage database every worker shares; keys are masked like every answer;
- ``POST api-call``: an HTTP call made for the caller, with ``$TOKEN$`` in
  its headers replaced by the token of the account named by ``auth_index``
  (an account id or label, or an auth file's name), through that account's
  proxy; the answer is ``{status_code, header, body}``;
- ``DELETE oauth-session?state=``: abandons a login in progress;
- ``GET latest-version``: the running version (a self-hosted router does not
  look for releases on the internet).
"""

from __future__ import annotations

import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp

from crossroads import __version__, ir
from crossroads.frontdoors.base import Route, json_body
from crossroads.frontdoors.management import _authorize, _usage_store
from crossroads.http import Reply, Request, json_reply
from crossroads.observe.usage_sql import Query
from crossroads.providers import Account

if TYPE_CHECKING:
    from crossroads.server import App

PREFIX = "/v0/management/"
BUCKET = 600  # seconds in a recent-requests bucket, as CLIProxyAPI
BUCKETS = 20
MAX_BODY = 4 * 1024 * 1024  # api-call: the most of an answer relayed
TOKEN = "$TOKEN$"


async def usage_queue(app: App, request: Request) -> Reply:
    _authorize(app, request)
    count = request.query.get("count", "1").strip() or "1"
    if not count.isdigit() or int(count) <= 0:
        raise ir.bad_request("count must be a positive integer", param="count")
    return json_reply(200, app.runtime.observer.usage_queue.pop(int(count)))


async def api_key_usage(app: App, request: Request) -> Reply:
    _authorize(app, request)
    store = _usage_store(app)
    await store.flush()
    now = time.time()
    first = (int(now) // BUCKET - (BUCKETS - 1)) * BUCKET
    totals = {r["account"]: r for r in await store.db.grouped(Query(groups=("account",)))}
    recent: dict[str, list[dict[str, Any]]] = {}
    for row in await store.db.rows(Query(since=first)):
        if row.account is None:
            continue
        buckets = recent.setdefault(row.account, _empty_buckets(first))
        index = min(BUCKETS - 1, max(0, int(row.ts - first) // BUCKET))
        buckets[index]["failed" if row.failed else "success"] += 1
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for account in app.registry.accounts:
        if account.credential is not None:  # logins are auth files, not API keys
            continue
        total = totals.get(account.label) or {"requests": 0, "failed": 0}
        entry = out.setdefault(account.provider.config_key, {}).setdefault(
            f"{account.base_url}|{account.secret}", {"success": 0, "failed": 0, "recent_requests": _empty_buckets(first)})
        entry["success"] += total["requests"] - total["failed"]
        entry["failed"] += total["failed"]
        for mine, theirs in zip(entry["recent_requests"], recent.get(account.label, ()), strict=False):
            mine["success"] += theirs["success"]
            mine["failed"] += theirs["failed"]
    return json_reply(200, out)


def _empty_buckets(first: int) -> list[dict[str, Any]]:
    def label(start: int) -> str:
        return time.strftime("%H:%M", time.gmtime(start))

    return [{"time": f"{label(first + i * BUCKET)}-{label(first + (i + 1) * BUCKET)}", "success": 0, "failed": 0}
            for i in range(BUCKETS)]


async def api_call(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = json_body(request)
    method = str(body.get("method") or "").strip().upper()
    if not method.isalpha():
        raise ir.bad_request("missing method", param="method")
    url = str(body.get("url") or "").strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ir.bad_request("invalid url: an absolute http(s) URL is needed", param="url")
    headers = body.get("header") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ir.bad_request("'header' must be a map of header names to strings", param="header")
    data = body.get("data") or ""
    if not isinstance(data, str):
        raise ir.bad_request("'data' must be a string (the raw request body)", param="data")
    index = next((str(body[k]).strip() for k in ("auth_index", "authIndex", "AuthIndex") if body.get(k)), "")
    account = _account(app, index) if index else None
    if account is not None and any(TOKEN in v for v in headers.values()):
        token = await _token(account)
        headers = {k: v.replace(TOKEN, token) for k, v in headers.items()}
    proxy = str(body.get("proxy_url") or "").strip() or (account.proxy_url if account is not None else None)
    app.runtime.observer.audit(request.client_host, f"api-call {method} {parsed.scheme}://{parsed.netloc}"
                                                    + (f" as {account.label}" if account is not None else ""))
    try:
        response = await app.runtime.transport.request(method, url, data.encode() or None,
                                                       {str(k): v for k, v in headers.items()}, proxy)
        async with response:
            content = await response.content.read(MAX_BODY)
            answer = {"status_code": response.status,
                      "header": {str(name): response.headers.getall(name) for name in set(response.headers)},
                      "body": content.decode("utf-8", "replace")}
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ir.Error(502, "server_error", f"request failed: {type(exc).__name__}") from None
    return json_reply(200, answer)


def _account(app: App, index: str) -> Account | None:
    """The account an ``auth_index`` names: its id, its label, or its auth file."""
    name = index.removesuffix(".json")
    for account in app.registry.accounts:
        if index in (account.id, account.label) or getattr(account.credential, "id", None) == name:
            return account
    return None


async def _token(account: Account) -> str:
    if account.credential is None:
        return account.secret
    try:
        token = str(await account.credential.token())
    except ir.Error as exc:
        raise ir.bad_request(f"auth token refresh failed: {exc.message}") from None
    if not token:
        raise ir.bad_request("auth token not found")
    return token


async def cancel_login(app: App, request: Request) -> Reply:
    _authorize(app, request)
    state = request.query.get("state", "").strip()
    if not state:
        raise ir.bad_request("missing state", param="state")
    return json_reply(200, {"status": "ok", "cancelled": app.runtime.logins.cancel(state)})


async def latest_version(app: App, request: Request) -> Reply:
    _authorize(app, request)
    return json_reply(200, {"latest-version": __version__, "current-version": __version__})


def _route(method: str, name: str, handler: Any) -> Route:
    return Route(method, PREFIX + name, handler, "openai-chat", protected=False)


ROUTES = [
    _route("GET", "usage-queue", usage_queue),
    _route("GET", "api-key-usage", api_key_usage),
    _route("POST", "api-call", api_call),
    _route("DELETE", "oauth-session", cancel_login),
    _route("GET", "latest-version", latest_version),
]
