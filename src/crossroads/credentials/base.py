"""The Store interface: where credential records (and optionally the config
document) live. Records are CLIProxyAPI auth files: JSON objects whose
``type`` field names the provider (``claude``, ``codex``, ``gemini``, ...),
plus tokens, expiry, email, project and the routing fields ``prefix``,
``priority``, ``weight``, ``disabled``, ``excluded_models``, ``proxy_url``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class StoreError(Exception):
    """A store operation failed; the message names the record and the cause."""


class Conflict(StoreError):
    """``put`` with an ``expected_version`` that is no longer current."""


@dataclass(slots=True)
class Record:
    id: str  # file-name stem, e.g. "claude-user@example.com"
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # bumped by every successful put; 0 = never stored

    @property
    def type(self) -> str:
        return str(self.data.get("type", ""))


@dataclass(slots=True, frozen=True)
class Change:
    kind: Literal["put", "delete", "config"]
    id: str
    record: Record | None = None


class Store(Protocol):
    async def list(self) -> list[Record]: ...

    async def get(self, record_id: str) -> Record | None: ...

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        """Write atomically. With ``expected_version`` the write only happens if
        the stored version still equals it (else :class:`Conflict`). Returns the
        record with its new version."""
        ...

    async def delete(self, record_id: str) -> None: ...

    def watch(self) -> AsyncIterator[Change]:
        """Changes made by anyone (this process, another replica, a file
        dropped into the folder), as they happen."""
        ...

    async def read_config(self) -> str | None:
        """The config.yaml text kept in the store (None when it keeps none)."""
        ...

    async def write_config(self, text: str) -> None: ...

    async def close(self) -> None: ...
