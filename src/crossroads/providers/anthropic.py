"""Anthropic Messages API with an API key (`claude-api-key`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.providers import catalogue
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import ENTRY_KEYS, simple_accounts

ANTHROPIC_VERSION = "2023-06-01"
OFFICIAL_HOST = "https://api.anthropic.com"


class AnthropicProvider(ProviderBase):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "claude-api-key"
    signals_every_answer: ClassVar[bool] = True  # rate-limit headers on every answer, 429s included
    dialect: ClassVar[str] = "anthropic"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("anthropic",)
    default_base_url: ClassVar[str] = OFFICIAL_HOST
    entry_keys: ClassVar[Mapping[str, Any] | None] = {
        **ENTRY_KEYS,
        "cloak": "requests are never disguised as Claude Code's",
        "fingerprint-profile": "requests are never disguised as Claude Code's",
        "rebuild-mid-system-message": "system messages are translated as they are"}

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return simple_accounts(self, entries)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        headers = {
            "anthropic-version": client_headers.get("anthropic-version", ANTHROPIC_VERSION),
            "x-api-key": account.secret,
        }
        if account.base_url != OFFICIAL_HOST:
            # Anthropic-compatible gateways mostly want a bearer token.
            headers["authorization"] = f"Bearer {account.secret}"
        beta = client_headers.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        return UpstreamCall(url=f"{account.base_url}/v1/messages", headers=headers)

    def catalogue(self) -> list[str]:
        return catalogue.ANTHROPIC


PROVIDER = AnthropicProvider()
