"""Reading an upstream's usage endpoint: one GET (or POST) with the account's
credential, a JSON answer or nothing. Providers parse the answer into quota
windows in their own modules."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from crossroads.config import Timeouts
from crossroads.providers.base import Account
from crossroads.transport import Transport

log = logging.getLogger("crossroads.quota")

PROBE_TIMEOUTS = Timeouts(connect=5.0, first_byte=10.0, idle=10.0)


async def fetch_json(transport: Transport, account: Account, url: str, headers: dict[str, str],
                     body: bytes | None = None) -> Any:
    """The endpoint's JSON answer, or None (an error, a non-JSON page, a timeout)."""
    method = "GET" if body is None else "POST"
    try:
        response = await transport.request(method, url, body, {"accept": "application/json", **headers},
                                           account.proxy_url, PROBE_TIMEOUTS)
        try:
            if response.status >= 400:
                log.info("quota: %s usage endpoint answered HTTP %d", account.label, response.status)
                return None
            return orjson.loads(await response.read())
        finally:
            response.release()
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        log.info("quota: %s usage endpoint unreadable (%s)", account.label, type(exc).__name__)
        return None
