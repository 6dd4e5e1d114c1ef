"""Gemini CLI / Gemini Code Assist subscriptions (auth-file type ``gemini``):
Cloud Code Assist ``v1internal`` with the account's project, as the Gemini
CLI sends it. One account per project."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.auth import accounts
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, ProviderBase, UpstreamCall

GEMINI_CLI_VERSION = "0.17.1"
MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
          "gemini-3-flash-preview"]


def cloudcode_url(base_url: str, stream: bool) -> str:
    if stream:
        return f"{base_url}/v1internal:streamGenerateContent?alt=sse"
    return f"{base_url}/v1internal:generateContent"


def project_of(record: Record) -> str:
    project = str(record.data.get("project_id") or "").strip()
    if not project:
        raise ValueError(f"the {record.type} credential has no project_id (log in again to discover it)")
    if "," in project:
        # CLIProxyAPI multi-project files: this build serves the first; log in per project for the rest
        project = project.split(",")[0].strip()
    return project


class GeminiCliProvider(ProviderBase):
    config_key: ClassVar[str] = "gemini"
    dialect: ClassVar[str] = "cloudcode"
    default_base_url: ClassVar[str] = "https://cloudcode-pa.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("gemini",)

    def account_from_record(self, record: Record) -> Account:
        project = project_of(record)
        label = f"gemini-cli:{record.data.get('email') or record.id} ({project})"
        return accounts.oauth_account(self, record, MODELS, label=label)

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        token = await accounts.bearer(account)
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {token}",
            "user-agent": f"GeminiCLI/{GEMINI_CLI_VERSION}/{model} (linux; x64)",
            "x-goog-api-client": "gl-node/22.17.0",
            "client-metadata": "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI",
        }
        if stream:
            headers["accept"] = "text/event-stream"
        headers.update(account.headers)
        return UpstreamCall(url=cloudcode_url(account.base_url, stream), headers=headers)

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        return {**body, "project": project_of(accounts.credential_of(account).record)}

    async def on_unauthorized(self, account: Account) -> bool:
        return await accounts.refresh_after_401(account)

    def catalogue(self) -> list[str]:
        return MODELS


PROVIDER = GeminiCliProvider()
