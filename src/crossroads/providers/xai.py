"""xAI Grok subscriptions (auth-file type ``xai``): the Responses endpoint of
Grok's CLI proxy with the OAuth bearer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crossroads.auth import accounts
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

MODELS = ["grok-4", "grok-4-fast-reasoning", "grok-code-fast-1"]


class XaiProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "xai"
    dialect: ClassVar[str] = "openai-responses"
    default_base_url: ClassVar[str] = "https://cli-chat-proxy.grok.com/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("xai",)
    models: ClassVar[list[str]] = MODELS

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}",
                   "user-agent": "grok-cli/1.0 (crossroads)",
                   "accept": "text/event-stream" if stream else "application/json"}
        headers.update(account.headers)
        return UpstreamCall(url=f"{account.base_url}/responses", headers=headers)



PROVIDER = XaiProvider()
