"""Gemini CLI / Gemini Code Assist subscriptions (auth-file type ``gemini``):
Cloud Code Assist ``v1internal`` with the account's project, as the Gemini
CLI sends it. One account per project."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.auth import accounts
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, UpstreamCall
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


# account id -> project, for the virtual accounts of multi-project records
_PROJECT_OF_ACCOUNT: dict[str, str] = {}


class GeminiCliProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "gemini"
    dialect: ClassVar[str] = "cloudcode"
    default_base_url: ClassVar[str] = "https://cloudcode-pa.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("gemini",)
    models: ClassVar[list[str]] = MODELS

    def account_from_record(self, record: Record) -> Account:
        return self._account(record, project_of(record), record.id)

    def accounts_from_record(self, record: Record) -> list[Account]:
        """One virtual account per project (sharing the record's token), so
        quota cooldowns and routing treat each project on its own."""
        projects = projects_of(record)
        if len(projects) == 1:
            return [self._account(record, projects[0], record.id)]
        return [self._account(record, project, f"{record.id}#{project}") for project in projects]

    def _account(self, record: Record, project: str, account_id: str) -> Account:
        label = f"gemini-cli:{record.data.get('email') or record.id} ({project})"
        account = accounts.oauth_account(self, record, MODELS, label=label)
        account.id = account_id
        _PROJECT_OF_ACCOUNT[account_id] = project
        return account

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
        project = _PROJECT_OF_ACCOUNT.get(account.id) or project_of(accounts.credential_of(account).record)
        return {**body, "project": project}



PROVIDER = GeminiCliProvider()
