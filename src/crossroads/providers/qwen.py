"""Qwen Code subscriptions (auth-file type ``qwen``): OpenAI chat completions
on the account's ``resource_url`` (default portal.qwen.ai) with the OAuth
bearer and Qwen Code's DashScope headers.

Login: device code with PKCE; the token reply's ``resource_url`` (the
account's API host) is kept on the record, at login and on refresh."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crossroads.auth.device import StandardDeviceFlow
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.spec import MINUTE, OAuthSettings, OAuthSpec
from crossroads.credentials.base import Record
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "QwenCode/0.2.1 (linux; x64)"
MODELS = ["qwen3-coder-plus", "qwen3-coder-flash", "vision-model"]
REQUESTS_PER_MINUTE = 60  # Qwen Code's own client-side limit per credential




def resource_base(resource_url: str) -> str:
    url = resource_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = f"https://{url}"
    return url if url.endswith("/v1") else f"{url}/v1"


OAUTH = OAuthSpec(
    "qwen",
    OAuthSettings(
        "qwen", client_id="f0304373b74a44d2b584a3fb70ca9e56",
        device_url="https://chat.qwen.ai/api/v1/oauth2/device/code",
        token_url="https://chat.qwen.ai/api/v1/oauth2/token",
        base_url="https://portal.qwen.ai/v1",
        scopes=("openid", "profile", "email", "model.completion"), lead=20 * MINUTE),
    login_names=("qwen",),
    device=StandardDeviceFlow(pkce=True, keep=("resource_url",)),
    refresh=RotatingRefresh(keep=("resource_url",)),
)


class QwenProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "qwen"
    dialect: ClassVar[str] = "openai-chat"
    default_base_url: ClassVar[str] = "https://portal.qwen.ai/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("qwen",)
    models: ClassVar[list[str]] = MODELS
    requests_per_credential: ClassVar[int | None] = REQUESTS_PER_MINUTE
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai",)
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        resource = str(record.data.get("resource_url") or "")
        # configured endpoints (a test or enterprise server) win over the account's own host
        base = resource_base(resource) if resource and not ctx.oauth.overridden("qwen") else None
        return accounts.oauth_account(self, record, MODELS, ctx, base_url=base)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {"authorization": f"Bearer {token}",
                   "user-agent": USER_AGENT, "x-dashscope-useragent": USER_AGENT,
                   "x-dashscope-authtype": "qwen-oauth", "x-dashscope-cachecontrol": "enable"}
        return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)


PROVIDER = QwenProvider()
