"""Kimi (Moonshot) coding subscriptions (auth-file type ``kimi``): OpenAI
chat completions at api.kimi.com/coding/v1 with the OAuth bearer and the
device id the login registered; clients speaking Anthropic Messages are
served by Kimi's Anthropic-compatible endpoint (``/coding/v1/messages``) with
the same credential, so their requests pass through untranslated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crossroads.auth import accounts
from crossroads.providers.base import Account, Provider, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "KimiCLI/0.50 (crossroads)"
ANTHROPIC_VERSION = "2023-06-01"
MODELS = ["kimi-k2", "kimi-k2-thinking", "kimi-k2-turbo-preview"]


def kimi_headers(account: Account, token: str, stream: bool) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {token}",
            "user-agent": USER_AGENT, "x-msh-platform": "crossroads",
            "x-msh-device-id": str(accounts.extra(account).get("device_id") or ""),
            "accept": "text/event-stream" if stream else "application/json"}


class KimiProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "kimi"
    dialect: ClassVar[str] = "openai-chat"
    default_base_url: ClassVar[str] = "https://api.kimi.com/coding/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("kimi",)
    models: ClassVar[list[str]] = MODELS

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        headers = kimi_headers(account, await accounts.bearer(account), stream)
        headers.update(account.headers)
        return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)


    def for_ingress(self, dialect: str) -> Provider:
        return ANTHROPIC if dialect == "anthropic" else self


class KimiAnthropicProvider(KimiProvider):
    """The same accounts, seen from an Anthropic client."""

    dialect: ClassVar[str] = "anthropic"
    forwarded_headers: ClassVar[tuple[str, ...]] = ("anthropic-beta",)
    auth_types: ClassVar[tuple[str, ...]] = ()  # KimiProvider loads the auth files

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        headers = kimi_headers(account, await accounts.bearer(account), stream)
        headers["anthropic-version"] = client_headers.get("anthropic-version") or ANTHROPIC_VERSION
        beta = client_headers.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        headers.update(account.headers)
        return UpstreamCall(url=f"{account.base_url}/messages", headers=headers)

    def for_ingress(self, dialect: str) -> Provider:
        return self if dialect == "anthropic" else PROVIDER


PROVIDER = KimiProvider()
ANTHROPIC = KimiAnthropicProvider()
