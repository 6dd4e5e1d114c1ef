"""iFlow's cookie login: a logged-in browser cookie (``BXAuth=...``) is
exchanged for the account's API key on the iFlow platform."""

from __future__ import annotations

import time
from typing import Any

from crossroads.auth import oauth, settings, tokens
from crossroads.auth.flows import LoginResult, safe_id
from crossroads.auth.oauth import LoginError, OAuthError


async def login_with_cookie(cookie: str) -> LoginResult:
    cookie = cookie.strip()
    if "BXAuth=" not in cookie:
        raise LoginError("the iFlow cookie must contain BXAuth=...; copy it from a logged-in browser")
    url = settings.get("iflow").extra["apikey-url"]
    try:
        reply = await oauth.get_json(url, {"cookie": cookie, "accept": "application/json"})
    except OAuthError as exc:
        raise LoginError(f"iFlow refused the cookie: {exc}") from None
    data = reply.get("data") if isinstance(reply.get("data"), dict) else None
    if not reply.get("success", True) or not isinstance(data, dict) or not data.get("apiKey"):
        raise LoginError("iFlow sent no API key for this cookie (expired cookie?)")
    record: dict[str, Any] = {"type": "iflow", "api_key": str(data["apiKey"]), "cookie": cookie,
                              "email": str(data.get("name") or ""),
                              "last_refresh": tokens.format_time(time.time())}
    expiry = tokens.parse_time(data.get("expireTime"))
    if expiry is not None:
        record["expired"] = tokens.format_time(expiry)
    return LoginResult(safe_id("iflow", record["email"] or "cookie"), record)
