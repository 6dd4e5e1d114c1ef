"""iFlow subscriptions (auth-file type ``iflow``): OpenAI chat completions at
apis.iflow.cn with the account's API key (obtained at login from the OAuth
token or a browser cookie), a session id and the HMAC-SHA256 request
signature over ``user-agent:session-id:timestamp``."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from typing import ClassVar

from crossroads import ir
from crossroads.auth import accounts, tokens
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "iFlow-Cli"
MODELS = ["qwen3-coder-plus", "qwen3-max", "kimi-k2", "deepseek-v3.2", "glm-4.6"]


def signature(api_key: str, user_agent: str, session_id: str, timestamp_ms: int) -> str:
    message = f"{user_agent}:{session_id}:{timestamp_ms}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


class IflowProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "iflow"
    dialect: ClassVar[str] = "openai-chat"
    default_base_url: ClassVar[str] = "https://apis.iflow.cn/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("iflow",)
    models: ClassVar[list[str]] = MODELS

    def account_from_record(self, record: Record) -> Account:
        if not record.data.get("api_key"):
            raise ValueError("the iflow credential has no api_key (log in again)")
        return accounts.oauth_account(self, record, MODELS)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        if tokens.refresh_token(accounts.extra(account)):
            await accounts.bearer(account)  # keeps the OAuth grant (and with it the API key) fresh
        api_key = str(accounts.extra(account).get("api_key") or "")
        if not api_key:
            raise ir.Error(401, "authentication", f"{account.label} has no iFlow API key; log in again")
        session = client_headers.get("session-id") or f"session-{uuid.uuid4()}"
        now_ms = int(time.time() * 1000)
        headers = {"content-type": "application/json", "authorization": f"Bearer {api_key}",
                   "user-agent": USER_AGENT, "session-id": session, "x-iflow-timestamp": str(now_ms),
                   "x-iflow-signature": signature(api_key, USER_AGENT, session, now_ms),
                   "accept": "text/event-stream" if stream else "application/json"}
        headers.update(account.headers)
        return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)

    async def on_unauthorized(self, account: Account) -> bool:
        # a refused key may have been rotated: refreshing the grant fetches the current one
        if not tokens.refresh_token(accounts.extra(account)):
            return False
        return await accounts.refresh_after_401(account)



PROVIDER = IflowProvider()
