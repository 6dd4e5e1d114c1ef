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


class CorruptRecord(StoreError):
    """A stored record that cannot be read (bad JSON, wrong encryption key, ...).
    ``list()`` skips such records (and names them in ``store.problems``) so the
    other accounts still load; ``get()`` raises this."""

    def __init__(self, record_id: str, cause: str) -> None:
        super().__init__(f"credential {record_id!r} cannot be read: {cause}")
        self.record_id = record_id
        self.cause = cause


def check_id(record_id: str) -> str:
    """Record ids become file names and object keys: refuse ones that could
    escape their folder."""
    if (not record_id or record_id.startswith(".") or "/" in record_id or "\\" in record_id
            or "\x00" in record_id or len(record_id) > 200):
        raise StoreError(f"invalid credential id {record_id!r}: use a plain file-name stem")
    return record_id


def problems_of(store: object) -> dict[str, str]:
    """Records the store's last ``list()`` had to skip: id -> reason."""
    problems = getattr(store, "problems", None)
    return dict(problems) if isinstance(problems, dict) else {}


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
