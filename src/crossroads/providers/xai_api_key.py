"""xAI's API with an API key (``xai-api-key``): the Responses endpoint of
``api.x.ai/v1`` with the key as a bearer, as CLIProxyAPI sends it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import ENTRY_KEYS, simple_accounts

MODELS = ["grok-4", "grok-4-fast-reasoning", "grok-4-fast-non-reasoning", "grok-code-fast-1", "grok-3-mini"]


class XaiApiKeyProvider(ProviderBase):
    config_key: ClassVar[str] = "xai-api-key"
    dialect: ClassVar[str] = "openai-responses"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai",)
    default_base_url: ClassVar[str] = "https://api.x.ai/v1"
    entry_keys: ClassVar[Mapping[str, Any] | None] = {
        **ENTRY_KEYS, "websockets": "xAI is reached over HTTP; its WebSocket transport is not used"}

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return simple_accounts(self, entries)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        return UpstreamCall(url=f"{account.base_url}/responses",
                            headers={"authorization": f"Bearer {account.secret}"})

    def catalogue(self) -> list[str]:
        return MODELS


PROVIDER = XaiApiKeyProvider()
