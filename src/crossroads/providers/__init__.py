"""Upstream providers. Each module exposes ``PROVIDER`` (and a subscription
provider its ``OAUTH`` spec); adding one means adding its module name here."""

from __future__ import annotations

from importlib import import_module

from crossroads.auth.spec import OAuthSpec
from crossroads.providers.base import Account, AccountContext, Provider

_MODULES = (
    "crossroads.providers.anthropic",
    "crossroads.providers.gemini",
    "crossroads.providers.openai_responses",
    "crossroads.providers.openai_compatible",
    "crossroads.providers.claude_oauth",
    "crossroads.providers.codex",
    "crossroads.providers.gemini_cli",
    "crossroads.providers.antigravity",
    "crossroads.providers.qwen",
    "crossroads.providers.kimi",
    "crossroads.providers.xai",
    "crossroads.providers.xai_api_key",
    "crossroads.providers.iflow",
    "crossroads.providers.vertex",
    "crossroads.providers.vertex_api_key",
    "crossroads.providers.ai_studio_proxy",
    "crossroads.providers.webai_proxy",
    "crossroads.providers.ctonew_proxy",
    "crossroads.providers.side_services",
    "crossroads.providers.ctonew",
    "crossroads.providers.gemini_web",
)


def all_providers() -> list[Provider]:
    return [import_module(name).PROVIDER for name in _MODULES]


def oauth_specs() -> list[OAuthSpec]:
    """The OAuth specs of the subscription providers, in registry order."""
    found = (getattr(import_module(name), "OAUTH", None) for name in _MODULES)
    return [spec for spec in found if isinstance(spec, OAuthSpec)]


__all__ = ["Account", "AccountContext", "Provider", "all_providers", "oauth_specs"]
