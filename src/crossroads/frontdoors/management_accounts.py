"""Management API, CLIProxyAPI's auth-file routes (``/v0/management``):

- ``GET auth-files``: every stored account with its status (active,
  disabled, cooling, refresh failing, needs login), cooldowns, expiry, plan
  and routing fields;
- ``GET auth-files/download?name=``: the file, secrets masked;
- ``GET auth-files/models?name=``: the models its accounts serve;
- ``POST auth-files``: upload (multipart ``file`` field, or the JSON as the
  body with ``?name=``);
- ``DELETE auth-files?name=`` (or ``?all=true``);
- ``PATCH auth-files/status`` ``{"name", "disabled"}`` and ``PATCH
  auth-files/fields`` ``{"name", "prefix", "priority", "weight",
  "excluded_models", "proxy_url"}``.

Writes go to the credential store; the server takes them up as it takes up
any change of the store (hot reload). Every change is audited.
"""

from __future__ import annotations

import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

import orjson

from crossroads import ir
from crossroads.auth import tokens
from crossroads.credentials.base import Record, Store, StoreError, check_id
from crossroads.frontdoors.base import Route, json_body
from crossroads.frontdoors.management import _authorize
from crossroads.http import Reply, Request, json_reply

if TYPE_CHECKING:
    from crossroads.server import App

PREFIX = "/v0/management/"
SUFFIX = ".json"
FIELDS: dict[str, type] = {"prefix": str, "proxy_url": str, "priority": int, "weight": int, "excluded_models": list}


def _store(app: App) -> Store:
    store = app.runtime.store
    if store is None:
        raise ir.Error(503, "overloaded", "the credential store is not open yet; try again")
    return store


def _record_id(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ir.bad_request("say which file: name=<file name>", param="name")
    try:
        return check_id(name.removesuffix(SUFFIX))
    except StoreError as exc:
        raise ir.bad_request(str(exc), param="name") from None


async def _get(app: App, name: object) -> Record:
    record = await _store(app).get(_record_id(name))
    if record is None:
        raise ir.Error(404, "not_found", f"no auth file named {name!r}")
    return record


def _entry(app: App, record: Record) -> dict[str, Any]:
    data = record.data
    now = time.monotonic()
    accounts = [a for a in app.registry.accounts if getattr(a.credential, "id", None) == record.id]
    ids = {a.id for a in accounts}
    cooling = [{"model": model, "seconds_left": round(cd.until - now, 1), "reason": cd.reason}
               for (account, model), cd in app.runtime.health.snapshot().items() if account in ids]
    credential = app.runtime.refresher.credentials.get(record.id)
    refresh = credential.status if credential is not None else ("needs_login" if data.get("needs_login") else "ok")
    disabled = bool(data.get("disabled"))
    status = ("disabled" if disabled else "needs_login" if refresh == "needs_login"
              else "refresh_failing" if refresh == "failing" else "cooling" if cooling else "active")
    expires_at = tokens.expires_at(data)
    return {
        "id": record.id, "name": record.id + SUFFIX, "type": record.type, "provider": record.type,
        "email": data.get("email"), "label": accounts[0].label if accounts else None,
        "status": status, "disabled": disabled, "unavailable": bool(cooling) or refresh == "needs_login",
        "needs_login": refresh == "needs_login",
        "status_message": credential.last_error if credential is not None and credential.last_error else None,
        "cooldowns": cooling, "expired": tokens.format_time(expires_at) if expires_at else None,
        "plan": data.get("plan") or data.get("plan_type") or data.get("account_type"),
        "prefix": data.get("prefix"), "priority": data.get("priority", 0), "weight": data.get("weight", 1),
        "excluded_models": data.get("excluded_models") or [], "proxy_url": data.get("proxy_url"),
        "models": sorted({name for a in accounts for name in a.routes}),
    }


async def list_files(app: App, request: Request) -> Reply:
    _authorize(app, request)
    records = sorted(await _store(app).list(), key=lambda r: r.id)
    return json_reply(200, {"files": [_entry(app, r) for r in records]})


async def download(app: App, request: Request) -> Reply:
    """The file as stored; its tokens are masked like every management answer."""
    _authorize(app, request)
    record = await _get(app, request.query.get("name"))
    return Reply(200, orjson.dumps(record.data, option=orjson.OPT_INDENT_2),
                 headers=[(b"content-disposition", f'attachment; filename="{record.id}{SUFFIX}"'.encode())])


async def models(app: App, request: Request) -> Reply:
    """The models an auth file's accounts serve (client-facing name and the upstream's)."""
    _authorize(app, request)
    record = await _get(app, request.query.get("name"))
    routes = {(name, route.upstream) for a in app.registry.accounts if getattr(a.credential, "id", None) == record.id
              for name, route in a.routes.items()}
    return json_reply(200, {"models": [{"id": name, "upstream_model": upstream} for name, upstream in sorted(routes)]})


async def upload(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name, content = _uploaded(request)
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ir.bad_request(f"the auth file is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) or not data["type"]:
        raise ir.bad_request("an auth file is a JSON object with a 'type' (claude, codex, gemini, ...)")
    record_id = _record_id(name)
    try:
        await _store(app).put(Record(record_id, data))
    except StoreError as exc:
        raise ir.Error(503, "overloaded", f"the store refused the file: {exc}") from None
    app.runtime.observer.audit(request.client_host, f"uploaded auth file {record_id}{SUFFIX}")
    return json_reply(200, {"status": "ok", "name": record_id + SUFFIX})


def _uploaded(request: Request) -> tuple[str, bytes]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode("latin-1") + request.body)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                payload = part.get_payload(decode=True)
                filename = part.get_filename() or request.query.get("name") or ""
                return filename, payload if isinstance(payload, bytes) else b""
        raise ir.bad_request("the form has no 'file' field")
    return request.query.get("name") or "", request.body


async def delete_files(app: App, request: Request) -> Reply:
    _authorize(app, request)
    store = _store(app)
    if request.query.get("all") in ("true", "1"):
        records = await store.list()
        for record in records:
            await store.delete(record.id)
        app.runtime.observer.audit(request.client_host, f"deleted every auth file ({len(records)})")
        return json_reply(200, {"status": "ok", "deleted": len(records)})
    record = await _get(app, request.query.get("name"))
    await store.delete(record.id)
    app.runtime.observer.audit(request.client_host, f"deleted auth file {record.id}{SUFFIX}")
    return json_reply(200, {"status": "ok", "deleted": 1})


async def set_status(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = json_body(request)
    disabled = body.get("disabled")
    if not isinstance(disabled, bool):
        raise ir.bad_request("expected {\"name\": ..., \"disabled\": true|false}", param="disabled")
    record = await _get(app, body.get("name"))
    await _put(app, record, {**record.data, "disabled": disabled})
    app.runtime.observer.audit(request.client_host,
                               f"{'disabled' if disabled else 'enabled'} auth file {record.id}{SUFFIX}")
    return json_reply(200, {"status": "ok", "disabled": disabled})


async def set_fields(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = {key.replace("-", "_"): value for key, value in json_body(request).items()}
    record = await _get(app, body.pop("name", None))
    changes: dict[str, Any] = {}
    for key, value in body.items():
        kind = FIELDS.get(key)
        if kind is None:
            raise ir.bad_request(f"unknown field {key!r}; editable: {', '.join(FIELDS)}", param=key)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ir.bad_request(f"'{key}' must be {kind.__name__}", param=key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ir.bad_request(f"'{key}' must be a list of model names or wildcards", param=key)
        changes[key] = value
    if not changes:
        raise ir.bad_request(f"nothing to change; editable: {', '.join(FIELDS)}")
    data = {**record.data, **changes}
    for key in [k for k, v in changes.items() if v is None]:
        data.pop(key)
    await _put(app, record, data)
    app.runtime.observer.audit(request.client_host,
                               f"edited {', '.join(sorted(changes))} of auth file {record.id}{SUFFIX}")
    return json_reply(200, {"status": "ok"})


async def _put(app: App, record: Record, data: dict[str, Any]) -> None:
    try:
        await _store(app).put(Record(record.id, data, record.version), expected_version=record.version)
    except StoreError as exc:  # Conflict included: someone changed it meanwhile
        raise ir.Error(409, "invalid_request", f"the file changed meanwhile or could not be saved: {exc}") from None


def _route(method: str, name: str, handler: Any) -> Route:
    return Route(method, PREFIX + name, handler, "openai-chat", protected=False)


ROUTES = [
    _route("GET", "auth-files", list_files),
    _route("POST", "auth-files", upload),
    _route("DELETE", "auth-files", delete_files),
    _route("GET", "auth-files/download", download),
    _route("GET", "auth-files/models", models),
    _route("PATCH", "auth-files/status", set_status),
    _route("PATCH", "auth-files/fields", set_fields),
]
