"""Writing login results to the store (shared by the CLI and the management API)."""

from __future__ import annotations

from crossroads.auth.spec import LoginResult
from crossroads.credentials.base import Record, Store

# CLIProxyAPI auth-file fields a user sets by hand; a re-login keeps them.
ROUTING_FIELDS = ("prefix", "priority", "weight", "disabled", "excluded_models", "proxy_url",
                  "model_aliases", "note")


async def save_results(store: Store, results: list[LoginResult]) -> list[str]:
    """Store each login (atomically, through the store); returns the record ids."""
    saved = []
    for result in results:
        existing = await store.get(result.record_id)
        data = dict(result.data)
        if existing is not None:
            for key in ROUTING_FIELDS:
                if key in existing.data and key not in data:
                    data[key] = existing.data[key]
        await store.put(Record(result.record_id, data))
        saved.append(result.record_id)
    return saved
