"""Accounts from stored OAuth credentials (shared by the subscription providers).

It lives with the providers, not in :mod:`crossroads.auth`, because it builds
:class:`~crossroads.providers.base.Account` objects: auth never imports
providers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crossroads import ir, quota
from crossroads.auth import refresher
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, AccountContext, ModelRoute, Provider


def oauth_account(provider: Provider, record: Record, models: Iterable[str], ctx: AccountContext, *,
                  base_url: str | None = None, label: str | None = None) -> Account:
    """An account whose token comes from the runtime's refresher; the routing
    fields (``prefix``, ``priority``, ``weight``, ``disabled``,
    ``excluded_models``, ``proxy_url``) are CLIProxyAPI's auth-file fields."""
    data = record.data
    credential = ctx.refresher.credential(record)
    url = base_url or str(data.get("base_url") or "") or ctx.oauth.settings(record.type).base_url
    excluded = data.get("excluded_models") or []
    if not isinstance(excluded, list):
        raise ValueError("'excluded_models' must be a list")
    prefix = str(data.get("prefix") or "").strip("/") or None
    account = Account(
        id=record.id, provider=provider, secret=credential.access_token, base_url=url.rstrip("/"),
        label=label or f"{record.type}:{data.get('email') or record.id}",
        proxy_url=str(data.get("proxy_url") or "") or None, prefix=prefix,
        priority=int(data.get("priority") or 0), weight=int(data.get("weight") or 1),
        excluded=tuple(str(p) for p in excluded),
        disabled=bool(data.get("disabled", False)) or credential.status == "needs_login",
        credential=credential,
        pause_at=quota.fraction(data["pause_at"], "pause_at") if data.get("pause_at") is not None else None,
    )
    aliases = data.get("model_aliases")
    aliases = aliases if isinstance(aliases, dict) else {}
    for model in models:
        if account.is_excluded(model):
            continue
        exposed = str(aliases.get(model) or model)
        account.routes[exposed] = ModelRoute(upstream=model, exposed=exposed)
        if prefix:
            account.routes[f"{prefix}/{exposed}"] = ModelRoute(upstream=model, exposed=f"{prefix}/{exposed}")
    return account


def credential_of(account: Account) -> refresher.Credential:
    credential = account.credential
    if not isinstance(credential, refresher.Credential):
        raise ir.Error(500, "server_error", f"account {account.label} has no OAuth credential attached")
    return credential


async def bearer(account: Account) -> str:
    """A fresh access token for the account (refreshing first when due)."""
    token = await credential_of(account).token()
    account.secret = token  # keeps masked_secret meaningful
    return token


async def refresh_after_401(account: Account) -> bool:
    # the token the failed request used is not known here: a refresh in flight
    # or just finished counts as the fix, otherwise refresh now
    return await credential_of(account).after_unauthorized(None)


def extra(account: Account) -> dict[str, Any]:
    """The credential's record data (account id, project, resource url...)."""
    return credential_of(account).data
