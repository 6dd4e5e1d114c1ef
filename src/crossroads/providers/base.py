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


class Provider(Protocol):
    config_key: ClassVar[str]  # the CLIProxyAPI config list this provider reads
    dialect: ClassVar[str]  # crossroads.dialects name
    default_base_url: ClassVar[str]
    forwarded_headers: ClassVar[tuple[str, ...]]  # client headers passed on (lower-case)

    def accounts(self, entries: list[dict[str, Any]]) -> list[Account]:
        """Accounts from this provider's config entries (raise ValueError with a clear message)."""
        ...

    def call(self, account: Account, model: str, stream: bool,
             client_headers: Mapping[str, str]) -> UpstreamCall:
        """URL and headers for one upstream request."""
        ...

    def catalogue(self) -> list[str]:
        """Model ids served when the config lists none."""
        ...


def retryable(error: ir.Error) -> bool:
    """Errors another account may not have: quota, auth, overload, outages."""
    return error.status in (401, 402, 403, 408, 429) or error.status >= 500
