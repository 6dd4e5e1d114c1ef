"""Management API, CLIProxyAPI's config routes (``/v0/management``):

- ``GET config`` (the running config as JSON), ``GET|PUT config.yaml`` (the
  file; a PUT is validated as a reload would be, then applied: a bad one is
  refused with its message and the running config stays);
- single settings: ``GET`` answers ``{"<key>": value}``, ``PUT``/``PATCH``
  take ``{"value": ...}`` (``proxy-url`` also ``DELETE``);
- ``api-keys``: ``GET``; ``PUT`` a list (or ``{"items": [...]}``); ``PATCH``
  ``{"old", "new"}`` or ``{"index", "value"}``; ``DELETE ?index=`` or ``?value=``;
- logs: ``GET logs?after=&limit=`` (``main.log`` with ``logging-to-file``),
  ``DELETE logs``, ``GET request-error-logs``, ``GET request-error-logs/<name>``,
  ``GET request-log-by-id/<id>``.

A change edits the YAML mapping and writes it where the config lives (the
file, which a database store then takes up), so comments in the file are not
kept. Every change is written to the audit log.
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from crossroads import config as config_module
from crossroads import ir
from crossroads.frontdoors.base import Route
from crossroads.frontdoors.management import _authorize, reset_quota
from crossroads.http import Reply, Request, json_reply
from crossroads.observe.logfiles import ERROR_PREFIX, MAIN_LOG

if TYPE_CHECKING:
    from crossroads.server import App

PREFIX = "/v0/management/"
APPLY_TIMEOUT = 10.0  # seconds to wait for the reloader to take a written config up
OK = {"status": "ok"}


# ---------------------------------------------------------------- writing the config


async def apply_config(app: App, text: str, what: str, request: Request) -> None:
    """Validate ``text`` as a reload would, write it where the config lives and
    wait until the server runs it; ir.Error 422 (nothing changed) if it is refused."""
    source = "config.yaml (management API)"
    try:
        if config_module.is_blank(text):
            raise config_module.ConfigError(f"{source}: the config is empty")
        cfg = config_module.parse(text, source=source)
        app.runtime.vet(app.runtime.build(cfg))
    except config_module.ConfigError as exc:
        raise ir.Error(422, "invalid_request", f"invalid config, the running config stays: {exc}") from None
    if app.config_path:
        await asyncio.to_thread(_replace_file, Path(app.config_path), text)
    elif app.runtime.store is not None:
        await app.runtime.store.write_config(text)
    else:
        raise ir.Error(409, "invalid_request", "this server runs without a config file; nothing to write to")
    app.runtime.observer.audit(request.client_host, what)
    deadline = time.monotonic() + APPLY_TIMEOUT
    while app.config.raw != cfg.raw:
        if time.monotonic() > deadline:
            raise ir.Error(503, "overloaded", "the config was written but not applied yet; see the server log")
        await asyncio.sleep(0.05)


def _replace_file(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.new")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


async def edit_config(app: App, request: Request, what: str, change: Callable[[dict[str, Any]], None]) -> Reply:
    raw = copy.deepcopy(app.config.raw)
    change(raw)
    await apply_config(app, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), what, request)
    return json_reply(200, OK)


def any_json(request: Request) -> Any:
    """The body as JSON (anything), None when empty; a 400 when it is not JSON."""
    try:
        return orjson.loads(request.body) if request.body else None
    except orjson.JSONDecodeError as exc:
        raise ir.bad_request(f"body is not valid JSON: {exc}") from None


# ---------------------------------------------------------------- whole config


async def get_config(app: App, request: Request) -> Reply:
    _authorize(app, request)
    return json_reply(200, app.config.raw)  # secrets are masked on the way out, as in every management answer


async def get_config_yaml(app: App, request: Request) -> Reply:
    _authorize(app, request)
    text = yaml.safe_dump(app.config.raw, sort_keys=False, allow_unicode=True)
    if app.config_path and Path(app.config_path).exists():
        text = await asyncio.to_thread(Path(app.config_path).read_text, encoding="utf-8")
    return Reply(200, text.encode(), content_type=b"application/yaml; charset=utf-8",
                 headers=[(b"cache-control", b"no-store")])


async def put_config_yaml(app: App, request: Request) -> Reply:
    """A GET showed the file with its secrets masked; those masks, sent back
    unchanged, stand for the secrets they hide (an edited value is taken as it is)."""
    _authorize(app, request)
    try:
        text = request.body.decode("utf-8")
        yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ir.bad_request(f"invalid YAML: {exc}") from None
    current = yaml.safe_dump(app.config.raw, sort_keys=False, allow_unicode=True)
    if app.config_path and Path(app.config_path).exists():
        current = await asyncio.to_thread(Path(app.config_path).read_text, encoding="utf-8")
    for masked, original in app.runtime.redaction.redactor.originals(current).items():
        text = text.replace(masked, original)
    await apply_config(app, text, "replaced config.yaml", request)
    return json_reply(200, {"ok": True, "changed": ["config"]})


# ---------------------------------------------------------------- single settings

# route name -> (config path, kind)
FIELDS: dict[str, tuple[tuple[str, ...], type]] = {
    "debug": (("debug",), bool),
    "logging-to-file": (("logging-to-file",), bool),
    "logs-max-total-size-mb": (("logs-max-total-size-mb",), int),
    "error-logs-max-files": (("error-logs-max-files",), int),
    "usage-statistics-enabled": (("usage-statistics-enabled",), bool),
    "request-log": (("request-log",), bool),
    "ws-auth": (("ws-auth",), bool),
    "request-retry": (("request-retry",), int),
    "max-retry-credentials": (("max-retry-credentials",), int),
    "max-retry-interval": (("max-retry-interval",), int),
    "force-model-prefix": (("force-model-prefix",), bool),
    "proxy-url": (("proxy-url",), str),
    "routing/strategy": (("routing", "strategy"), str),
    "log-format": (("log-format",), str),
    "log-level": (("log-level",), str),
}
DEFAULTS: dict[str, Callable[[config_module.Config], Any]] = {
    "debug": lambda c: c.debug, "request-retry": lambda c: c.request_retry,
    "max-retry-credentials": lambda c: c.max_retry_credentials,
    "max-retry-interval": lambda c: int(c.max_retry_interval), "force-model-prefix": lambda c: c.force_model_prefix,
    "proxy-url": lambda c: c.proxy_url or "", "routing/strategy": lambda c: c.routing_strategy,
    "logging-to-file": lambda c: c.ops.logging_to_file, "request-log": lambda c: c.ops.request_log,
    "logs-max-total-size-mb": lambda c: int(c.ops.logs_max_total_mb),
    "error-logs-max-files": lambda c: c.ops.error_logs_max_files, "log-format": lambda c: c.ops.log_format,
    "log-level": lambda c: c.ops.log_level,
}


def _field(request: Request) -> tuple[str, tuple[str, ...], type]:
    name = request.path[len(PREFIX):]
    path, kind = FIELDS[name]
    return name, path, kind


async def get_field(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name, path, _ = _field(request)
    value: Any = app.config.raw
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if value is None and name in DEFAULTS:
        value = DEFAULTS[name](app.config)
    return json_reply(200, {path[-1] if name == "routing/strategy" else name: value})


async def put_field(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name, path, kind = _field(request)
    body = any_json(request)
    value = body.get("value") if isinstance(body, dict) else None
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ir.bad_request(f"expected {{\"value\": <{kind.__name__}>}}", param="value")

    def change(raw: dict[str, Any]) -> None:
        target = raw
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value

    return await edit_config(app, request, f"set {name}", change)


async def delete_field(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name, path, _ = _field(request)
    return await edit_config(app, request, f"cleared {name}", lambda raw: raw.pop(path[0], None))


# ---------------------------------------------------------------- client keys


def _key_of(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    return entry.get("key") if isinstance(entry, dict) else None


async def get_api_keys(app: App, request: Request) -> Reply:
    _authorize(app, request)
    return json_reply(200, {"api-keys": [k for k in map(_key_of, app.config.raw.get("api-keys") or []) if k]})


async def put_api_keys(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = any_json(request)
    keys = body.get("items") if isinstance(body, dict) else body
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise ir.bad_request("expected a list of client keys, or {\"items\": [...]}")

    def change(raw: dict[str, Any]) -> None:  # keys kept keep their limits and names
        current = {_key_of(e): e for e in raw.get("api-keys") or []}
        raw["api-keys"] = [current.get(k, k) for k in keys]

    return await edit_config(app, request, f"replaced api-keys ({len(keys)} keys)", change)


async def patch_api_keys(app: App, request: Request) -> Reply:
    _authorize(app, request)
    body = any_json(request)
    if not isinstance(body, dict):
        raise ir.bad_request("expected {\"old\": ..., \"new\": ...} or {\"index\": n, \"value\": ...}")
    entries = list(app.config.raw.get("api-keys") or [])
    index, value, old, new = body.get("index"), body.get("value"), body.get("old"), body.get("new")
    if isinstance(index, int) and isinstance(value, str) and value and 0 <= index < len(entries):
        entries[index] = _with_key(entries[index], value)
    elif isinstance(old, str) and isinstance(new, str) and new:
        at = next((i for i, e in enumerate(entries) if _key_of(e) == old), None)
        if at is None:
            entries.append(new)
        else:
            entries[at] = _with_key(entries[at], new)
    else:
        raise ir.bad_request("missing fields: {\"old\", \"new\"} or {\"index\", \"value\"}")
    return await edit_config(app, request, "changed a client key", lambda raw: raw.__setitem__("api-keys", entries))


def _with_key(entry: Any, key: str) -> Any:
    return {**entry, "key": key} if isinstance(entry, dict) else key


async def delete_api_keys(app: App, request: Request) -> Reply:
    _authorize(app, request)
    entries = list(app.config.raw.get("api-keys") or [])
    index, value = request.query.get("index"), request.query.get("value")
    if index is not None and index.isdigit() and int(index) < len(entries):
        del entries[int(index)]
    elif value:
        kept = [e for e in entries if _key_of(e) != value]
        if len(kept) == len(entries):
            raise ir.Error(404, "not_found", "no such client key")
        entries = kept
    else:
        raise ir.bad_request("say which key: ?index=N or ?value=KEY")
    return await edit_config(app, request, "removed a client key", lambda raw: raw.__setitem__("api-keys", entries))


# ---------------------------------------------------------------- logs


def _logs_dir(app: App) -> Path:
    return app.config.ops.logs_path()


async def get_logs(app: App, request: Request) -> Reply:
    """``main.log`` lines written after ``after`` (epoch seconds), the newest
    ``limit`` (default 500)."""
    _authorize(app, request)
    if not app.config.ops.logging_to_file:
        raise ir.bad_request("logging to file is disabled (logging-to-file: true writes main.log)")
    try:
        after = float(request.query.get("after") or 0)
        limit = max(1, int(request.query.get("limit") or 500))
    except ValueError:
        raise ir.bad_request("'after' is epoch seconds and 'limit' a number of lines") from None
    path = _logs_dir(app) / MAIN_LOG
    text = await asyncio.to_thread(path.read_text, "utf-8", "replace") if path.exists() else ""
    lines = [line for line in text.splitlines() if line]
    if after:
        lines = [line for line in lines if _line_time(line) > after]
    lines = lines[-limit:]
    latest = max((_line_time(line) for line in lines), default=after)
    return json_reply(200, {"lines": lines, "line-count": len(lines), "latest-timestamp": int(latest)})


def _line_time(line: str) -> float:
    """The time a log line starts with (``2026-12-04 14:14:13,589 ...`` or JSON's ``time``)."""
    stamp = line[:19]
    if line.startswith("{"):
        stamp = line.split('"time":"', 1)[-1][:19]
    try:
        return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return 0.0


async def delete_logs(app: App, request: Request) -> Reply:
    _authorize(app, request)
    directory = _logs_dir(app)
    removed = 0
    for path in directory.glob("main*.log"):
        if path.name == MAIN_LOG:
            await asyncio.to_thread(path.write_text, "")
        else:
            path.unlink(missing_ok=True)
            removed += 1
    app.runtime.observer.audit(request.client_host, "cleared the logs")
    return json_reply(200, {"success": True, "message": "logs cleared", "removed": removed})


async def list_error_logs(app: App, request: Request) -> Reply:
    _authorize(app, request)
    files = sorted(_logs_dir(app).glob(f"{ERROR_PREFIX}*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    return json_reply(200, {"files": [{"name": p.name, "size": p.stat().st_size, "modified": int(p.stat().st_mtime)}
                                      for p in files]})


async def get_error_log(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = request.path.rsplit("/", 1)[1]
    return await _log_file(app, name if name.startswith(ERROR_PREFIX) else "")


async def log_by_id(app: App, request: Request) -> Reply:
    _authorize(app, request)
    wanted = request.path.rsplit("/", 1)[1]
    found = next((p.name for p in _logs_dir(app).glob(f"*-{wanted}.log")), "") if wanted else ""
    return await _log_file(app, found)


async def _log_file(app: App, name: str) -> Reply:
    path = _logs_dir(app) / name
    if not name or "/" in name or name.startswith(".") or not path.is_file():
        raise ir.Error(404, "not_found", "no such log file")
    data = await asyncio.to_thread(path.read_bytes)
    return Reply(200, data, content_type=b"text/plain; charset=utf-8",
                 headers=[(b"content-disposition", f'attachment; filename="{name}"'.encode())])


def _routes() -> list[Route]:
    def route(method: str, name: str, handler: Any, prefix: bool = False) -> Route:
        return Route(method, PREFIX + name, handler, "openai-chat", protected=False, prefix=prefix)

    routes = [route("GET", "config", get_config), route("GET", "config.yaml", get_config_yaml),
              route("PUT", "config.yaml", put_config_yaml),
              route("GET", "api-keys", get_api_keys), route("PUT", "api-keys", put_api_keys),
              route("PATCH", "api-keys", patch_api_keys), route("DELETE", "api-keys", delete_api_keys),
              route("GET", "logs", get_logs), route("DELETE", "logs", delete_logs),
              route("GET", "request-error-logs", list_error_logs),
              route("GET", "request-error-logs/", get_error_log, prefix=True),
              route("GET", "request-log-by-id/", log_by_id, prefix=True),
              route("DELETE", "proxy-url", delete_field),
              # CLIProxyAPI v8's twin of reset-quota (the only /v8/management route served)
              Route("POST", "/v8/management/routing/cooldown/reset", reset_quota, "openai-chat", protected=False)]
    for name in FIELDS:
        routes += [route("GET", name, get_field), route("PUT", name, put_field), route("PATCH", name, put_field)]
    return routes


ROUTES = _routes()
