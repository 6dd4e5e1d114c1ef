"""The base of providers whose accounts are stored OAuth credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crossroads.auth import accounts
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, ProviderBase, UpstreamCall


class SubscriptionProvider(ProviderBase):
    """Accounts come from auth files; tokens from the refresher; an upstream
    401 refreshes the token once and retries."""

    config_key: ClassVar[str]
    dialect: ClassVar[str]
    default_base_url: ClassVar[str]
    models: ClassVar[list[str]] = []

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        raise NotImplementedError

    def account_from_record(self, record: Record) -> Account:
        return accounts.oauth_account(self, record, self.catalogue())

    async def on_unauthorized(self, account: Account) -> bool:
        return await accounts.refresh_after_401(account)

    def catalogue(self) -> list[str]:
        return list(self.models)
