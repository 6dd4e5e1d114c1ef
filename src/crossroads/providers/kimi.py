"""Kimi (Moonshot) coding subscriptions (auth-file type ``kimi``): OpenAI
chat completions at api.kimi.com/coding/v1 with the OAuth bearer and the
device id the login registered; clients speaking Anthropic Messages are
served by Kimi's Anthropic-compatible endpoint (``/coding/v1/messages``) with
the same credential, so their requests pass through untranslated.

Login: device code; the login registers a device id, sent with the device
requests and with every upstream request afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.auth.device import StandardDeviceFlow
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.spec import MINUTE, DeviceLogin, OAuthSettings, OAuthSpec
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "KimiCLI/0.50 (crossroads)"
ANTHROPIC_VERSION = "2023-06-01"
MODELS = ["kimi-k2", "kimi-k2-thinking", "kimi-k2-turbo-preview"]


class KimiDeviceFlow(StandardDeviceFlow):
    def headers(self, options: dict[str, Any]) -> dict[str, str]:
        return {"X-Msh-Platform": "crossroads", "X-Msh-Device-Id": options.setdefault("device_id", uuid.uuid4().hex)}

    def record_fields(self, login: DeviceLogin) -> dict[str, Any]:
        return {"device_id": login.options.get("device_id", "")}


OAUTH = OAuthSpec(
    "kimi",
    OAuthSettings(
        "kimi", client_id="17e5f671-d194-4dfb-9706-5516cb48c098",
        device_url="https://auth.kimi.com/api/oauth/device_authorization",
        token_url="https://auth.kimi.com/api/oauth/token",
        base_url="https://api.kimi.com/coding/v1", lead=5 * MINUTE),
    login_names=("kimi",),
    device=KimiDeviceFlow(),
    refresh=RotatingRefresh(),
)


class KimiProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "kimi"
    dialect: ClassVar[str] = "openai-chat"
    default_base_url: ClassVar[str] = "https://api.kimi.com/coding/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("kimi",)
    also_speaks: ClassVar[tuple[str, ...]] = ("anthropic",)
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai", "anthropic")
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        headers = {"authorization": f"Bearer {await accounts.bearer(account)}", "user-agent": USER_AGENT,
                   "x-msh-platform": "crossroads",
                   "x-msh-device-id": str(accounts.extra(account).get("device_id") or "")}
        if dialect != "anthropic":
            return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)
        # the Anthropic-compatible endpoint: Anthropic clients pass through untranslated
        headers["anthropic-version"] = client_headers.get("anthropic-version") or ANTHROPIC_VERSION
        beta = client_headers.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        return UpstreamCall(url=f"{account.base_url}/messages", headers=headers)


PROVIDER = KimiProvider()
