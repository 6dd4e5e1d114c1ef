"""The Provider interface and the Account record.

A provider is data plus a few hooks: which dialect it speaks, where its
endpoint is, how it authenticates, which models it serves by default. Every
configured upstream entry (and, later, every stored credential) becomes one
``Account`` bound to a provider.
"""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from crossroads import ir, quota
from crossroads.auth.refresher import Refresher
from crossroads.auth.spec import OAuthSpec
from crossroads.auth.table import OAuthTable
from crossroads.config import Timeouts
from crossroads.configkeys import ANY_KEYS
from crossroads.credentials.base import Record
from crossroads.providers import ratelimit_headers
from crossroads.redaction import mask
from crossroads.services.book import SideServices
from crossroads.transport import Transport


@dataclass(frozen=True, slots=True)
class AccountContext:
    """What building accounts needs besides the config entries and records."""

    refresher: Refresher  # the server runtime's refresher
    oauth: OAuthTable  # the OAuth table of the config being built
    services: SideServices | None = None  # the runtime's side services (None: a preview)


@dataclass(slots=True)
class ModelRoute:
    """How a client-facing model name maps onto this account."""

    upstream: str  # name sent upstream
    exposed: str  # name clients use (alias and/or prefix applied)
    listed: bool = True  # False: routed (to a clear error or a fallback) but not in /v1/models
    display_name: str | None = None  # the config's display-name, for model lists
    context: int | None = None  # the config's max-context-length, for model lists
    levels: tuple[str, ...] | None = None  # the config's thinking levels: the only ones sent


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
    pause_at: float | None = None  # stop using a plan window at this fraction used (None: the pool's rule)
    disable_cooling: bool | None = None  # None: the config's global disable-cooling
    request_retry: int | None = None  # None: the config's global request-retry
    # the same client-facing name over several upstream models of this entry: CLIProxyAPI's alias pool;
    # the snapshot turns each further upstream into a sibling account (see entries.alias_pool_siblings)
    pooled: list[ModelRoute] = field(default_factory=list)
    # headers whose configured value is "$NAME": copied from the client's NAME header when it sends one
    copied_headers: dict[str, str] = field(default_factory=dict)
    error_rules: tuple[Any, ...] = ()  # crossroads.providers.error_rules.ErrorRule: request-scoped-errors

    @property
    def masked_secret(self) -> str:
        return mask(self.secret)

    def is_excluded(self, upstream_model: str) -> bool:
        return any(fnmatch.fnmatchcase(upstream_model, pat) for pat in self.excluded)


@dataclass(slots=True)
class UpstreamCall:
    url: str
    headers: dict[str, str]
    # the same endpoint elsewhere (e.g. Antigravity's daily -> prod), tried in
    # order on connection errors, timeouts, 429 and 5xx before the account is failed
    fallback_urls: tuple[str, ...] = ()


class Provider(Protocol):
    config_key: ClassVar[str]  # the CLIProxyAPI config list (or auth-file type) this provider reads
    config_mapping: ClassVar[bool]  # the key may also hold one mapping (one entry)
    dialect: ClassVar[str]  # crossroads.dialects name
    default_base_url: ClassVar[str]
    oauth: ClassVar[OAuthSpec | None]  # subscription providers: how to log in and refresh
    entry_keys: ClassVar[Mapping[str, Any] | None]  # shape of one config entry; None: reads no entries
    settings: ClassVar[Mapping[str, Any]]  # other top-level keys it owns (crossroads.configkeys)

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        """Accounts from this provider's config entries (raise ValueError with a clear message)."""
        ...

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        """URL and the provider's own headers for one upstream request in
        ``dialect`` (refreshing a token first where the credential needs it).
        The caller adds what every request has: content type, accept, and the
        entry's configured ``headers`` (which win)."""
        ...

    def speaks(self, dialect: str) -> str:
        """The upstream dialect used for a client speaking ``dialect``."""
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

    also_speaks: ClassVar[tuple[str, ...]]  # dialects served on other endpoints of the same upstream

    def accounts_from_record(self, record: Record, ctx: AccountContext) -> list[Account]:
        """Every account a stored credential yields (one per Cloud project for
        multi-project Gemini CLI files; otherwise ``account_from_record``)."""
        ...

    def classify(self, error: ir.Error) -> Outcome:
        """What an upstream error means: retry elsewhere or not, what to cool
        and for how long, whether the credential needs a new login."""
        ...

    owns_exchange: ClassVar[bool]  # True: ``exchange`` runs the upstream, not ``call`` + the transport
    signals_every_answer: ClassVar[bool]  # its upstream sends quota headers on every answer
    billing: ClassVar[str]  # how its answers are paid for (crossroads.cost.LABELS)
    list_prices: ClassVar[bool]  # whether the vendors' list prices apply to its models
    prompt_cache: ClassVar[bool]  # the upstream caches prompts and reports cached tokens (cache explanations)
    requests_per_credential: ClassVar[int | None]  # the upstream's own per-minute limit per credential

    def exchange(self, account: Account, request: ir.Request, client_headers: Mapping[str, str],
                 transport: Transport) -> AsyncIterator[ir.Event]:
        """For upstreams that are not "POST JSON, read JSON or SSE" (a WebSocket
        after a POST, a form-encoded web protocol with framed replies): run the
        whole exchange and yield IR events. Raise ``ir.Error`` (or yield an
        ``ErrorEvent`` first) to fail over; the pipeline's failover, health,
        accounting and client encoding stay around it."""
        ...

    def headroom(self, headers: Mapping[str, str]) -> list[quota.Window]:
        """The quota windows a response's headers show (any response: a 429
        often says which window ran out); [] when it carries none."""
        ...

    quota_probe_interval: ClassVar[float | None]  # seconds between usage-endpoint reads; None: no endpoint

    async def probe_quota(self, account: Account, transport: Transport) -> list[quota.Window] | None:
        """The account's windows from the upstream's usage endpoint (None: it
        could not be read). Called at most every ``quota_probe_interval``."""
        ...

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        """Windows a quota error's body names (e.g. a reset time)."""
        ...


class ProviderBase:
    """Defaults for the optional hooks; providers override what they need."""

    credential_wide_markers: ClassVar[tuple[str, ...]] = ()
    billing: ClassVar[str] = "per-token"  # crossroads.cost label: subscription, per-token, credits, unknown
    prompt_cache: ClassVar[bool] = False  # the upstream caches prompts and reports cached tokens
    list_prices: ClassVar[bool] = True  # the built-in price table applies (False: only ``prices:`` in config)
    rate_limit_families: ClassVar[tuple[str, ...]] = ()  # shared header families (ratelimit_headers)
    requests_per_credential: ClassVar[int | None] = None  # per minute, enforced before sending
    owns_exchange: ClassVar[bool] = False
    signals_every_answer: ClassVar[bool] = False  # quota headers on every answer: a 429 without them is the request's
    config_mapping: ClassVar[bool] = False
    also_speaks: ClassVar[tuple[str, ...]] = ()
    dialect: ClassVar[str]
    auth_types: ClassVar[tuple[str, ...]] = ()  # auth-file ``type`` values this provider loads
    oauth: ClassVar[OAuthSpec | None] = None
    quota_probe_interval: ClassVar[float | None] = None
    # the shape of one entry of ``config_key`` (crossroads.configkeys; the default: entries whose keys
    # the provider checks itself); None: the provider reads no config entries (its config_key only
    # names its auth-file channel)
    entry_keys: ClassVar[Mapping[str, Any] | None] = ANY_KEYS
    # other top-level keys the provider owns: their shape, or why it does not act on them
    settings: ClassVar[Mapping[str, Any]] = {}

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

    def speaks(self, dialect: str) -> str:
        """The upstream dialect for a client speaking ``dialect``: its own when
        the upstream also serves it (then the request passes through), else
        the provider's main one."""
        return dialect if dialect in self.also_speaks else self.dialect

    def accounts_from_record(self, record: Record, ctx: AccountContext) -> list[Account]:
        return [self.account_from_record(record, ctx)]

    def classify(self, error: ir.Error) -> Outcome:
        return classify(error, self.credential_wide_markers)

    def exchange(self, account: Account, request: ir.Request, client_headers: Mapping[str, str],
                 transport: Transport) -> AsyncIterator[ir.Event]:
        raise NotImplementedError(f"{type(self).__name__} does not run its own exchange")

    def headroom(self, headers: Mapping[str, str]) -> list[quota.Window]:
        if not self.rate_limit_families:
            return []
        return ratelimit_headers.headroom(headers, self.rate_limit_families)

    async def probe_quota(self, account: Account, transport: Transport) -> list[quota.Window] | None:
        return None

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        return []


def retryable(error: ir.Error) -> bool:
    """Errors another account may not have: quota, auth, overload, outages."""
    return error.status in (401, 402, 403, 408, 429) or error.status >= 500


Scope = Literal["model", "credential", "none"]

# Error codes/messages any upstream uses when the credential is out of paid credits (all its models).
CREDENTIAL_WIDE_MARKERS = ("insufficient_quota", "billing", "credit balance")
# The request is too large for the model: no account will take it.
OVERSIZED_MARKERS = ("prompt is too long", "context_length_exceeded", "maximum context length",
                     "too many tokens", "request too large", "exceeds the context window")
# The upstream refused the content: another account of the same model refuses it too.
REFUSAL_MARKERS = ("content_policy", "content policy", "content_filter", "responsible ai", "safety system",
                   "blocked by safety")
# A refused credential that no refresh will fix.
REVOKED_MARKERS = ("revoked", "invalid_grant", "account has been disabled", "deactivated")
# Set by the pipeline on a 429 without any quota signal from an upstream that signals on every answer.
REQUEST_RATE_LIMIT = "request_rate_limit"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an upstream error means for routing."""

    retry: bool  # another account may succeed
    scope: Scope = "model"  # what to cool: this model, every model of the credential, or nothing
    seconds: float | None = None  # None: health's rule for the status (Retry-After, backoff, transient)
    needs_login: bool = False
    out_of_credits: bool = False  # paid credits are spent: the credential waits for a top-up


def classify(error: ir.Error, credential_wide: tuple[str, ...] = ()) -> Outcome:
    """The failure-classification contract every upstream shares (the README's
    table; ``tests/providers/test_failure_contract.py`` proves each row);
    ``credential_wide`` adds the provider's own codes and phrases for "this
    credential is out of quota". Quota windows an error names (a model
    family's weekly cap, a reset time) are read separately, by
    ``headroom`` and ``error_windows``, and hold back what they name."""
    code = error.code or ""
    if code == "needs_login":
        return Outcome(retry=True, scope="credential", needs_login=True)
    if code == "credential_request_limit":  # the router held back (Provider.requests_per_credential)
        return Outcome(retry=True, scope="credential", seconds=error.retry_after)
    if code == REQUEST_RATE_LIMIT:  # a burst or this request's size, not the account's quota
        return Outcome(retry=True, scope="none")
    if error.status == 404:  # this account lacks the model; another may have it
        return Outcome(retry=True)
    text = f"{code} {error.message}".lower()
    if error.status == 413 or (error.status in (400, 422) and any(m in text for m in OVERSIZED_MARKERS)):
        return Outcome(retry=False, scope="none")
    if error.status in (400, 403, 451) and any(m in text for m in REFUSAL_MARKERS):
        return Outcome(retry=False, scope="none")
    if error.status == 402 or (error.status in (400, 403, 429) and any(m in text for m in CREDENTIAL_WIDE_MARKERS)):
        return Outcome(retry=True, scope="credential", out_of_credits=True)  # (Anthropic says it with a 400)
    if not retryable(error):
        return Outcome(retry=False, scope="none")
    if error.status in (401, 403) and any(m in text for m in REVOKED_MARKERS):
        return Outcome(retry=True, scope="credential", needs_login=True)
    if error.status == 401:  # refused even after a refresh: the credential, not one model
        return Outcome(retry=True, scope="credential")
    if error.status in (403, 429) and any(marker in text for marker in credential_wide):
        return Outcome(retry=True, scope="credential")
    return Outcome(retry=True)
