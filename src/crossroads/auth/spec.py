"""What a subscription provider declares about its OAuth: the seam between
the generic login/refresh machinery in :mod:`crossroads.auth` and the
provider modules.

Each subscription provider module declares one constant ``OAUTH =
OAuthSpec(...)``: its auth-file type, default endpoints (:class:`OAuthSettings`,
overridable by the config's ``oauth-endpoints``), the names ``crossroads login``
and the management API accept, the login flows it offers and how its
stored credential is refreshed. The provider-specific bits are small hook
objects (:class:`BrowserFlow`, :class:`DeviceFlow`, :class:`ImportLogin`,
:class:`RefreshGrant`); the generic code here never branches on a
provider's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from crossroads.auth.pkce import Pkce
from crossroads.auth.tokens import TokenGrant

Encoding = Literal["form", "json"]

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """One provider's OAuth facts; the config may override any of them."""

    type: str
    client_id: str = ""
    client_secret: str = ""
    authorize_url: str = ""
    token_url: str = ""
    device_url: str = ""  # device-authorization endpoint (device flows)
    verification_url: str = ""
    discovery_url: str = ""  # OIDC discovery (endpoints published only there)
    base_url: str = ""  # the upstream API
    scopes: tuple[str, ...] = ()
    callback_port: int = 0
    callback_path: str = "/callback"
    redirect_uri: str = ""  # set when the provider wants a fixed, non-loopback redirect
    lead: float = 5 * MINUTE  # refresh this long before expiry
    encoding: Encoding = "form"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def loopback_redirect(self) -> str:
        return f"http://localhost:{self.callback_port}{self.callback_path}"


@dataclass(slots=True)
class LoginResult:
    """One auth-file record a login produced (not yet stored)."""

    record_id: str
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.data.get("email") or self.record_id)


@dataclass(frozen=True, slots=True)
class OAuthEntry:
    """A provider's spec with the settings in force for one config."""

    spec: OAuthSpec
    settings: OAuthSettings
    overridden: bool  # the config overrides this provider's endpoints

    @property
    def type(self) -> str:
        return self.spec.type


@dataclass(slots=True)
class BrowserLogin:
    """An authorization-code login in progress (see :mod:`crossroads.auth.flows`)."""

    type: str
    settings: OAuthSettings
    flow: BrowserFlow
    redirect_uri: str
    pkce: Pkce
    state: str
    url: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    completed: bool = False
    started_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class DeviceLogin:
    """A device-code login waiting for the user (see :mod:`crossroads.auth.device`)."""

    entry: OAuthEntry
    flow: DeviceFlow
    device_code: str
    user_code: str
    verification_uri: str
    token_url: str
    interval: float = 5.0
    expires_at: float = 0.0
    verification_uri_complete: str = ""
    pkce: Pkce | None = None
    headers: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.entry.type

    @property
    def settings(self) -> OAuthSettings:
        return self.entry.settings


class BrowserFlow(Protocol):
    """The provider-specific parts of an authorization-code login."""

    @property
    def basic_auth(self) -> bool:
        """Send the client credentials as HTTP Basic on the code exchange."""
        ...

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]: ...

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]: ...

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        """The records to store from the token endpoint's reply (after any
        post-login step: project discovery, API key lookup...)."""
        ...


class DeviceFlow(Protocol):
    """A device-code login: start it, poll it, turn the approval into records."""

    async def start(self, entry: OAuthEntry, options: dict[str, Any]) -> DeviceLogin: ...

    async def poll_once(self, login: DeviceLogin) -> dict[str, Any]:
        """One poll; raises OAuthError while the user has not approved yet."""
        ...

    def pending(self, code: str, status: int) -> bool:
        """Whether a poll error (OAuth error code, HTTP status) means "not approved yet"."""
        ...

    async def finish(self, login: DeviceLogin, reply: dict[str, Any]) -> list[LoginResult]: ...


class ImportLogin(Protocol):
    """A login without an identity-server dialogue: a key file, a browser cookie."""

    @property
    def option(self) -> str:
        """The login option that selects this import (e.g. ``"cookie"``)."""
        ...

    async def run(self, entry: OAuthEntry, options: Mapping[str, Any]) -> list[LoginResult]: ...


class RefreshGrant(Protocol):
    """How a stored credential of this type gets a fresh access token."""

    def can_refresh(self, data: Mapping[str, Any]) -> bool: ...

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        """The new grant; ``token_url`` is the settings' token URL, or the one
        OIDC discovery named. Raises OAuthError."""
        ...


@dataclass(frozen=True, slots=True)
class OAuthSpec:
    """Everything the generic machinery needs to log in to and refresh one
    provider type."""

    type: str  # the auth-file ``type``
    defaults: OAuthSettings
    login_names: tuple[str, ...]  # `crossroads login NAME`, management `GET /{NAME}-auth-url`
    browser: BrowserFlow | None = None  # authorization code + PKCE in a browser
    device: DeviceFlow | None = None  # device code (the default when there is no browser flow)
    device_login_names: tuple[str, ...] = ()  # names that pick the device flow when browser is the default
    imports: tuple[ImportLogin, ...] = ()  # non-interactive logins, selected by their option
    refresh: RefreshGrant | None = None  # None: used until the upstream refuses it
    options: frozenset[str] = frozenset()  # login options this provider's flows read
    discovery_domain: str = ""  # discovered endpoints must stay on it (unless overridden)
    memory_only: bool = False  # tokens minted from a long-lived key: kept in memory, never stored
    plan: Callable[[Mapping[str, Any]], str] | None = None  # a stored credential's plan, for `auth list`

    def __post_init__(self) -> None:
        if self.defaults.type != self.type:
            raise ValueError(f"OAuthSpec {self.type!r}: its defaults are for {self.defaults.type!r}")
        if not self.login_names:
            raise ValueError(f"OAuthSpec {self.type!r}: needs at least one login name")
        if self.device_login_names and self.device is None:
            raise ValueError(f"OAuthSpec {self.type!r}: device login names without a device flow")

    @property
    def all_login_names(self) -> tuple[str, ...]:
        return (*self.login_names, *self.device_login_names)

    def uses_device(self, name: str, *, asked: bool = False) -> bool:
        """Whether a login started as ``name`` (``asked``: with --device) runs the device flow."""
        if self.device is None:
            return False
        return asked or self.browser is None or name in self.device_login_names
