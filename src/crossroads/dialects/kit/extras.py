"""Fields the IR does not model, kept so a round trip through the same
dialect loses nothing.

Every IR object with an ``extra`` dict keeps a dialect's share under the
dialect's name (``extra["anthropic"]``: wire keys merged back verbatim) and,
where a dialect needs to remember how the client wrote something, under
``"<name>:form"`` (string vs. list content, which of two spellings...).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

JSON = dict[str, Any]


def form_key(name: str) -> str:
    return f"{name}:form"


def leftovers(obj: JSON, known: Collection[str]) -> JSON:
    """The keys of ``obj`` the codec did not read."""
    return {key: value for key, value in obj.items() if key not in known}


def own(extra: JSON | None, key: str) -> JSON:
    """One dialect's share of an ``extra`` dict ({} when there is none)."""
    if not extra:
        return {}
    value = extra.get(key)
    return value if isinstance(value, dict) else {}


def wrap(key: str, fields: JSON | None, form_name: str | None = None, form: JSON | None = None) -> JSON | None:
    """An ``extra`` dict holding ``fields`` (and ``form``), or None when both are empty."""
    if not fields and not form:
        return None
    out: JSON = {}
    if fields:
        out[key] = fields
    if form and form_name:
        out[form_name] = form
    return out


def merged(block: JSON, extra: JSON | None, key: str) -> JSON:
    """``block`` with the kept wire keys merged under it (the block's own keys win)."""
    fields = own(extra, key)
    return {**fields, **block} if fields else block


def claim(holder: Any, key: str) -> JSON:
    """``holder.extra[key]``, created when missing: for IR objects a codec
    builds itself and annotates as it goes."""
    if holder.extra is None:
        holder.extra = {}
    share = holder.extra.get(key)
    if share is None:
        share = holder.extra[key] = {}
    return share
