"""OAuth tables for tests: the providers' specs under given ``oauth-endpoints``."""

from __future__ import annotations

from typing import Any

from crossroads.auth.refresher import Refresher
from crossroads.auth.table import OAuthTable
from crossroads.credentials.base import Store
from crossroads.providers import AccountContext, oauth_specs


def oauth_table(endpoints: dict[str, Any] | None = None) -> OAuthTable:
    return OAuthTable.build(oauth_specs(), {"oauth-endpoints": endpoints or {}})


def every_type_at(url: str) -> dict[str, Any]:
    """``oauth-endpoints`` pointing every provider type at one fake identity server."""
    return {kind: {"client-id": "test-client", "token-url": f"{url}/oauth/token",
                   "authorize-url": f"{url}/oauth/authorize", "device-url": f"{url}/oauth/device",
                   "discovery-url": f"{url}/.well-known/openid-configuration"}
            for kind in oauth_table().kinds()}


def account_context(store: Store | None, endpoints: dict[str, Any] | None = None) -> AccountContext:
    """What building accounts needs: a table and a refresher persisting to ``store``."""
    table = oauth_table(endpoints)
    return AccountContext(Refresher(store, oauth=lambda: table), table)
