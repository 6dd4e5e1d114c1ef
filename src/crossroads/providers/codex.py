"""ChatGPT Plus/Pro subscriptions (auth-file type ``codex``): the ChatGPT
backend's Responses endpoint, as the Codex CLI uses it.

The backend only streams (``stream: true``; the pipeline assembles replies
for non-streaming clients), stores nothing (``store: false``, so encrypted
reasoning travels in ``include``), wants the account id and originator
headers, and refuses sampling knobs it does not support. The client's own
system prompt is kept: it is the request's ``instructions`` (other dialects'
system prompts are rendered there too).

Login: browser PKCE, or ``--device`` (management: ``codex-device``) for
ChatGPT's own device-code variant; the account id, plan and email come from
the id token, at login and on every refresh.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from crossroads import quota
from crossroads.auth import oauth, tokens
from crossroads.auth.flows import PkceBrowserFlow, expiry_fields, safe_id
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.oauth import LoginError
from crossroads.auth.spec import (
    HOUR,
    BrowserLogin,
    DeviceLogin,
    LoginResult,
    OAuthEntry,
    OAuthSettings,
    OAuthSpec,
)
from crossroads.auth.tokens import TokenGrant
from crossroads.credentials.base import Record
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers import quota_probe, ratelimit_headers
from crossroads.providers.base import Account, AccountContext, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider
from crossroads.transport import Transport

CODEX_VERSION = "0.58.0"
ORIGINATOR = "codex_cli_rs"
UNSUPPORTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "service_tier")
ENCRYPTED_REASONING = "reasoning.encrypted_content"
MODELS = ["gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max", "gpt-5", "gpt-5-codex",
          "gpt-5-codex-mini"]
# What each ChatGPT plan may use (the plan is read from the id token at login
# and on every refresh). Free accounts get the smaller models; the paid plans
# everything. Unknown plans (business, enterprise, edu, go...) count as team.
PLAN_MODELS: dict[str, list[str]] = {
    "free": ["gpt-5.1", "gpt-5.1-codex-mini", "gpt-5", "gpt-5-codex-mini"],
    "plus": MODELS,
    "pro": MODELS,
    "team": MODELS,
}
PLAN_ALIASES = {"prolite": "pro", "pro_lite": "pro"}


def plan_models(plan: str | None) -> list[str]:
    """The model list for a ChatGPT plan (no plan known: every model)."""
    if not plan:
        return MODELS
    key = PLAN_ALIASES.get(plan.lower(), plan.lower())
    return PLAN_MODELS.get(key, PLAN_MODELS["team"])


def stored_plan(data: Mapping[str, Any]) -> str:
    """The ChatGPT plan of a stored credential: its ``plan_type``, else the
    id token's claim (CLIProxyAPI's auth files keep only the token)."""
    return str(data.get("plan_type") or codex_identity(str(data.get("id_token") or "")).get("plan_type") or "")


def codex_identity(id_token: str) -> dict[str, Any]:
    """Account id, plan and email from a ChatGPT id token."""
    claims = tokens.jwt_claims(id_token)
    auth = claims.get("https://api.openai.com/auth")
    auth = auth if isinstance(auth, dict) else {}
    found: dict[str, Any] = {}
    if auth.get("chatgpt_account_id"):
        found["account_id"] = str(auth["chatgpt_account_id"])
    if auth.get("chatgpt_plan_type"):
        found["plan_type"] = str(auth["chatgpt_plan_type"])
    if claims.get("email"):
        found["email"] = str(claims["email"])
    return found


def codex_result(reply: dict[str, Any]) -> LoginResult:
    id_token = str(reply.get("id_token") or "")
    identity = codex_identity(id_token)
    if not identity.get("account_id"):
        raise LoginError("the ChatGPT id token carries no account id; is this a ChatGPT account?")
    data: dict[str, Any] = {"type": "codex", "id_token": id_token, "access_token": reply["access_token"],
                            "refresh_token": reply.get("refresh_token", ""),
                            "last_refresh": tokens.format_time(time.time()), **identity, **expiry_fields(reply)}
    return LoginResult(safe_id("codex", str(identity.get("email", "")), str(identity.get("plan_type", ""))), data)


class CodexFlow(PkceBrowserFlow):
    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {**super().authorize_params(login), "id_token_add_organizations": "true",
                "codex_cli_simplified_flow": "true", "originator": ORIGINATOR}

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        return [codex_result(reply)]


class CodexDeviceFlow:
    """ChatGPT's device variant: JSON requests, 403/404 while pending, and the
    approval yields an authorization code (with its verifier) to exchange."""

    async def start(self, entry: OAuthEntry, options: dict[str, Any]) -> DeviceLogin:
        conf = entry.settings
        reply = await oauth.post(conf.device_url, {"client_id": conf.client_id}, encoding="json")
        try:
            interval = float(reply.get("interval") or 5)
            return DeviceLogin(entry, self, str(reply["device_auth_id"]), str(reply["user_code"]),
                               conf.verification_url, conf.extra["device-token-url"], interval,
                               time.time() + 900, options=options)
        except (KeyError, ValueError):
            raise LoginError("the Codex device endpoint sent an unexpected reply") from None

    async def poll_once(self, login: DeviceLogin) -> dict[str, Any]:
        return await oauth.post(login.token_url, {"device_auth_id": login.device_code,
                                                  "user_code": login.user_code}, encoding="json")

    def pending(self, code: str, status: int) -> bool:
        return code == "authorization_pending" or status in (403, 404)

    async def finish(self, login: DeviceLogin, reply: dict[str, Any]) -> list[LoginResult]:
        conf = login.settings
        redirect = conf.extra.get("device-redirect-uri") or ""
        if login.entry.overridden:  # the callback lives next to the (overridden) token endpoint
            redirect = conf.token_url.rsplit("/oauth/", 1)[0] + "/deviceauth/callback"
        exchanged = await oauth.post(conf.token_url, {
            "grant_type": "authorization_code", "code": reply.get("authorization_code"),
            "redirect_uri": redirect, "client_id": conf.client_id, "code_verifier": reply.get("code_verifier")})
        return [codex_result(exchanged)]


class CodexRefresh(RotatingRefresh):
    """The standard grant (with the scopes), re-reading the identity from the new id token."""

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        grant = await super().refresh(data, entry, token_url)
        if grant.id_token:
            grant.extra.update(codex_identity(grant.id_token))
        return grant


OAUTH = OAuthSpec(
    "codex",
    OAuthSettings(
        "codex", client_id="app_EMoamEEZ73f0CkXaXp7hrann",
        authorize_url="https://auth.openai.com/oauth/authorize",
        token_url="https://auth.openai.com/oauth/token",
        device_url="https://auth.openai.com/api/accounts/deviceauth/usercode",
        verification_url="https://auth.openai.com/codex/device",
        base_url="https://chatgpt.com/backend-api/codex",
        scopes=("openid", "email", "profile", "offline_access"),
        callback_port=1455, callback_path="/auth/callback", lead=5 * 24 * HOUR,
        extra={"device-token-url": "https://auth.openai.com/api/accounts/deviceauth/token",
               "device-redirect-uri": "https://auth.openai.com/deviceauth/callback"}),
    login_names=("codex",),
    browser=CodexFlow(),
    device=CodexDeviceFlow(),
    device_login_names=("codex-device",),
    refresh=CodexRefresh(with_scope=True),
    plan=lambda data: stored_plan(data),
)


class CodexProvider(SubscriptionProvider):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "codex"
    signals_every_answer: ClassVar[bool] = True  # rate-limit headers on every answer, 429s included
    settings: ClassVar[Mapping[str, Any]] = {
        "codex": {"identity-confuse": "prompt_cache_key and installation ids are passed on as sent",
                  "disable-codex-cloaking": "Codex requests carry the client's own User-Agent and originator",
                  "stream-bootstrap-buffering": "a stream fails over until its first event anyway (see README)",
                  "optimize-multi-agent-v2": "multi-agent requests are translated as they are",
                  "live-media-relay": "Codex Live media is not relayed"},
        "codex-header-defaults": "Codex requests carry the client's own User-Agent"}
    dialect: ClassVar[str] = "openai-responses"
    default_base_url: ClassVar[str] = "https://chatgpt.com/backend-api/codex"
    auth_types: ClassVar[tuple[str, ...]] = ("codex",)
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH
    # the plan's 5-hour and weekly windows are spent for every model at once
    credential_wide_markers: ClassVar[tuple[str, ...]] = ("usage_limit_reached", "usage_not_included")

    quota_probe_interval: ClassVar[float | None] = 300.0

    def headroom(self, headers: Mapping[str, str]) -> list[quota.Window]:
        """The plan's windows from ``x-codex-{primary,secondary}-used-percent``
        (used, not left), ``-window-minutes`` and ``-reset-at`` (epoch) or
        ``-reset-after-seconds``; credits from ``x-codex-credits-*``."""
        now = time.time()
        windows = []
        for name in ("primary", "secondary"):
            used = ratelimit_headers.number(headers.get(f"x-codex-{name}-used-percent"))
            if used is None:
                continue
            minutes = ratelimit_headers.number(headers.get(f"x-codex-{name}-window-minutes"))
            reset = ratelimit_headers.epoch(headers.get(f"x-codex-{name}-reset-at"))
            after = ratelimit_headers.number(headers.get(f"x-codex-{name}-reset-after-seconds"))
            if reset is None and after is not None:
                reset = now + after
            kind = quota.kind_for_minutes(minutes) if minutes else ("five-hour" if name == "primary" else "weekly")
            windows.append(quota.window(kind, used / 100.0, reset, "header", now=now))
        credits = _credits(headers.get("x-codex-credits-has-credits"), headers.get("x-codex-credits-unlimited"),
                           headers.get("x-codex-credits-balance"), "header", now)
        return windows + credits

    async def probe_quota(self, account: Account, transport: Transport) -> list[quota.Window] | None:
        """``GET /backend-api/wham/usage``: ``rate_limit.{primary,secondary}_window``
        with ``used_percent``, ``limit_window_seconds``, ``reset_at``/``reset_after_seconds``."""
        token = await accounts.bearer(account)
        root = account.base_url.removesuffix("/codex")
        data = await quota_probe.fetch_json(transport, account, f"{root}/wham/usage", {
            "authorization": f"Bearer {token}", "chatgpt-account-id": str(accounts.extra(account).get("account_id", "")),
            "originator": ORIGINATOR, "user-agent": f"{ORIGINATOR}/{CODEX_VERSION} (crossroads)"})
        return None if not isinstance(data, dict) else usage_windows(data)

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        """A 429 ``usage_limit_reached`` names its reset (``resets_at`` or
        ``resets_in_seconds``) but not its window: one resetting within six
        hours is the 5-hour window, a later one the weekly."""
        if status != 429 or b"usage_limit" not in body:
            return []
        try:
            error = orjson.loads(body).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            return []
        if not isinstance(error, dict):
            return []
        now = time.time()
        reset = ratelimit_headers.epoch(str(error.get("resets_at") or ""))
        seconds = ratelimit_headers.number(str(error.get("resets_in_seconds")))
        if reset is None and seconds is not None:
            reset = now + seconds
        if reset is None:
            return []
        kind = "five-hour" if reset - now <= 6 * 3600 else "weekly"
        return [quota.window(kind, 1.0, reset, "error", now=now)]

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        if not record.data.get("account_id"):
            raise ValueError("the codex credential has no account_id (log in again)")
        plan = stored_plan(record.data)
        label = f"codex:{record.data.get('email') or record.id}" + (f" ({plan})" if plan else "")
        return accounts.oauth_account(self, record, plan_models(str(plan or "")), ctx, label=label)

    def upstream_stream(self, client_stream: bool) -> bool:
        return True

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        session = client_headers.get("session_id") or client_headers.get("conversation_id") or str(uuid.uuid4())
        headers = {
            "authorization": f"Bearer {token}",
            "chatgpt-account-id": str(accounts.extra(account).get("account_id", "")),
            "originator": ORIGINATOR,
            "openai-beta": "responses=experimental",
            "version": CODEX_VERSION,
            "session_id": session,
            "user-agent": f"{ORIGINATOR}/{CODEX_VERSION} (crossroads)",
        }
        return UpstreamCall(url=f"{account.base_url}/responses", headers=headers)

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        out = {key: value for key, value in body.items() if key not in UNSUPPORTED}
        out["stream"] = True
        out["store"] = False
        if not isinstance(out.get("instructions"), str):
            out["instructions"] = ""
        include = out.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        out["include"] = include
        out.pop("previous_response_id", None)  # nothing is stored upstream to point at
        reasoning = out.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none") \
                and "summary" not in reasoning:
            out["reasoning"] = {**reasoning, "summary": "auto"}  # so reasoning reaches every dialect
        return out


def usage_windows(data: dict[str, Any]) -> list[quota.Window]:
    now = time.time()
    raw = data.get("rate_limit")
    limits: dict[str, Any] = raw if isinstance(raw, dict) else {}
    windows = []
    for name, default in (("primary_window", "five-hour"), ("secondary_window", "weekly")):
        item = limits.get(name)
        if not isinstance(item, dict):
            continue
        used = ratelimit_headers.number(str(item.get("used_percent")))
        if used is None:
            continue
        span = ratelimit_headers.number(str(item.get("limit_window_seconds")))
        reset = ratelimit_headers.epoch(str(item.get("reset_at") or ""))
        after = ratelimit_headers.number(str(item.get("reset_after_seconds")))
        if reset is None and after is not None:
            reset = now + after
        kind = quota.kind_for_minutes(span / 60) if span else default
        if limits.get("limit_reached") and limits.get("allowed") is False:
            used = max(used, 100.0) if used >= 99 else used
        windows.append(quota.window(kind, used / 100.0, reset, "usage-endpoint", now=now))
    credits = data.get("credits")
    if isinstance(credits, dict):
        windows += _credits(str(credits.get("has_credits")), str(credits.get("unlimited")),
                            str(credits.get("balance")) if credits.get("balance") is not None else None,
                            "usage-endpoint", now)
    return windows


def _credits(has: str | None, unlimited: str | None, balance: str | None, source: str,
             now: float) -> list[quota.Window]:
    """Purchased credits as a window: exhausted when the plan says it has none."""
    if has is None:
        return []
    if (unlimited or "").lower() == "true":
        return [quota.window("credits", 0.0, None, source, now=now)]
    amount = ratelimit_headers.number(balance)
    empty = has.lower() != "true" or (amount is not None and amount <= 0)
    return [quota.window("credits", 1.0 if empty else 0.0, None, source, limit=amount, now=now)]


PROVIDER = CodexProvider()
