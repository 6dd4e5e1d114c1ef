"""iFlow subscriptions (auth-file type ``iflow``): OpenAI chat completions at
apis.iflow.cn with the account's API key (obtained at login from the OAuth
token or a browser cookie), a session id and the HMAC-SHA256 request
signature over ``user-agent:session-id:timestamp``.

Login: iFlow's authorization-code page (client secret as HTTP Basic, no
PKCE), then the user-info call that carries the API key; or ``--cookie``
with a logged-in browser's ``BXAuth`` cookie, exchanged for the key. A
refresh fetches the key again (iFlow may rotate it with the token).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import ir
from crossroads.auth import oauth, tokens
from crossroads.auth.flows import expiry_fields, safe_id, token_digest
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.spec import HOUR, BrowserLogin, LoginResult, OAuthEntry, OAuthSettings, OAuthSpec
from crossroads.auth.tokens import TokenGrant
from crossroads.credentials.base import Record
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

USER_AGENT = "iFlow-Cli"
MODELS = ["qwen3-coder-plus", "qwen3-max", "kimi-k2", "deepseek-v3.2", "glm-4.6"]


def signature(api_key: str, user_agent: str, session_id: str, timestamp_ms: int) -> str:
    message = f"{user_agent}:{session_id}:{timestamp_ms}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


async def user_info(conf: OAuthSettings, access_token: str) -> dict[str, Any]:
    """The account's user info (``apiKey``, ``email``, ``phone``); raises OAuthError."""
    query = urllib.parse.urlencode({"accessToken": access_token})
    info = await oauth.get_json(f"{conf.extra['userinfo-url']}?{query}", {"accept": "application/json"})
    user = info.get("data")
    return user if isinstance(user, dict) else {}


class IflowFlow:
    basic_auth: ClassVar[bool] = True

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {"loginMethod": "phone", "type": "phone", "redirect": login.redirect_uri,
                "state": login.state, "client_id": login.settings.client_id}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        return {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "client_id": login.settings.client_id}

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        try:
            user = await user_info(login.settings, reply["access_token"])
        except OAuthError as exc:
            raise LoginError(f"iFlow user info failed: {exc}") from None
        api_key = str(user.get("apiKey") or "")
        if not api_key:
            raise LoginError("iFlow returned no API key for this account")
        email = str(user.get("email") or user.get("phone") or "")
        data: dict[str, Any] = {"type": "iflow", "access_token": reply["access_token"],
                                "refresh_token": reply.get("refresh_token", ""), "api_key": api_key,
                                "email": email, "last_refresh": tokens.format_time(time.time()),
                                **expiry_fields(reply)}
        return [LoginResult(safe_id("iflow", email or token_digest(data)), data)]


class CookieLogin:
    option: ClassVar[str] = "cookie"

    async def run(self, entry: OAuthEntry, options: Mapping[str, Any]) -> list[LoginResult]:
        cookie = str(options.get("cookie") or "").strip()
        if "BXAuth=" not in cookie:
            raise LoginError("the iFlow cookie must contain BXAuth=...; copy it from a logged-in browser")
        try:
            reply = await oauth.get_json(entry.settings.extra["apikey-url"],
                                         {"cookie": cookie, "accept": "application/json"})
        except OAuthError as exc:
            raise LoginError(f"iFlow refused the cookie: {exc}") from None
        data = reply.get("data") if isinstance(reply.get("data"), dict) else None
        if not reply.get("success", True) or not isinstance(data, dict) or not data.get("apiKey"):
            raise LoginError("iFlow sent no API key for this cookie (expired cookie?)")
        record: dict[str, Any] = {"type": "iflow", "api_key": str(data["apiKey"]), "cookie": cookie,
                                  "email": str(data.get("name") or ""),
                                  "last_refresh": tokens.format_time(time.time())}
        expiry = tokens.parse_time(data.get("expireTime"))
        if expiry is not None:
            record["expired"] = tokens.format_time(expiry)
        return [LoginResult(safe_id("iflow", record["email"] or "cookie"), record)]


_STANDARD = RotatingRefresh(basic_auth=True)


class IflowRefresh:
    """The refresh grant with Basic client credentials, then the current API key."""

    def can_refresh(self, data: Mapping[str, Any]) -> bool:
        return bool(tokens.refresh_token(dict(data)))

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        # cookie-derived records hold only an API key (they do not expire): the grant refuses them
        grant = await _STANDARD.refresh(data, entry, token_url)
        conf = entry.settings
        if not conf.extra.get("userinfo-url"):
            return grant
        try:
            api_key = str((await user_info(conf, grant.access_token)).get("apiKey") or "")
        except OAuthError:
            api_key = ""  # the stored key keeps serving
        if api_key:
            grant.extra["api_key"] = api_key  # iFlow may rotate the key with the token
        return grant


OAUTH = OAuthSpec(
    "iflow",
    OAuthSettings(
        "iflow", client_id="10009311001",
        authorize_url="https://iflow.cn/oauth", token_url="https://iflow.cn/oauth/token",
        base_url="https://apis.iflow.cn/v1", callback_port=11451, callback_path="/oauth2callback",
        lead=24 * HOUR,
        extra={"userinfo-url": "https://iflow.cn/api/oauth/getUserInfo",
               "apikey-url": "https://platform.iflow.cn/api/openapi/apikey"}),
    login_names=("iflow",),
    browser=IflowFlow(),
    imports=(CookieLogin(),),
    refresh=IflowRefresh(),
    options=frozenset({"cookie"}),
)


class IflowProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "iflow"
    dialect: ClassVar[str] = "openai-chat"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai",)
    default_base_url: ClassVar[str] = "https://apis.iflow.cn/v1"
    auth_types: ClassVar[tuple[str, ...]] = ("iflow",)
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        if not record.data.get("api_key"):
            raise ValueError("the iflow credential has no api_key (log in again)")
        return accounts.oauth_account(self, record, MODELS, ctx)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        if tokens.refresh_token(accounts.extra(account)):
            await accounts.bearer(account)  # keeps the OAuth grant (and with it the API key) fresh
        api_key = str(accounts.extra(account).get("api_key") or "")
        if not api_key:
            raise ir.Error(401, "authentication", f"{account.label} has no iFlow API key; log in again")
        session = client_headers.get("session-id") or f"session-{uuid.uuid4()}"
        now_ms = int(time.time() * 1000)
        headers = {"authorization": f"Bearer {api_key}",
                   "user-agent": USER_AGENT, "session-id": session, "x-iflow-timestamp": str(now_ms),
                   "x-iflow-signature": signature(api_key, USER_AGENT, session, now_ms)}
        return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)

    async def on_unauthorized(self, account: Account) -> bool:
        # a refused key may have been rotated: refreshing the grant fetches the current one
        if not tokens.refresh_token(accounts.extra(account)):
            return False
        return await accounts.refresh_after_401(account)


PROVIDER = IflowProvider()
