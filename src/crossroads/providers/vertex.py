"""Vertex AI with an imported service account (auth-file type ``vertex``):
Gemini on the publisher-model endpoints, with access tokens minted from the
service account's key (signed JWT), kept in memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crossroads.auth import accounts, settings
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview"]


def regional_base(location: str) -> str:
    return "https://aiplatform.googleapis.com" if location == "global" else f"https://{location}-aiplatform.googleapis.com"


class VertexProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "vertex"
    dialect: ClassVar[str] = "gemini"
    default_base_url: ClassVar[str] = "https://us-central1-aiplatform.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("vertex",)
    models: ClassVar[list[str]] = MODELS

    def account_from_record(self, record: Record) -> Account:
        if not isinstance(record.data.get("service_account"), dict) or not record.data.get("project_id"):
            raise ValueError("the vertex credential needs service_account and project_id")
        location = str(record.data.get("location") or "us-central1")
        base = None if settings.get("vertex").base_url else regional_base(location)
        return accounts.oauth_account(self, record, MODELS, base_url=base,
                                      label=f"vertex:{record.data.get('project_id')}")

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        token = await accounts.bearer(account)
        data = accounts.extra(account)
        location = str(data.get("location") or "us-central1")
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = (f"{account.base_url}/v1/projects/{data.get('project_id')}/locations/{location}"
               f"/publishers/google/models/{model}:{action}")
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        headers.update(account.headers)
        return UpstreamCall(url=url, headers=headers)



PROVIDER = VertexProvider()
