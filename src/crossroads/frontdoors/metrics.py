"""``GET /metrics``: Prometheus exposition of the whole server (every worker).

Access: with ``metrics.token`` set, that token (``Authorization: Bearer``)
and nothing else; otherwise the client-key check every API route has.
``metrics.enabled: false`` turns the route off (404).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from crossroads import ir
from crossroads.frontdoors.base import Route
from crossroads.http import Reply, Request
from crossroads.observe.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from crossroads.server import App


async def metrics(app: App, request: Request) -> Reply:
    ops = app.config.ops
    if not ops.metrics_enabled:
        raise ir.Error(404, "not_found", "metrics are disabled (metrics.enabled: false)")
    if ops.metrics_token:
        presented = app.keys.presented(request) or ""
        if not hmac.compare_digest(presented.encode(), ops.metrics_token.encode()):
            raise ir.Error(401, "authentication", "missing or wrong metrics token (Authorization: Bearer TOKEN)")
    elif not app.keys.allows(request):
        raise ir.Error(401, "authentication", "missing or invalid client key", code="invalid_api_key")
    observer = app.runtime.observer
    observer.sample()
    return Reply(200, observer.metrics.exposition(), content_type=CONTENT_TYPE.encode())


ROUTES = [Route("GET", "/metrics", metrics, "openai-chat", protected=False)]
