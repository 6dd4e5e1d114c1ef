"""The OAuth settings one config puts in force: every provider's spec with the
config's ``oauth-endpoints`` overrides applied.

The config key maps an auth-file type to overrides, e.g.::

    oauth-endpoints:
      TYPE: {authorize-url: ..., token-url: ..., base-url: ...}
      OTHER-TYPE: {client-secret: ..., refresh-lead: 600}

so regional/enterprise endpoints (and tests' fake identity servers) work
without code changes. ``base-url`` overrides the provider's upstream; keys
that are not settings fields are kept in ``extra`` (``userinfo-url``...).

A table is immutable and built per config: callers hold the one of the
config in force (a rejected config's table is never used).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from crossroads.auth.spec import OAuthEntry, OAuthSettings, OAuthSpec

# config key -> OAuthSettings field
_FIELDS = MappingProxyType({
    "client-id": "client_id", "client-secret": "client_secret", "authorize-url": "authorize_url",
    "token-url": "token_url", "device-url": "device_url", "verification-url": "verification_url",
    "discovery-url": "discovery_url", "base-url": "base_url", "callback-port": "callback_port",
    "redirect-uri": "redirect_uri"})


class UnknownOAuthType(ValueError):
    """No subscription provider declares this auth-file type."""


@dataclass(frozen=True, slots=True)
class OAuthTable:
    specs: Mapping[str, OAuthSpec]  # by auth-file type
    overrides: Mapping[str, OAuthSettings]  # only the types the config overrides
    login_names: Mapping[str, OAuthSpec]

    @classmethod
    def build(cls, specs: Iterable[OAuthSpec], raw_config: Mapping[str, Any]) -> OAuthTable:
        """The table for a config; ValueError (with the config key) for bad input."""
        by_type: dict[str, OAuthSpec] = {}
        names: dict[str, OAuthSpec] = {}
        for spec in specs:
            if spec.type in by_type:
                raise ValueError(f"two OAuth specs declare the auth type {spec.type!r}")
            by_type[spec.type] = spec
            for name in spec.all_login_names:
                if name in names:
                    raise ValueError(f"login name {name!r} is declared by {names[name].type!r} and {spec.type!r}")
                names[name] = spec
        section = raw_config.get("oauth-endpoints") or {}
        if not isinstance(section, dict):
            raise ValueError("'oauth-endpoints' must map a provider type to its endpoints")
        overrides: dict[str, OAuthSettings] = {}
        for kind, values in section.items():
            found = by_type.get(str(kind))
            if found is None:
                raise ValueError(f"oauth-endpoints: unknown provider {kind!r}; known: {', '.join(by_type)}")
            if not isinstance(values, dict):
                raise ValueError(f"oauth-endpoints.{kind} must be a mapping")
            overrides[str(kind)] = apply_overrides(found.defaults, values, f"oauth-endpoints.{kind}")
        return cls(MappingProxyType(by_type), MappingProxyType(overrides), MappingProxyType(names))

    def spec(self, kind: str) -> OAuthSpec:
        found = self.specs.get(kind)
        if found is None:
            raise UnknownOAuthType(f"no OAuth provider for auth type {kind!r}; known: {', '.join(self.specs)}")
        return found

    def settings(self, kind: str) -> OAuthSettings:
        return self.overrides.get(kind) or self.spec(kind).defaults

    def overridden(self, kind: str) -> bool:
        return kind in self.overrides

    def entry(self, kind: str) -> OAuthEntry:
        return OAuthEntry(self.spec(kind), self.settings(kind), self.overridden(kind))

    def kinds(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def by_login_name(self, name: str) -> OAuthSpec | None:
        return self.login_names.get(name)


def apply_overrides(base: OAuthSettings, values: Mapping[str, Any], where: str) -> OAuthSettings:
    changes: dict[str, Any] = {}
    extra = dict(base.extra)
    for key, value in values.items():
        name = _FIELDS.get(str(key))
        if name == "callback_port":
            changes[name] = int(value)
        elif key == "refresh-lead":
            changes["lead"] = float(value)
        elif key == "scopes":
            changes["scopes"] = tuple(str(s) for s in (value if isinstance(value, list) else str(value).split()))
        elif name is not None:
            changes[name] = str(value).rstrip("/") if name.endswith("url") else str(value)
        elif isinstance(value, str | int | float):
            extra[str(key)] = str(value)
        else:
            raise ValueError(f"{where}.{key}: expected a string")
    return replace(base, **changes, extra=extra)
