"""Management API (``/v0/management``): usage, cooldowns, quota reset.

Enabled only when ``remote-management.secret-key`` is set; the key is sent as
``Authorization: Bearer`` or ``X-Management-Key``. Answers only loopback
clients unless ``remote-management.allow-remote`` is true.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from crossroads import ir
from crossroads.frontdoors.base import Route
from crossroads.http import Reply, Request, json_reply
from crossroads.providers.base import mask

if TYPE_CHECKING:
    from crossroads.server import App


def _authorize(app: App, request: Request) -> None:
    secret = app.config.management_secret
    if not secret:
        raise ir.Error(404, "not_found", "the management API is disabled (set remote-management.secret-key)")
    settings = app.config.raw.get("remote-management") or {}
    if not settings.get("allow-remote") and request.client_host not in ("127.0.0.1", "::1", None):
        raise ir.Error(403, "permission", "management is only allowed from localhost")
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-management-key", "")
    if not presented or not hmac.compare_digest(presented.encode(), secret.encode()):
        raise ir.Error(401, "authentication", "missing or wrong management key")


async def usage_report(app: App, request: Request) -> Reply:
    _authorize(app, request)
    ledger = app.pipeline.ledger
    by_key = {mask(k) if k != "-" else k: asdict(v) for k, v in ledger.by_key.items()}
    return json_reply(200, {"by_key": by_key,
                            "by_account": {k: asdict(v) for k, v in ledger.by_account.items()},
                            "by_model": {k: asdict(v) for k, v in ledger.by_model.items()}})


async def cooldowns(app: App, request: Request) -> Reply:
    _authorize(app, request)
    now = time.monotonic()
    rows = [{"account": account, "model": model, "seconds_left": round(cd.until - now, 1), "reason": cd.reason}
            for (account, model), cd in app.pipeline.health.snapshot().items()]
    return json_reply(200, {"cooldowns": rows})


async def reset_quota(app: App, request: Request) -> Reply:
    _authorize(app, request)
    app.pipeline.health.clear()
    return json_reply(200, {"status": "ok"})


ROUTES = [
    Route("GET", "/v0/management/usage", usage_report, "openai-chat", protected=False),
    Route("GET", "/v0/management/cooldowns", cooldowns, "openai-chat", protected=False),
    Route("POST", "/v0/management/reset-quota", reset_quota, "openai-chat", protected=False),
]
