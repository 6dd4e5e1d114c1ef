"""Antigravity subscriptions (auth-file type ``antigravity``): Cloud Code
Assist ``v1internal`` (Gemini envelope) serving Gemini and Claude models.

The base URL is the first of ``fallback-base-urls`` (daily, then prod); when
one fails (connection error, timeout, 429, 5xx) the next is tried before the
account counts as failed. ``oauth-endpoints.antigravity.base-url`` and
``fallback-base-urls`` override them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.auth import accounts, settings
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.gemini_cli import cloudcode_url, project_of
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "antigravity/1.11.5 linux/amd64"
MODELS = ["gemini-3-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
          "claude-sonnet-4-5", "claude-sonnet-4-5-thinking", "claude-opus-4-5-thinking"]


class AntigravityProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "antigravity"
    dialect: ClassVar[str] = "cloudcode"
    default_base_url: ClassVar[str] = "https://daily-cloudcode-pa.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("antigravity",)
    models: ClassVar[list[str]] = MODELS

    def account_from_record(self, record: Record) -> Account:
        project_of(record)
        return accounts.oauth_account(self, record, MODELS,
                                      label=f"antigravity:{record.data.get('email') or record.id}")

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}",
                   "user-agent": USER_AGENT}
        if stream:
            headers["accept"] = "text/event-stream"
        headers.update(account.headers)
        urls = [cloudcode_url(base, stream) for base in endpoint_order(account.base_url)]
        return UpstreamCall(url=urls[0], headers=headers, fallback_urls=tuple(urls[1:]))

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        return {**body, "project": project_of(accounts.credential_of(account).record),
                "requestId": f"agent-{uuid.uuid4()}", "userAgent": "antigravity", "requestType": "agent"}



def endpoint_order(base_url: str) -> list[str]:
    """The account's base URL first, then the rest of ``fallback-base-urls``
    when the account's URL is one of them (a custom base URL stands alone)."""
    listed = [u.strip().rstrip("/") for u in
              settings.get("antigravity").extra.get("fallback-base-urls", "").split(",") if u.strip()]
    if base_url not in listed:
        return [base_url]
    return [base_url, *(u for u in listed if u != base_url)]


PROVIDER = AntigravityProvider()
