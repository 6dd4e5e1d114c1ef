"""Token-endpoint requests and the errors they produce."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from crossroads.auth.spec import Encoding
from crossroads.auth.tokens import TokenGrant

# Error codes meaning "this refresh token will never work again".
DEAD_GRANT_CODES = frozenset({"invalid_grant", "refresh_token_expired", "refresh_token_reused",
                              "refresh_token_invalidated", "invalid_refresh_token"})
TIMEOUT = aiohttp.ClientTimeout(total=30)


class OAuthError(Exception):
    """A token/device endpoint refused. ``code`` is the OAuth error code."""

    def __init__(self, code: str, description: str = "", status: int = 400) -> None:
        self.code = code
        self.description = description
        self.status = status
        super().__init__(f"{code}: {description}" if description else code)

    @property
    def needs_login(self) -> bool:
        return self.code in DEAD_GRANT_CODES


class LoginError(Exception):
    """A login flow failed in a way the user can act on (message says how)."""


async def post(url: str, params: Mapping[str, Any], *, encoding: Encoding = "form",
               headers: Mapping[str, str] | None = None,
               basic_auth: tuple[str, str] | None = None) -> dict[str, Any]:
    """POST to an OAuth endpoint and return the JSON reply; raise OAuthError
    with the endpoint's error code on failure (never echoing secrets)."""
    sent = {"accept": "application/json", **(headers or {})}
    if encoding == "json":
        data: bytes = orjson.dumps(dict(params))
        sent["content-type"] = "application/json"
    else:
        data = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}).encode()
        sent["content-type"] = "application/x-www-form-urlencoded"
    if basic_auth is not None:
        pair = f"{basic_auth[0]}:{basic_auth[1]}".encode()
        sent["authorization"] = "Basic " + base64.b64encode(pair).decode()
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                session.post(url, data=data, headers=sent) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OAuthError("unreachable", f"{_host(url)}: {type(exc).__name__}", 503) from None
    return _reply(url, status, body)


async def get_json(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                session.get(url, headers=headers) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OAuthError("unreachable", f"{_host(url)}: {type(exc).__name__}", 503) from None
    return _reply(url, status, body)


def _reply(url: str, status: int, body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        if status >= 400:
            raise OAuthError("http_error", f"{_host(url)} answered HTTP {status}", status)
        raise OAuthError("bad_response", f"{_host(url)} sent a non-JSON reply", status)
    error = parsed.get("error")
    if status >= 400 or (error and not parsed.get("access_token")):
        raise _error_of(parsed, status, url)
    return parsed


def _error_of(parsed: dict[str, Any], status: int, url: str) -> OAuthError:
    error = parsed.get("error")
    description = parsed.get("error_description") or ""
    if isinstance(error, dict):  # {"error": {"code"|"type", "message"}}
        description = str(error.get("message") or description)
        error = error.get("code") or error.get("type")
    code = str(error or f"http_{status}")
    return OAuthError(code, str(description)[:300] or f"{_host(url)} answered HTTP {status}", status)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def grant_from(reply: Mapping[str, Any], keep: tuple[str, ...] = ()) -> TokenGrant:
    access = reply.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("bad_response", "the token endpoint returned no access_token")
    expires = reply.get("expires_in")
    refresh = reply.get("refresh_token")
    id_token = reply.get("id_token")
    return TokenGrant(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_in=float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool)
        else _number(expires),
        id_token=id_token if isinstance(id_token, str) and id_token else None,
        extra={key: reply[key] for key in keep if reply.get(key) is not None},
    )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
