"""An immutable view of one config: its accounts, pools, client keys, OAuth
endpoints and model catalogue.

Building a snapshot has no side effects on the running server, so a
candidate config is validated simply by building one; a reload that
succeeds swaps one reference (``Runtime.snapshot``) and every request keeps
the snapshot it started with.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crossroads import configkeys
from crossroads.access import KeyCheck
from crossroads.auth.refresher import Refresher
from crossroads.auth.table import OAuthTable
from crossroads.config import SHAPE, Config, ConfigError
from crossroads.credentials.base import Record
from crossroads.providers import Account, Provider, error_rules
from crossroads.providers.base import AccountContext, ModelRoute
from crossroads.providers.entries import alias_pool_siblings
from crossroads.providers.subscription_catalogue import Catalogue
from crossroads.routing.registry import Registry
from crossroads.services.book import SideServices

log = logging.getLogger("crossroads")

# read here rather than by config.py: the OAuth channel rules, endpoints and catalogue
SNAPSHOT_KEYS = frozenset({"oauth-excluded-models", "oauth-model-alias", "oauth-endpoints", "model-catalogue",
                           "oauth-request-scoped-errors"})
_SNAPSHOT_SHAPE = {
    "oauth-excluded-models": None, "oauth-endpoints": None, "model-catalogue": None,
    "oauth-request-scoped-errors": {"*": [{"status": None, "match": None, "match-regexr": None, "action": None}]},
    # each rule: name, alias, fork; force-mapping is what every reply does (the client's name comes back)
    "oauth-model-alias": {"*": [{"name": None, "alias": None, "fork": None, "force-mapping": None,
                                 "display-name": "the model list carries no per-model metadata"}]},
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: Config
    registry: Registry
    keys: KeyCheck
    oauth: OAuthTable
    catalogue: Catalogue
    unknown_keys: list[str] = field(default_factory=list)  # paths, e.g. gemini-api-key[0].typo
    unused_keys: list[str] = field(default_factory=list)  # known to CLIProxyAPI, not acted on here
    secrets: frozenset[str] = frozenset()  # everything that must never be shown (see crossroads.redaction)
    findings: tuple[configkeys.Finding, ...] = ()  # both, with their lines and reasons

    @property
    def accounts(self) -> list[Account]:
        return self.registry.accounts


def build(cfg: Config, records: Iterable[Record], providers: Sequence[Provider],
          refresher: Refresher, services: SideServices | None = None) -> Snapshot:
    """A snapshot of ``cfg`` with the stored credentials ``records``; raises
    ConfigError naming the file and the entry at fault."""
    try:
        oauth = OAuthTable.build([p.oauth for p in providers if p.oauth is not None], cfg.raw)
        catalogue = Catalogue.from_config(cfg.raw)
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    records = list(records)
    accounts = build_accounts(cfg, records, providers, AccountContext(refresher, oauth, services))
    ignored = [(note.split(": ", 1)[0], f"this rule is never applied: {note.split(': ', 1)[1]} (not supported)")
               for note in cfg.payload.ignored]
    findings = configkeys.report(cfg.text, config_shape(providers), ignored) if cfg.text else []
    return Snapshot(cfg, Registry(accounts, cfg.force_model_prefix), KeyCheck(cfg.api_keys), oauth, catalogue,
                    [f.path for f in findings if f.unknown], [f.path for f in findings if not f.unknown],
                    _secrets(cfg, accounts, records), tuple(findings))


def config_shape(providers: Sequence[Provider]) -> dict[str, configkeys.Shape]:
    """Every key the router reads, at every depth: config.py's, the
    snapshot's and each provider's own (crossroads.configkeys notation)."""
    shape: dict[str, configkeys.Shape] = {**SHAPE, **_SNAPSHOT_SHAPE}
    for provider in providers:
        if provider.entry_keys is not None:
            shape[provider.config_key] = provider.entry_keys if provider.entry_keys is configkeys.ANY_KEYS \
                else [provider.entry_keys]
        shape.update(provider.settings)
    return shape


_SECRET_FIELD = re.compile(r"token|secret|key|cookie|password|psid|authorization", re.IGNORECASE)


def _secrets(cfg: Config, accounts: list[Account], records: list[Record]) -> frozenset[str]:
    found = {*cfg.api_keys, *(a.secret for a in accounts)}
    if cfg.management_secret:
        found.add(cfg.management_secret)
    for record in records:
        found.update(_secret_values(record.data))
    found.update(_secret_values(cfg.raw))  # sections read by providers and side services too
    return frozenset(s for s in found if s)


def _secret_values(data: object, depth: int = 0) -> set[str]:
    """Strings (or lists of strings) under keys that name a secret, at any
    depth; a section whose name merely ends in "key" (``claude-api-key``)
    lends no secrecy to the entries inside it."""
    found: set[str] = set()
    if depth > 8:
        return found
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        secret_name = isinstance(key, str) and bool(_SECRET_FIELD.search(key))
        if isinstance(value, str):
            if secret_name:
                found.add(value)
        elif secret_name and isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.update(value)
        elif isinstance(value, dict | list):
            found |= _secret_values(value, depth + 1)
    return found


def build_accounts(cfg: Config, records: Iterable[Record], providers: Sequence[Provider],
                   ctx: AccountContext) -> list[Account]:
    """Accounts from the config's upstream lists and from stored credentials."""
    accounts: list[Account] = []
    by_type: dict[str, Provider] = {}
    section = cfg.raw.get("oauth-request-scoped-errors") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{cfg.source}: 'oauth-request-scoped-errors' must map a channel to its rules")
    try:
        channel_errors = {str(channel): error_rules.parse(rules, f"oauth-request-scoped-errors.{channel}")
                          for channel, rules in section.items()}
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    for provider in providers:
        for auth_type in provider.auth_types:
            by_type[auth_type] = provider
        if provider.entry_keys is None:
            continue  # its config_key names an auth-file channel, not a list of entries
        entries = cfg.raw.get(provider.config_key) or []
        if isinstance(entries, dict) and provider.config_mapping:  # ``ai-studio-proxy: {endpoint: ...}``
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"{cfg.source}: '{provider.config_key}' must be a list of mappings")
        try:
            built = provider.accounts(entries, ctx)
            accounts.extend(built)
            accounts.extend(sibling for account in built for sibling in alias_pool_siblings(account))
        except ValueError as exc:
            raise ConfigError(f"{cfg.source}: {exc}") from None
        except (TypeError, KeyError, AttributeError) as exc:  # a value of the wrong type deep in an entry
            where = _failing_entry(provider, entries, ctx)
            raise ConfigError(f"{cfg.source}: {where}: a value has the wrong type ({exc})") from None
    for record in records:
        owner = by_type.get(record.type)
        if owner is None:
            log.warning("credential %s has unknown type %r; skipped", record.id, record.type)
            continue
        try:
            found = owner.accounts_from_record(record, ctx)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("credential %s cannot be used: %s", record.id, exc)
            continue
        for account in found:
            apply_channel_rules(account, record.type, cfg, channel_errors)
            accounts.append(account)
    return _unique_ids(accounts)


def _failing_entry(provider: Provider, entries: list[dict[str, object]], ctx: AccountContext) -> str:
    """Which entry of ``provider``'s list a type error came from (tried one by one, on the error path only)."""
    for index, entry in enumerate(entries):
        try:
            provider.accounts([entry], ctx)
        except Exception:
            return f"{provider.config_key}[{index}]"
    return provider.config_key


def _unique_ids(accounts: list[Account]) -> list[Account]:
    """Two entries with the same key, base URL and prefix (e.g. the same key
    listed twice for different models) are still two accounts."""
    seen: dict[str, int] = {}
    for account in accounts:
        count = seen.get(account.id, 0)
        seen[account.id] = count + 1
        if count:
            account.id = f"{account.id}~{count + 1}"
    return accounts


def apply_channel_rules(account: Account, channel: str, cfg: Config,
                        channel_errors: dict[str, tuple[error_rules.ErrorRule, ...]]) -> None:
    """``oauth-excluded-models`` and ``oauth-model-alias`` for one OAuth channel
    (an auth-file type): exclude upstream models by wildcard, and expose
    upstream models under aliases (``fork: true`` keeps the original name as
    well)."""
    account.error_rules = channel_errors.get(channel, ())
    excluded = (cfg.raw.get("oauth-excluded-models") or {}).get(channel) or []
    if excluded:
        account.excluded = (*account.excluded, *map(str, excluded))
        account.routes = {k: r for k, r in account.routes.items() if not account.is_excluded(r.upstream)}
    for rule in (cfg.raw.get("oauth-model-alias") or {}).get(channel) or []:
        if not isinstance(rule, dict) or not rule.get("name") or not rule.get("alias"):
            continue
        upstream, alias = str(rule["name"]), str(rule["alias"])
        original = next((r for r in account.routes.values() if r.upstream == upstream), None)
        if original is None:
            continue
        if not rule.get("fork"):
            account.routes = {k: r for k, r in account.routes.items() if r.upstream != upstream}
        account.routes[alias] = ModelRoute(upstream=upstream, exposed=alias)
        if account.prefix:
            named = f"{account.prefix}/{alias}"
            account.routes[named] = ModelRoute(upstream=upstream, exposed=named)


def preview(cfg: Config, records: Iterable[Record] = ()) -> Snapshot:
    """A snapshot for commands that inspect a config without serving it
    (its refresher is never asked for a token)."""
    from crossroads.providers import all_providers

    built: list[Snapshot] = []
    snapshot = build(cfg, records, all_providers(), Refresher(oauth=lambda: built[0].oauth))
    built.append(snapshot)
    return snapshot
