"""OpenAI Responses API with an API key (`codex-api-key`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.providers import catalogue
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import ENTRY_KEYS, simple_accounts


class OpenAIResponsesProvider(ProviderBase):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "codex-api-key"
    dialect: ClassVar[str] = "openai-responses"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai",)
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    entry_keys: ClassVar[Mapping[str, Any] | None] = {
        **ENTRY_KEYS, "alpha-search": "/v1/alpha/search is not served"}

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return simple_accounts(self, entries)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        headers = {"authorization": f"Bearer {account.secret}"}
        beta = client_headers.get("openai-beta")
        if beta:
            headers["openai-beta"] = beta
        return UpstreamCall(url=f"{account.base_url}/responses", headers=headers)

    def catalogue(self) -> list[str]:
        return catalogue.OPENAI_RESPONSES


PROVIDER = OpenAIResponsesProvider()
