"""OpenAI front door: chat completions, legacy completions, Responses, models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossroads import dialects, ir
from crossroads.frontdoors import anthropic, shapes
from crossroads.frontdoors.base import Handler, Route, json_body, model_field, stream_flag
from crossroads.http import Reply, Request, StreamReply, json_reply
from crossroads.pipeline import Inbound

if TYPE_CHECKING:
    from crossroads.server import App


def _door(dialect_name: str, shape: shapes.Shape) -> Handler:
    async def handle(app: App, request: Request) -> Reply | StreamReply:
        body = json_body(request)
        shape.check(body)
        inbound = Inbound(dialects.get(dialect_name), body, request.body, model_field(body),
                          stream_flag(body), request.headers,
                          client_key=request.client_key, record=request.record)
        return await app.pipeline.handle(inbound)

    return handle


async def list_models(app: App, request: Request) -> Reply:
    if "anthropic-version" in request.headers or request.headers.get("user-agent", "").startswith("claude-cli"):
        return await anthropic.list_models(app, request)
    created = int(app.started_at)
    data = [{"id": name, "object": "model", "created": created,
             "owned_by": pool.tiers[0][0].account.provider.config_key} for name, pool in app.registry.models()]
    return json_reply(200, {"object": "list", "data": data})


async def get_model(app: App, request: Request) -> Reply:
    name = request.path[len("/v1/models/"):]
    pool = app.registry.pool(name)
    if not pool:
        raise ir.Error(404, "not_found", f"model {name!r} is not served by any configured account",
                       code="model_not_found")
    if "anthropic-version" in request.headers:
        return json_reply(200, anthropic.model_object(name, app.started_at))
    return json_reply(200, {"id": name, "object": "model", "created": int(app.started_at),
                            "owned_by": pool.tiers[0][0].account.provider.config_key})


ROUTES = [
    Route("POST", "/v1/chat/completions", _door("openai-chat", shapes.OPENAI_CHAT), "openai-chat"),
    Route("POST", "/chat/completions", _door("openai-chat", shapes.OPENAI_CHAT), "openai-chat"),
    Route("POST", "/v1/completions", _door("openai-completions", shapes.OPENAI_COMPLETIONS), "openai-chat"),
    Route("POST", "/v1/responses", _door("openai-responses", shapes.OPENAI_RESPONSES), "openai-responses"),
    Route("POST", "/backend-api/codex/responses", _door("openai-responses", shapes.OPENAI_RESPONSES),
          "openai-responses"),
    Route("GET", "/v1/models", list_models, "openai-chat"),
    Route("GET", "/v1/models/", get_model, "openai-chat", prefix=True),
]
