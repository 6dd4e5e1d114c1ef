"""Gemini CLI / Gemini Code Assist subscriptions (auth-file type ``gemini``):
Cloud Code Assist ``v1internal`` with the account's project, as the Gemini
CLI sends it. One account per project.

Login: Google OAuth then project discovery (``crossroads login gemini``, also
named ``gemini-cli``; ``--project-id`` picks the project(s))."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import quota
from crossroads.auth.flows import expiry_fields, safe_id
from crossroads.auth.grants import RotatingRefresh
from crossroads.auth.spec import MINUTE, LoginResult, OAuthSettings, OAuthSpec
from crossroads.credentials.base import Record
from crossroads.providers import google_quota
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, UpstreamCall
from crossroads.providers.cloudcode_assist import (
    GOOGLE_AUTHORIZE,
    GOOGLE_SCOPES,
    GOOGLE_TOKEN,
    USERINFO_URL,
    GoogleFlow,
)
from crossroads.providers.subscription import SubscriptionProvider

GEMINI_CLI_VERSION = "0.17.1"
MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
          "gemini-3-flash-preview"]


def cloudcode_url(base_url: str, stream: bool) -> str:
    if stream:
        return f"{base_url}/v1internal:streamGenerateContent?alt=sse"
    return f"{base_url}/v1internal:generateContent"


def projects_of(record: Record) -> list[str]:
    """The record's Cloud projects: CLIProxyAPI files may list several,
    comma-separated, in ``project_id``."""
    projects = [p.strip() for p in str(record.data.get("project_id") or "").split(",") if p.strip()]
    if not projects:
        raise ValueError(f"the {record.type} credential has no project_id (log in again to discover it)")
    return list(dict.fromkeys(projects))


def project_of(record: Record) -> str:
    return projects_of(record)[0]


class GeminiCliFlow(GoogleFlow):
    def record(self, reply: dict[str, Any], email: str, project: str, auto: bool) -> LoginResult:
        """Gemini CLI's layout: the tokens nested under ``token``."""
        expiry = expiry_fields(reply, time.time()).get("expired", "")
        data: dict[str, Any] = {
            "type": "gemini", "email": email, "project_id": project, "auto": auto, "checked": True,
            "token": {"access_token": reply["access_token"], "refresh_token": reply.get("refresh_token", ""),
                      "token_type": "Bearer", "expiry": expiry}}
        return LoginResult(safe_id("gemini", email, project), data)


OAUTH = OAuthSpec(
    "gemini",
    OAuthSettings(
        "gemini", client_id="681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
        authorize_url=GOOGLE_AUTHORIZE, token_url=GOOGLE_TOKEN,
        base_url="https://cloudcode-pa.googleapis.com", scopes=GOOGLE_SCOPES,
        callback_port=8085, callback_path="/oauth2callback", lead=5 * MINUTE,
        extra={"userinfo-url": USERINFO_URL, "user-agent": f"GeminiCLI/{GEMINI_CLI_VERSION} (linux; x64)"}),
    login_names=("gemini", "gemini-cli"),
    browser=GeminiCliFlow(),
    refresh=RotatingRefresh(),
    options=frozenset({"project_ids"}),
)


class GeminiCliProvider(SubscriptionProvider):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    config_key: ClassVar[str] = "gemini"
    dialect: ClassVar[str] = "cloudcode"
    credential_wide_markers: ClassVar[tuple[str, ...]] = ("quota exceeded for quota metric",)
    default_base_url: ClassVar[str] = "https://cloudcode-pa.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("gemini",)
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        return self._account(record, project_of(record), record.id, ctx)

    def accounts_from_record(self, record: Record, ctx: AccountContext) -> list[Account]:
        """One virtual account per project (sharing the record's token), so
        quota cooldowns and routing treat each project on its own."""
        projects = projects_of(record)
        if len(projects) == 1:
            return [self._account(record, projects[0], record.id, ctx)]
        return [self._account(record, project, f"{record.id}#{project}", ctx) for project in projects]

    def _account(self, record: Record, project: str, account_id: str, ctx: AccountContext) -> Account:
        label = f"gemini-cli:{record.data.get('email') or record.id} ({project})"
        account = accounts.oauth_account(self, record, MODELS, ctx, label=label)
        account.id = account_id
        account.params["project"] = project
        return account

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {
            "authorization": f"Bearer {token}",
            "user-agent": f"GeminiCLI/{GEMINI_CLI_VERSION}/{model} (linux; x64)",
            "x-goog-api-client": "gl-node/22.17.0",
            "client-metadata": "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI",
        }
        return UpstreamCall(url=cloudcode_url(account.base_url, stream), headers=headers)

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        return {**body, "project": account.params["project"]}

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        return google_quota.error_windows(status, body)  # RESOURCE_EXHAUSTED names the quota and its delay


PROVIDER = GeminiCliProvider()
