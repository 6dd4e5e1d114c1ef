"""What front doors share: the route record and body decoding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from crossroads import ir
from crossroads.http import Reply, Request, StreamReply
from crossroads.routing import suffix

if TYPE_CHECKING:
    from crossroads.server import App

Handler = Callable[["App", Request], Awaitable[Reply | StreamReply]]


@dataclass(slots=True, frozen=True)
class Route:
    method: str
    path: str  # exact path, or a prefix when ``prefix`` is set
    handler: Handler
    error_dialect: str  # which dialect's error shape this door answers in
    protected: bool = True
    prefix: bool = False
    shipped: bool = False  # answers with files of the package (no secret in them: not masked)


def json_body(request: Request) -> dict[str, Any]:
    if not request.body:
        raise ir.bad_request("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ir.bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ir.bad_request("request body must be a JSON object")
    return body


def model_field(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ir.bad_request("'model' is required and must be a non-empty string", param="model")
    return model


def stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ir.bad_request("'stream' must be a boolean", param="stream")
    return stream


def check_countable(app: App, request: Request, model: str) -> None:
    """A count-tokens request names a model this router serves and this key may use."""
    registry = app.registry
    if suffix.resolve(model, registry.__contains__).model not in registry:
        raise ir.Error(404, "not_found", f"model {model!r} is not served by any configured account "
                                         "(GET /v1/models lists the models available)", param="model",
                       code="model_not_found")
    app.runtime.limiter.check_model(request.client_key, model)


def estimate_tokens(request: ir.Request) -> int:
    """A local estimate (about four characters per token) for count-tokens
    endpoints when no upstream of the same dialect can count exactly."""
    chars = sum(len(p.text) for p in request.system)
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ir.TextPart | ir.ThinkingPart):
                chars += len(part.text)
            elif isinstance(part, ir.ToolCallPart):
                chars += len(part.name) + len(part.arguments)
            elif isinstance(part, ir.ToolResultPart):
                chars += sum(len(c.text) for c in part.content if isinstance(c, ir.TextPart))
            elif isinstance(part, ir.ImagePart):
                chars += 1600 * 4  # a typical image costs ~1.6k tokens
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + len(orjson.dumps(tool.parameters or {}))
    return max(1, (chars + 3) // 4)
