"""Gemini API with an API key (`gemini-api-key`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import quota
from crossroads.providers import catalogue, google_quota
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import ENTRY_KEYS, simple_accounts


class GeminiProvider(ProviderBase):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "gemini-api-key"
    dialect: ClassVar[str] = "gemini"
    credential_wide_markers: ClassVar[tuple[str, ...]] = ("quota exceeded for quota metric",)
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    entry_keys: ClassVar[Mapping[str, Any] | None] = ENTRY_KEYS

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return simple_accounts(self, entries)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        headers = {"x-goog-api-key": account.secret}
        base = account.base_url
        version = "" if base.endswith(("/v1beta", "/v1")) else "/v1beta"
        return UpstreamCall(url=f"{base}{version}/models/{model}:{action}", headers=headers)

    def catalogue(self) -> list[str]:
        return catalogue.GEMINI

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        return google_quota.error_windows(status, body)  # RESOURCE_EXHAUSTED names the quota and its delay


PROVIDER = GeminiProvider()
