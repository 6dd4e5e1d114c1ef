"""Claude Pro/Max subscriptions (auth-file type ``claude``): Anthropic
Messages with the OAuth bearer.

Subscription tokens are only accepted in requests that look like Claude
Code's: the ``oauth-2025-04-20`` and ``claude-code-20250219`` betas, Claude
Code's user agent and app headers, and a first system block naming Claude
Code. That block is inserted unchanged every turn (and the client's own
system blocks follow it untouched), so the cacheable prefix stays the same
from one turn to the next.

Login: browser PKCE (``crossroads login claude``, also named ``anthropic``);
``--setup-token`` asks for a long-lived inference-only token instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import quota
from crossroads.auth import tokens
from crossroads.auth.flows import PkceBrowserFlow, expiry_fields, safe_id, token_digest
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.spec import HOUR, BrowserLogin, LoginResult, OAuthSettings, OAuthSpec
from crossroads.providers import catalogue, quota_probe, ratelimit_headers
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider
from crossroads.transport import Transport

ANTHROPIC_VERSION = "2023-06-01"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
REQUIRED_BETAS = ("claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14",
                  "fine-grained-tool-streaming-2025-05-14")
CLAUDE_CODE_HEADERS = {
    "user-agent": "claude-cli/2.0.31 (external, cli)",
    "x-app": "cli",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-stainless-lang": "js",
    "x-stainless-runtime": "node",
    "x-stainless-package-version": "0.60.0",
    "x-stainless-retry-count": "0",
    "x-stainless-timeout": "600",
}


def merged_betas(client_beta: str | None) -> str:
    betas = list(REQUIRED_BETAS)
    for beta in (client_beta or "").split(","):
        beta = beta.strip()
        if beta and beta not in betas:
            betas.append(beta)
    return ",".join(betas)


def with_identity(system: Any) -> list[dict[str, Any]] | None:
    """The system blocks with Claude Code's identity first; None when it already is."""
    identity = {"type": "text", "text": IDENTITY}
    if system is None or system == "" or system == []:
        return [identity]
    if isinstance(system, str):
        return [identity, {"type": "text", "text": system}]
    if isinstance(system, list):
        first = system[0] if system else None
        if isinstance(first, dict) and str(first.get("text", "")).startswith(IDENTITY):
            return None
        return [identity, *system]
    return None  # malformed: let the upstream say so


SETUP_TOKEN_LIFETIME = 365 * 24 * 3600


class ClaudeFlow(PkceBrowserFlow):
    """Claude's code page wants ``code=true`` and the state echoed in the
    exchange; a setup token is an inference-only grant without refresh token."""

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        scopes = ("user:inference",) if login.options.get("setup_token") else login.settings.scopes
        return {"code": "true", **super().authorize_params(login), "scope": " ".join(scopes)}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        params = {**super().exchange_params(login, code), "state": login.state}
        if login.options.get("setup_token"):
            params["expires_in"] = SETUP_TOKEN_LIFETIME
        return params

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        account = reply.get("account")
        account = account if isinstance(account, dict) else {}
        email = str(account.get("email_address") or login.options.get("email") or "")
        data: dict[str, Any] = {"type": "claude", "access_token": reply["access_token"], "email": email,
                                "last_refresh": tokens.format_time(time.time()), **expiry_fields(reply)}
        if login.options.get("setup_token"):
            data["token_kind"] = "setup-token"  # inference-only, no refresh token
            return [LoginResult(safe_id("claude", "setup", email or "token"), data)]
        if reply.get("refresh_token"):
            data["refresh_token"] = reply["refresh_token"]
        return [LoginResult(safe_id("claude", email or token_digest(data)), data)]


OAUTH = OAuthSpec(
    "claude",
    OAuthSettings(
        "claude", client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        authorize_url="https://claude.ai/oauth/authorize",
        token_url="https://platform.claude.com/v1/oauth/token",
        base_url="https://api.anthropic.com",
        scopes=("user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers",
                "user:file_upload"),
        callback_port=54545, callback_path="/callback", lead=4 * HOUR, encoding="json",
        extra={"paste-redirect-uri": "https://platform.claude.com/oauth/code/callback"}),
    login_names=("claude", "anthropic"),
    browser=ClaudeFlow(),
    refresh=RotatingRefresh(),
    options=frozenset({"setup_token"}),
)


class ClaudeOAuthProvider(SubscriptionProvider):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "claude"
    signals_every_answer: ClassVar[bool] = True  # rate-limit headers on every answer, 429s included
    settings: ClassVar[Mapping[str, Any]] = {
        "disable-claude-cloak-mode": "requests are never disguised as Claude Code's", "claude-code": {"disable-cloaking-model-list": "requests are never disguised as Claude Code's"},
        "claude-header-defaults": "requests are never disguised as Claude Code's"}
    dialect: ClassVar[str] = "anthropic"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("anthropic",)
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    auth_types: ClassVar[tuple[str, ...]] = ("claude",)
    models: ClassVar[list[str]] = catalogue.ANTHROPIC
    oauth: ClassVar[OAuthSpec | None] = OAUTH
    quota_probe_interval: ClassVar[float | None] = 300.0  # the response headers do the rest

    async def probe_quota(self, account: Account, transport: Transport) -> list[quota.Window] | None:
        """``GET /api/oauth/usage`` (beta ``oauth-2025-04-20``): ``five_hour``,
        ``seven_day`` and model-scoped weekly windows (``seven_day_opus``...),
        each ``{utilization: percent, resets_at: RFC 3339}``."""
        token = await accounts.bearer(account)
        data = await quota_probe.fetch_json(transport, account, f"{account.base_url}/api/oauth/usage", {
            "authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20", **CLAUDE_CODE_HEADERS})
        return None if not isinstance(data, dict) else usage_windows(data)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {
            "authorization": f"Bearer {token}",
            "anthropic-version": client_headers.get("anthropic-version", ANTHROPIC_VERSION),
            "anthropic-beta": merged_betas(client_headers.get("anthropic-beta")),
            **CLAUDE_CODE_HEADERS,
        }
        return UpstreamCall(url=f"{account.base_url}/v1/messages?beta=true", headers=headers)

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        system = with_identity(body.get("system"))
        if system is None:
            return None
        return {**body, "system": system}


USAGE_NAMES = {"session": "5h", "weekly_all": "7d", "weekly": "7d"}


def usage_windows(data: dict[str, Any]) -> list[quota.Window]:
    now = time.time()
    windows = []
    for name, value in data.items():
        named = ratelimit_headers.claim_kind(USAGE_NAMES.get(name, name))
        if named is None or not isinstance(value, dict):
            continue
        used = ratelimit_headers.number(str(value.get("utilization")))
        if used is None:
            continue
        resets = ratelimit_headers.epoch(str(value.get("resets_at") or "")) if value.get("resets_at") else None
        windows.append(quota.window(named[0], used / 100.0, resets, "usage-endpoint", family=named[1], now=now))
    return windows


PROVIDER = ClaudeOAuthProvider()
