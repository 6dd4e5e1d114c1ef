"""Antigravity subscriptions (auth-file type ``antigravity``): Cloud Code
Assist ``v1internal`` (Gemini envelope) serving Gemini and Claude models.

The base URL is the first of ``fallback-base-urls`` (daily, then prod); when
one fails (connection error, timeout, 429, 5xx) the next is tried before the
account counts as failed. ``oauth-endpoints.antigravity.base-url`` and
``fallback-base-urls`` override them; the order is fixed when the account is
built from the config in force.

Login: Google OAuth then project discovery, as Gemini CLI's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import quota
from crossroads.auth.flows import expiry_fields, safe_id
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.spec import MINUTE, LoginResult, OAuthSettings, OAuthSpec
from crossroads.credentials.base import Record
from crossroads.providers import google_quota
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, UpstreamCall
from crossroads.providers.cloudcode_assist import (
    GOOGLE_AUTHORIZE,
    GOOGLE_SCOPES,
    GOOGLE_TOKEN,
    USERINFO_URL,
    GoogleFlow,
)
from crossroads.providers.gemini_cli import cloudcode_url, project_of
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "antigravity/1.11.5 linux/amd64"
MODELS = ["gemini-3-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
          "claude-sonnet-4-5", "claude-sonnet-4-5-thinking", "claude-opus-4-5-thinking"]


DAILY = "https://daily-cloudcode-pa.googleapis.com"
PROD = "https://cloudcode-pa.googleapis.com"
DEFAULT_LIFETIME = 3599  # seconds, when the token reply names none


class AntigravityFlow(GoogleFlow):
    def record(self, reply: dict[str, Any], email: str, project: str, auto: bool) -> LoginResult:
        """Antigravity's layout: flat tokens with ``expires_in`` and a ms ``timestamp``."""
        now = time.time()
        lifetime = reply.get("expires_in") if isinstance(reply.get("expires_in"), int | float) else DEFAULT_LIFETIME
        data = {"type": "antigravity", "email": email, "project_id": project, "access_token": reply["access_token"],
                "refresh_token": reply.get("refresh_token", ""), "expires_in": lifetime,
                "timestamp": int(now * 1000), "expired": expiry_fields(reply, now).get("expired", "")}
        return LoginResult(safe_id("antigravity", email or project), data)


OAUTH = OAuthSpec(
    "antigravity",
    OAuthSettings(
        "antigravity", client_id="1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
        authorize_url=GOOGLE_AUTHORIZE, token_url=GOOGLE_TOKEN, base_url=DAILY,
        scopes=(*GOOGLE_SCOPES, "https://www.googleapis.com/auth/cclog",
                "https://www.googleapis.com/auth/experimentsandconfigs"),
        callback_port=51121, callback_path="/oauth-callback", lead=5 * MINUTE,
        extra={"userinfo-url": USERINFO_URL, "user-agent": USER_AGENT, "fallback-base-urls": f"{DAILY},{PROD}"}),
    login_names=("antigravity",),
    browser=AntigravityFlow(),
    refresh=RotatingRefresh(),
    options=frozenset({"project_ids"}),
)


class AntigravityProvider(SubscriptionProvider):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "antigravity"
    settings: ClassVar[Mapping[str, Any]] = {
        "antigravity": {"sensitive-words": "system instructions are sent as written"},
        "antigravity-signature-cache-enabled": "thinking signatures are passed on as the client sends them",
        "antigravity-signature-bypass-strict": "thinking signatures are passed on as the client sends them"}
    dialect: ClassVar[str] = "cloudcode"
    credential_wide_markers: ClassVar[tuple[str, ...]] = ("quota exceeded for quota metric",)
    default_base_url: ClassVar[str] = "https://daily-cloudcode-pa.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("antigravity",)
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        project_of(record)
        account = accounts.oauth_account(self, record, MODELS, ctx,
                                         label=f"antigravity:{record.data.get('email') or record.id}")
        listed = ctx.oauth.settings("antigravity").extra.get("fallback-base-urls", "")
        account.params["endpoints"] = endpoint_order(account.base_url, listed)
        return account

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {"authorization": f"Bearer {token}",
                   "user-agent": USER_AGENT}
        urls = [cloudcode_url(base, stream) for base in account.params["endpoints"]]
        return UpstreamCall(url=urls[0], headers=headers, fallback_urls=tuple(urls[1:]))

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        return {**body, "project": project_of(accounts.credential_of(account).record),
                "requestId": f"agent-{uuid.uuid4()}", "userAgent": "antigravity", "requestType": "agent"}


def endpoint_order(base_url: str, fallback_base_urls: str) -> tuple[str, ...]:
    """The account's base URL first, then the rest of ``fallback-base-urls``
    (comma-separated) when the account's URL is one of them (a custom base
    URL stands alone)."""
    listed = [u.strip().rstrip("/") for u in fallback_base_urls.split(",") if u.strip()]
    if base_url not in listed:
        return (base_url,)
    return (base_url, *(u for u in listed if u != base_url))

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        return google_quota.error_windows(status, body)  # RESOURCE_EXHAUSTED names the quota and its delay


PROVIDER = AntigravityProvider()
