"""Vertex AI with an API key (`vertex-api-key` entries): Gemini on the
global publisher-model endpoint ``/v1/publishers/google/models/{m}:{action}``
with ``x-goog-api-key`` (no project or region in the path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import quota
from crossroads.providers import google_quota
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import ENTRY_KEYS, simple_accounts
from crossroads.providers.vertex import MODELS


class VertexApiKeyProvider(ProviderBase):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "vertex-api-key"
    dialect: ClassVar[str] = "gemini"
    credential_wide_markers: ClassVar[tuple[str, ...]] = ("quota exceeded for quota metric",)
    default_base_url: ClassVar[str] = "https://aiplatform.googleapis.com"
    entry_keys: ClassVar[Mapping[str, Any] | None] = ENTRY_KEYS

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return simple_accounts(self, entries)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        base = account.base_url if account.base_url.endswith("/v1") else f"{account.base_url}/v1"
        headers = {"x-goog-api-key": account.secret}
        return UpstreamCall(url=f"{base}/publishers/google/models/{model}:{action}", headers=headers)

    def catalogue(self) -> list[str]:
        return MODELS

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        return google_quota.error_windows(status, body)  # RESOURCE_EXHAUSTED names the quota and its delay


PROVIDER = VertexApiKeyProvider()
