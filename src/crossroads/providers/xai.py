"""xAI Grok subscriptions (auth-file type ``xai``): the Responses endpoint of
Grok's CLI proxy with the OAuth bearer.

Login: device code, with the device and token endpoints from x.ai's OIDC
discovery document (refused when it points outside x.ai)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.auth.device import StandardDeviceFlow
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.spec import MINUTE, OAuthSettings, OAuthSpec
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

MODELS = ["grok-4", "grok-4-fast-reasoning", "grok-code-fast-1"]


OAUTH = OAuthSpec(
    "xai",
    OAuthSettings(
        "xai", client_id="b1a00492-073a-47ea-816f-4c329264a828",
        discovery_url="https://auth.x.ai/.well-known/openid-configuration",
        base_url="https://cli-chat-proxy.grok.com/v1",
        scopes=("openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"),
        lead=5 * MINUTE),
    login_names=("xai",),
    device=StandardDeviceFlow(),
    refresh=RotatingRefresh(),
    discovery_domain="x.ai",
)


class XaiProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "xai"
    settings: ClassVar[Mapping[str, Any]] = {"xai": {"inject-x-search": "no x_search tool is injected"}}
    dialect: ClassVar[str] = "openai-responses"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai",)
    default_base_url: ClassVar[str] = "https://cli-chat-proxy.grok.com/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("xai",)
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {"authorization": f"Bearer {token}",
                   "user-agent": "grok-cli/1.0 (crossroads)"}
        return UpstreamCall(url=f"{account.base_url}/responses", headers=headers)


PROVIDER = XaiProvider()
