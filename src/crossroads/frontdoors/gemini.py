"""Gemini front door: /v1beta/models (and /v1/models) actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crossroads import dialects, ir
from crossroads.frontdoors import shapes
from crossroads.frontdoors.base import Route, check_countable, estimate_tokens, json_body
from crossroads.http import Reply, Request, StreamReply, json_reply
from crossroads.pipeline import Inbound
from crossroads.providers.base import ModelRoute

if TYPE_CHECKING:
    from crossroads.server import App

_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def _model_object(name: str, route: ModelRoute | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": f"models/{name}", "version": "001",
             "displayName": (route.display_name if route else None) or name,
             "supportedGenerationMethods": _METHODS}
    if route is not None and route.context:
        found["inputTokenLimit"] = route.context  # the config's max-context-length
    return found


async def list_models(app: App, request: Request) -> Reply:
    return json_reply(200, {"models": [_model_object(name, pool.candidates[0].route)
                                       for name, pool in app.registry.models()]})


async def model_action(app: App, request: Request) -> Reply | StreamReply:
    rest = request.path.split("/models/", 1)[1]
    name, sep, action = rest.partition(":")
    if not sep:
        if request.method != "GET":
            raise ir.Error(404, "not_found", f"unknown path {request.path}")
        if name not in app.registry:
            raise ir.Error(404, "not_found", f"model {name!r} is not served by any configured account")
        pool = app.registry.pool(name)
        return json_reply(200, _model_object(name, pool.candidates[0].route if pool else None))
    if request.method != "POST":
        raise ir.Error(405, "invalid_request", f"{action} needs POST")
    body = json_body(request)
    dialect = dialects.get("gemini")
    if action == "countTokens":
        shapes.GEMINI_COUNT.check(body)
        check_countable(app, request, name)
        inner = body.get("generateContentRequest") or body
        parsed = dialect.parse_request(inner, model=name, stream=False)
        return json_reply(200, {"totalTokens": estimate_tokens(parsed)})
    if action not in ("generateContent", "streamGenerateContent"):
        raise ir.Error(404, "not_found", f"unknown method {action!r}; expected one of {', '.join(_METHODS)}")
    shapes.GEMINI_GENERATE.check(body)
    stream = action == "streamGenerateContent"
    if stream and request.query.get("alt") != "sse":
        dialect = dialects.get("gemini:json-array")
    inbound = Inbound(dialect, body, request.body, name, stream, request.headers, client_key=request.client_key,
                      record=request.record)
    return await app.pipeline.handle(inbound)


ROUTES = [
    Route("GET", "/v1beta/models", list_models, "gemini"),
    Route("POST", "/v1beta/models/", model_action, "gemini", prefix=True),
    Route("GET", "/v1beta/models/", model_action, "gemini", prefix=True),
    # google-genai without api_version="v1beta" calls /v1/models/{model}:action
    Route("POST", "/v1/models/", model_action, "gemini", prefix=True),
]
