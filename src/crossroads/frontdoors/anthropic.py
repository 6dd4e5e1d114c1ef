"""Anthropic front door: messages, count_tokens, models in Anthropic's shape."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from crossroads import dialects
from crossroads.frontdoors import shapes
from crossroads.frontdoors.base import (
    Route,
    check_countable,
    estimate_tokens,
    json_body,
    model_field,
    stream_flag,
)
from crossroads.http import Reply, Request, StreamReply, json_reply
from crossroads.pipeline import Inbound

if TYPE_CHECKING:
    from crossroads.server import App


async def messages(app: App, request: Request) -> Reply | StreamReply:
    body = json_body(request)
    shapes.ANTHROPIC_MESSAGES.check(body)
    inbound = Inbound(dialects.get("anthropic"), body, request.body, model_field(body),
                      stream_flag(body), request.headers,
                          client_key=request.client_key, record=request.record)
    return await app.pipeline.handle(inbound)


async def count_tokens(app: App, request: Request) -> Reply:
    body = json_body(request)
    shapes.ANTHROPIC_COUNT.check(body)
    model = model_field(body)
    check_countable(app, request, model)
    parsed = dialects.get("anthropic").parse_request(body, model=model, stream=False)
    return json_reply(200, {"input_tokens": estimate_tokens(parsed)})


def model_object(name: str, started_at: float, display_name: str | None = None) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at))
    return {"type": "model", "id": name, "display_name": display_name or name, "created_at": created}


async def list_models(app: App, request: Request) -> Reply:
    data = [model_object(name, app.started_at, pool.candidates[0].route.display_name)
            for name, pool in app.registry.models()]
    return json_reply(200, {"data": data, "has_more": False,
                            "first_id": data[0]["id"] if data else None,
                            "last_id": data[-1]["id"] if data else None})


ROUTES = [
    Route("POST", "/v1/messages", messages, "anthropic"),
    Route("POST", "/v1/messages/count_tokens", count_tokens, "anthropic"),
]
