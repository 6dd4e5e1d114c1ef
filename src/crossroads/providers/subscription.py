"""The base of providers whose accounts are stored OAuth credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.credentials.base import Record
from crossroads.providers import oauth_accounts
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall


class SubscriptionProvider(ProviderBase):
    """Accounts come from auth files; tokens from the refresher; an upstream
    401 refreshes the token once and retries."""

    billing: ClassVar[str] = "subscription"
    config_key: ClassVar[str]
    dialect: ClassVar[str]
    default_base_url: ClassVar[str]
    models: ClassVar[list[str]] = []
    entry_keys: ClassVar[Mapping[str, Any] | None] = None  # logins are auth files, not config entries

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        raise NotImplementedError

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        return oauth_accounts.oauth_account(self, record, self.catalogue(), ctx)

    async def on_unauthorized(self, account: Account) -> bool:
        return await oauth_accounts.refresh_after_401(account)

    def catalogue(self) -> list[str]:
        return list(self.models)
