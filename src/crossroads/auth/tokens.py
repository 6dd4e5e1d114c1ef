"""Where each auth-file type keeps its tokens (CLIProxyAPI's layouts).

Most types keep ``access_token`` / ``refresh_token`` / ``expired`` (RFC 3339)
at the top level; some nest them in a ``token`` object (``expiry``). Reading
accepts the other spellings seen in the wild (``expires_at`` in seconds or
milliseconds, ``timestamp`` + ``expires_in``).
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(slots=True)
class TokenGrant:
    """What a token endpoint returned (only the fields we keep)."""

    access_token: str
    refresh_token: str | None = None  # None: the old one stays valid
    expires_in: float | None = None
    id_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provider fields kept in the record


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an RFC 3339 string or a number (seconds or ms)."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                return parse_time(float(text))
            except ValueError:
                return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_section(data: dict[str, Any]) -> dict[str, Any]:
    nested = data.get("token")
    return nested if isinstance(nested, dict) else data


def access_token(data: dict[str, Any]) -> str:
    value = _token_section(data).get("access_token") or data.get("access_token") or ""
    return str(value)


def refresh_token(data: dict[str, Any]) -> str:
    value = _token_section(data).get("refresh_token") or data.get("refresh_token") or ""
    return str(value)


def expires_at(data: dict[str, Any]) -> float | None:
    section = _token_section(data)
    for key in ("expiry", "expired", "expires_at"):
        found = parse_time(section.get(key))
        if found is not None:
            return found
    for key in ("expired", "expires_at"):
        found = parse_time(data.get(key))
        if found is not None:
            return found
    stamp = parse_time(data.get("timestamp"))
    lifetime = data.get("expires_in")
    if stamp is not None and isinstance(lifetime, int | float):
        return stamp + float(lifetime)
    return None


def with_grant(data: dict[str, Any], grant: TokenGrant, now: float | None = None) -> dict[str, Any]:
    """A copy of the record's data holding the new tokens (old refresh token
    kept when the grant brought none)."""
    now = time.time() if now is None else now
    out = dict(data)
    expiry = now + grant.expires_in if grant.expires_in else None
    if isinstance(out.get("token"), dict):
        section = dict(out["token"])
        section["access_token"] = grant.access_token
        if grant.refresh_token:
            section["refresh_token"] = grant.refresh_token
        if expiry is not None:
            section["expiry"] = format_time(expiry)
        section.setdefault("token_type", "Bearer")
        out["token"] = section
    else:
        out["access_token"] = grant.access_token
        if grant.refresh_token:
            out["refresh_token"] = grant.refresh_token
        if expiry is not None:
            out["expired"] = format_time(expiry)
            if "expires_in" in out or "timestamp" in out:
                out["expires_in"] = int(grant.expires_in or 0)
                out["timestamp"] = int(now * 1000)
        out.pop("expires_at", None)
    if grant.id_token:
        out["id_token"] = grant.id_token
    out.update(grant.extra)
    out["last_refresh"] = format_time(now)
    return out


def token_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of a record a refresh owns (re-applied onto a record another
    writer changed meanwhile)."""
    keys = ("token", "access_token", "refresh_token", "expired", "expires_at", "expires_in",
            "timestamp", "id_token", "last_refresh")
    return {key: data[key] for key in keys if key in data}


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT; {} when it is not one. Only used to
    read account ids/emails/plans the identity server put there for us."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}
