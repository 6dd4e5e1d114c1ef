"""Kimi (Moonshot) coding subscriptions (auth-file type ``kimi``): OpenAI
chat completions at api.kimi.com/coding with the OAuth bearer and the device
id the login registered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crossroads.auth import accounts
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, ProviderBase, UpstreamCall

USER_AGENT = "KimiCLI/0.50 (crossroads)"
MODELS = ["kimi-k2", "kimi-k2-thinking", "kimi-k2-turbo-preview"]


class KimiProvider(ProviderBase):
    config_key: ClassVar[str] = "kimi"
    dialect: ClassVar[str] = "openai-chat"
    default_base_url: ClassVar[str] = "https://api.kimi.com/coding/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("kimi",)

    def account_from_record(self, record: Record) -> Account:
        return accounts.oauth_account(self, record, MODELS)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}",
                   "user-agent": USER_AGENT, "x-msh-platform": "crossroads",
                   "x-msh-device-id": str(accounts.extra(account).get("device_id") or ""),
                   "accept": "text/event-stream" if stream else "application/json"}
        headers.update(account.headers)
        return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)

    async def on_unauthorized(self, account: Account) -> bool:
        return await accounts.refresh_after_401(account)

    def catalogue(self) -> list[str]:
        return MODELS


PROVIDER = KimiProvider()
