"""The standard refresh grant (``grant_type=refresh_token``, RFC 6749 §6)
that most providers use as it is; a provider with its own refresh declares
another :class:`~crossroads.auth.spec.RefreshGrant` in its spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossroads.auth import oauth, tokens
from crossroads.auth.spec import OAuthEntry
from crossroads.auth.tokens import TokenGrant


@dataclass(frozen=True, slots=True)
class RotatingRefresh:
    keep: tuple[str, ...] = ()  # token-reply fields copied onto the record (e.g. a resource URL)
    with_scope: bool = False  # send the scopes again (minus offline_access)
    basic_auth: bool = False  # client credentials also as HTTP Basic (some identity servers want both)

    def can_refresh(self, data: Mapping[str, Any]) -> bool:
        return bool(tokens.refresh_token(dict(data)))

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        conf = entry.settings
        token = tokens.refresh_token(data)
        if not token:
            raise oauth.OAuthError("invalid_grant", "the credential holds no refresh token")
        params: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": token,
                                  "client_id": conf.client_id}
        if conf.client_secret:
            params["client_secret"] = conf.client_secret
        if self.with_scope and conf.scopes:
            params["scope"] = " ".join(s for s in conf.scopes if s != "offline_access")
        basic = (conf.client_id, conf.client_secret) if self.basic_auth else None
        reply = await oauth.post(token_url, params, encoding=conf.encoding, basic_auth=basic)
        return oauth.grant_from(reply, self.keep)
