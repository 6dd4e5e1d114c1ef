"""Management API, CLIProxyAPI's upstream lists (``/v0/management/<list>``
for each provider's config list: ``claude-api-key``, ``gemini-api-key``,
``codex-api-key``, ``vertex-api-key``, ``openai-compatibility``, ...):

- ``GET``: ``{"<list>": [...]}`` (keys masked, as in every management answer);
- ``PUT``: the whole list (a JSON array, or ``{"items": [...]}``);
- ``PATCH``: ``{"index": n, "value": {...}}`` or ``{"match": "<api-key or name>", "value": {...}}``
  replaces one entry;
- ``DELETE``: ``?index=n``, ``?api-key=...`` or ``?name=...``.

and the per-channel maps ``oauth-excluded-models`` (``PATCH {"provider",
"models"}``) and ``oauth-model-alias`` (``PATCH {"provider", "aliases"}``):
``GET``, ``PUT`` (the map, or ``{"items": {...}}``), ``PATCH`` (an empty
list removes the channel), ``DELETE ?provider=``.

Changes go through the same validate-write-apply path as ``config.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crossroads import ir
from crossroads.frontdoors import management
from crossroads.frontdoors.base import Route
from crossroads.frontdoors.management import _authorize
from crossroads.frontdoors.management_config import PREFIX, any_json, edit_config
from crossroads.http import Reply, Request, json_reply
from crossroads.providers import all_providers

if TYPE_CHECKING:
    from crossroads.server import App


def _list_name(request: Request) -> str:
    return request.path[len(PREFIX):]


def _identity(entry: Any) -> set[str]:
    """What a client may name an entry by: its key(s) or its name."""
    if not isinstance(entry, dict):
        return set()
    names = {entry.get("api-key"), entry.get("name")}
    names |= {e.get("api-key") for e in entry.get("api-key-entries") or [] if isinstance(e, dict)}
    return {n for n in names if isinstance(n, str) and n}


def _find(entries: list[Any], name: str, match: str) -> int:
    for at, entry in enumerate(entries):
        if match in _identity(entry):
            return at
    raise ir.Error(404, "not_found", f"no {name} entry matches")


def _entries(app: App, name: str) -> list[Any]:
    return list(app.config.raw.get(name) or [])


async def get_list(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    return json_reply(200, {name: _entries(app, name)})


async def put_list(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    body = any_json(request)
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise ir.bad_request(f"expected a list of {name} entries (mappings), or {{\"items\": [...]}}")
    return await edit_config(app, request, f"replaced {name} ({len(items)} entries)",
                             lambda raw: raw.__setitem__(name, items))


async def patch_list(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    body = any_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("value"), dict):
        raise ir.bad_request("expected {\"index\": n, \"value\": {...}} or {\"match\": KEY_OR_NAME, \"value\": {...}}")
    entries = _entries(app, name)
    index, match = body.get("index"), body.get("match")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(entries):
        at = index
    elif isinstance(match, str) and match:
        at = _find(entries, name, match)
    else:
        raise ir.bad_request("say which entry: a valid \"index\" or a \"match\"")
    entries[at] = body["value"]
    return await edit_config(app, request, f"changed {name}[{at}]", lambda raw: raw.__setitem__(name, entries))


async def delete_entry(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    entries = _entries(app, name)
    index, match = request.query.get("index"), request.query.get("api-key") or request.query.get("name")
    if index is not None and index.isdigit() and int(index) < len(entries):
        at = int(index)
    elif match:
        at = _find(entries, name, match)
    else:
        raise ir.bad_request("say which entry: ?index=N, ?api-key=KEY or ?name=NAME")
    del entries[at]
    return await edit_config(app, request, f"removed {name}[{at}]", lambda raw: raw.__setitem__(name, entries))


# map name -> the field a PATCH carries the channel's list in
MAPS = {"oauth-excluded-models": "models", "oauth-model-alias": "aliases"}


def _map(app: App, name: str) -> dict[str, Any]:
    current = app.config.raw.get(name)
    return dict(current) if isinstance(current, dict) else {}


async def get_map(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    return json_reply(200, {name: _map(app, name)})


async def put_map(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    body = any_json(request)
    items = body.get("items", body) if isinstance(body, dict) else None
    if not isinstance(items, dict) or not all(isinstance(v, list) for v in items.values()):
        raise ir.bad_request(f"expected {{channel: [...]}} for {name}")
    return await edit_config(app, request, f"replaced {name}", lambda raw: raw.__setitem__(name, items))


async def patch_map(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    body = any_json(request)
    field = MAPS[name]
    channel = body.get("provider") or body.get("channel") if isinstance(body, dict) else None
    values = body.get(field, body.get("value")) if isinstance(body, dict) else None
    if not isinstance(channel, str) or not channel.strip() or not isinstance(values, list):
        raise ir.bad_request(f"expected {{\"provider\": CHANNEL, \"{field}\": [...]}}")
    channel = channel.strip().lower()
    entries = _map(app, name)
    if values:
        entries[channel] = values
    elif entries.pop(channel, None) is None:
        raise ir.Error(404, "not_found", "provider not found")
    return await edit_config(app, request, f"changed {name}.{channel}", lambda raw: raw.__setitem__(name, entries))


async def delete_map_entry(app: App, request: Request) -> Reply:
    _authorize(app, request)
    name = _list_name(request)
    channel = (request.query.get("provider") or request.query.get("channel") or "").strip().lower()
    entries = _map(app, name)
    if entries.pop(channel, None) is None:
        raise ir.Error(404, "not_found", "provider not found")
    return await edit_config(app, request, f"removed {name}.{channel}", lambda raw: raw.__setitem__(name, entries))


def list_routes() -> list[Route]:
    """One set of routes per provider that reads a config list (not auth files), and the maps."""
    names = [p.config_key for p in all_providers() if not p.auth_types]
    taken = {(route.method, route.path) for route in management.ROUTES}  # their own route wins
    return [Route(method, PREFIX + name, handler, "openai-chat", protected=False)
            for name in names
            for method, handler in (("GET", get_list), ("PUT", put_list), ("PATCH", patch_list),
                                    ("DELETE", delete_entry))
            if (method, PREFIX + name) not in taken] + [
        Route(method, PREFIX + name, handler, "openai-chat", protected=False)
        for name in MAPS
        for method, handler in (("GET", get_map), ("PUT", put_map), ("PATCH", patch_map),
                                ("DELETE", delete_map_entry))]


ROUTES = list_routes()
