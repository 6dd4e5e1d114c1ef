"""How each auth-file type turns its stored record into a fresh token.

One small function per type, looked up by the record's ``type``; adding a
provider adds one entry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from crossroads.auth import oauth, settings, tokens
from crossroads.auth.tokens import TokenGrant

RefreshFn = Callable[[dict[str, Any]], Awaitable[TokenGrant]]

_discovered: dict[str, str] = {}  # discovery URL -> token endpoint


async def token_endpoint(kind: settings.OAuthSettings) -> str:
    """The token URL; providers that publish it only through OIDC discovery
    (xAI) have it looked up once per discovery URL."""
    if kind.token_url or not kind.discovery_url:
        return kind.token_url
    found = _discovered.get(kind.discovery_url)
    if found is None:
        from crossroads.auth.device import discover_endpoints
        from crossroads.auth.oauth import LoginError

        try:
            _, found = await discover_endpoints(kind)
        except LoginError as exc:
            raise oauth.OAuthError("unreachable", str(exc), 503) from None
        _discovered[kind.discovery_url] = found
    return found


def _rotating(keep: tuple[str, ...] = (), with_scope: bool = False) -> RefreshFn:
    """The standard ``grant_type=refresh_token`` exchange."""

    async def refresh(data: dict[str, Any]) -> TokenGrant:
        kind = settings.get(str(data.get("type")))
        token = tokens.refresh_token(data)
        if not token:
            raise oauth.OAuthError("invalid_grant", "the credential holds no refresh token")
        params: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": token,
                                  "client_id": kind.client_id}
        if kind.client_secret:
            params["client_secret"] = kind.client_secret
        if with_scope and kind.scopes:
            params["scope"] = " ".join(s for s in kind.scopes if s != "offline_access")
        reply = await oauth.post(await token_endpoint(kind), params, encoding=kind.encoding)
        return oauth.grant_from(reply, keep)

    return refresh


async def _codex(data: dict[str, Any]) -> TokenGrant:
    grant = await _rotating(with_scope=True)(data)
    if grant.id_token:
        grant.extra.update(codex_identity(grant.id_token))
    return grant


async def _iflow(data: dict[str, Any]) -> TokenGrant:
    kind = settings.get("iflow")
    token = tokens.refresh_token(data)
    if not token:
        # cookie-derived records hold only an API key; they do not expire
        raise oauth.OAuthError("invalid_grant", "the iFlow credential holds no refresh token")
    reply = await oauth.post(kind.token_url, {"grant_type": "refresh_token", "refresh_token": token,
                                              "client_id": kind.client_id,
                                              "client_secret": kind.client_secret or None},
                             basic_auth=(kind.client_id, kind.client_secret))
    grant = oauth.grant_from(reply)
    api_key = await _iflow_api_key(kind, grant.access_token)
    if api_key:
        grant.extra["api_key"] = api_key  # iFlow may rotate the key with the token
    return grant


async def _iflow_api_key(kind: settings.OAuthSettings, access_token: str) -> str:
    """The account's current API key (empty when the user-info call fails:
    the stored key keeps serving)."""
    import urllib.parse

    url = kind.extra.get("userinfo-url", "")
    if not url:
        return ""
    try:
        info = await oauth.get_json(f"{url}?{urllib.parse.urlencode({'accessToken': access_token})}",
                                    {"accept": "application/json"})
    except oauth.OAuthError:
        return ""
    user = info.get("data")
    return str(user.get("apiKey") or "") if isinstance(user, dict) else ""


async def _vertex(data: dict[str, Any]) -> TokenGrant:
    from crossroads.auth.vertex import mint_token

    return await mint_token(data)


def codex_identity(id_token: str) -> dict[str, Any]:
    """Account id, plan and email from a ChatGPT id token."""
    claims = tokens.jwt_claims(id_token)
    auth = claims.get("https://api.openai.com/auth")
    auth = auth if isinstance(auth, dict) else {}
    found: dict[str, Any] = {}
    if auth.get("chatgpt_account_id"):
        found["account_id"] = str(auth["chatgpt_account_id"])
    if auth.get("chatgpt_plan_type"):
        found["plan_type"] = str(auth["chatgpt_plan_type"])
    if claims.get("email"):
        found["email"] = str(claims["email"])
    return found


REFRESH: dict[str, RefreshFn] = {
    "claude": _rotating(),
    "codex": _codex,
    "gemini": _rotating(),
    "antigravity": _rotating(),
    "qwen": _rotating(keep=("resource_url",)),
    "kimi": _rotating(),
    "xai": _rotating(),
    "iflow": _iflow,
    "vertex": _vertex,
}


def can_refresh(data: dict[str, Any]) -> bool:
    kind = str(data.get("type"))
    if kind == "vertex":
        return isinstance(data.get("service_account"), dict)
    return kind in REFRESH and bool(tokens.refresh_token(data))


def now() -> float:
    return time.time()
