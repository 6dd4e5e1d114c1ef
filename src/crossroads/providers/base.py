"""The Provider interface and the Account record.

A provider is data plus a few hooks: which dialect it speaks, where its
endpoint is, how it authenticates, which models it serves by default. Every
configured upstream entry (and, later, every stored credential) becomes one
``Account`` bound to a provider.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from crossroads import ir
from crossroads.auth.refresher import Refresher
from crossroads.auth.spec import OAuthSpec
from crossroads.auth.table import OAuthTable
from crossroads.config import Timeouts
from crossroads.credentials.base import Record


@dataclass(frozen=True, slots=True)
class AccountContext:
    """What building accounts needs besides the config entries and records."""

    refresher: Refresher  # the server runtime's refresher
    oauth: OAuthTable  # the OAuth table of the config being built


@dataclass(slots=True)
class ModelRoute:
    """How a client-facing model name maps onto this account."""

    upstream: str  # name sent upstream
    exposed: str  # name clients use (alias and/or prefix applied)


@dataclass(slots=True, eq=False)
class Account:
    id: str  # stable, e.g. "claude-api-key[0]"
    provider: Provider
    secret: str
    base_url: str
    label: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    proxy_url: str | None = None
    prefix: str | None = None
    priority: int = 0
    weight: int = 1
    routes: dict[str, ModelRoute] = field(default_factory=dict)  # exposed name -> route
    excluded: tuple[str, ...] = ()
    disabled: bool = False
    credential: Any = None  # crossroads.auth.refresher.Credential for OAuth accounts (fresh tokens)
    timeouts: Timeouts | None = None  # None: the global timeouts
    params: dict[str, Any] = field(default_factory=dict)  # provider-specific, fixed when the account is built

    @property
    def masked_secret(self) -> str:
        return mask(self.secret)

    def is_excluded(self, upstream_model: str) -> bool:
        return any(fnmatch.fnmatchcase(upstream_model, pat) for pat in self.excluded)


def mask(secret: str) -> str:
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}…{secret[-4:]}"


@dataclass(slots=True)
class UpstreamCall:
    url: str
    headers: dict[str, str]
    # the same endpoint elsewhere (e.g. Antigravity's daily -> prod), tried in
    # order on connection errors, timeouts, 429 and 5xx before the account is failed
    fallback_urls: tuple[str, ...] = ()


class Provider(Protocol):
    config_key: ClassVar[str]  # the CLIProxyAPI config list (or auth-file type) this provider reads
    dialect: ClassVar[str]  # crossroads.dialects name
    default_base_url: ClassVar[str]
    forwarded_headers: ClassVar[tuple[str, ...]]  # client headers passed on (lower-case)
    oauth: ClassVar[OAuthSpec | None]  # subscription providers: how to log in and refresh

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        """Accounts from this provider's config entries (raise ValueError with a clear message)."""
        ...

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        """URL and headers for one upstream request (refreshing a token first
        where the credential needs it)."""
        ...

    auth_types: ClassVar[tuple[str, ...]]

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        """An account from a stored credential whose ``type`` is in ``auth_types``."""
        ...

    def upstream_stream(self, client_stream: bool) -> bool:
        """Whether to ask the upstream for a stream (Codex always streams)."""
        ...

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        """Provider-required edits of the upstream body (e.g. an identity system
        block), or None when the body needs none (the hot path then skips
        re-serialising a pass-through body)."""
        ...

    async def on_unauthorized(self, account: Account) -> bool:
        """The upstream answered 401: refresh the credential if it can be
        refreshed; True means "try this account once more"."""
        ...

    def catalogue(self) -> list[str]:
        """Model ids served when the config lists none."""
        ...

    def for_ingress(self, dialect: str) -> Provider:
        """The provider that serves a client speaking ``dialect`` on this
        account (itself, unless the upstream also speaks the client's
        dialect on another endpoint, like Kimi's Anthropic endpoint)."""
        ...

    def accounts_from_record(self, record: Record, ctx: AccountContext) -> list[Account]:
        """Every account a stored credential yields (one per Cloud project for
        multi-project Gemini CLI files; otherwise ``account_from_record``)."""
        ...


class ProviderBase:
    """Defaults for the optional hooks; providers override what they need."""

    forwarded_headers: ClassVar[tuple[str, ...]] = ()
    auth_types: ClassVar[tuple[str, ...]] = ()  # auth-file ``type`` values this provider loads
    oauth: ClassVar[OAuthSpec | None] = None

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return []

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        raise NotImplementedError(f"{type(self).__name__} does not load auth files")

    def upstream_stream(self, client_stream: bool) -> bool:
        return client_stream

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    async def on_unauthorized(self, account: Account) -> bool:
        return False

    def catalogue(self) -> list[str]:
        return []

    def for_ingress(self, dialect: str) -> Provider:
        return self  # type: ignore[return-value]

    def accounts_from_record(self, record: Record, ctx: AccountContext) -> list[Account]:
        return [self.account_from_record(record, ctx)]


def retryable(error: ir.Error) -> bool:
    """Errors another account may not have: quota, auth, overload, outages."""
    return error.status in (401, 402, 403, 408, 429) or error.status >= 500
