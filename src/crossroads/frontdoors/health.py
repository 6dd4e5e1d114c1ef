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


async def root(app: App, request: Request) -> Reply:
    return json_reply(200, {"name": "crossroads",
                            "endpoints": ["/v1/chat/completions", "/v1/responses", "/v1/messages",
                                          "/v1beta/models/{model}:generateContent", "/v1/models"]})


ROUTES = [
    Route("GET", "/healthz", healthz, "openai-chat", protected=False),
    Route("GET", "/", root, "openai-chat", protected=False),
]
