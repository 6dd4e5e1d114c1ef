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
        reply = await oauth.post(kind.token_url, params, encoding=kind.encoding)
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
    return oauth.grant_from(reply)


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
