"""Upstream providers. Each module exposes ``PROVIDER``; adding one means adding
its module name here."""

from __future__ import annotations

from importlib import import_module

from crossroads.providers.base import Account, Provider

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
    "crossroads.providers.iflow",
    "crossroads.providers.vertex",
    "crossroads.providers.vertex_api_key",
)


def all_providers() -> list[Provider]:
    return [import_module(name).PROVIDER for name in _MODULES]


__all__ = ["Account", "Provider", "all_providers"]
