"""Liveness endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossroads import __version__
from crossroads.frontdoors.base import Route
from crossroads.http import Reply, Request, json_reply

if TYPE_CHECKING:
    from crossroads.server import App


async def healthz(app: App, request: Request) -> Reply:
    """Liveness for anyone; the version and counts only for a caller with a client key."""
    keys = app.snapshot.keys
    presented = keys.presented(request)
    if not keys.open and (presented is None or not keys.accepts(presented)):
        return json_reply(200, {"status": "ok"})
    return json_reply(200, {"status": "ok", "version": __version__,
                            "accounts": len(app.registry.accounts), "models": len(app.registry.models())})


ROOT_PAGE = (b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Crossroads</title>'
             b'<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
             b'<body style="font-family:system-ui,sans-serif;margin:2rem"><h1>Crossroads</h1>'
             b'<p>An LLM router. <a id="dashboard" href="/management.html">Open the dashboard</a>.</p>'
             b'</body></html>')


async def root(app: App, request: Request) -> Reply:
    """A browser gets a page linking the dashboard; anything else the JSON summary."""
    if "text/html" in request.headers.get("accept", ""):
        return Reply(200, ROOT_PAGE, content_type=b"text/html; charset=utf-8")
    return json_reply(200, {"name": "crossroads", "dashboard": "/management.html",
                            "endpoints": ["/v1/chat/completions", "/v1/responses", "/v1/messages",
                                          "/v1beta/models/{model}:generateContent", "/v1/models"]})


ROUTES = [
    Route("GET", "/healthz", healthz, "openai-chat", protected=False),
    Route("GET", "/", root, "openai-chat", protected=False),
]
