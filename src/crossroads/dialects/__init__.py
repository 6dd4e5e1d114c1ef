"""Wire dialects: one package per client-facing dialect (same files in each),
the kit they share, and two small dialects built on them (legacy completions,
Cloud Code). Each module exposes a module-level ``DIALECT``."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

from crossroads.dialects.base import Dialect, StreamDecoder, StreamEncoder

_MODULES = {
    "openai-chat": ("crossroads.dialects.openai_chat", "DIALECT"),
    "openai-completions": ("crossroads.dialects.openai_completions", "DIALECT"),
    "openai-responses": ("crossroads.dialects.openai_responses", "DIALECT"),
    "anthropic": ("crossroads.dialects.anthropic", "DIALECT"),
    "gemini": ("crossroads.dialects.gemini", "DIALECT"),
    # streamGenerateContent without alt=sse: Gemini with streams framed as a JSON array
    "gemini:json-array": ("crossroads.dialects.gemini", "JSON_ARRAY"),
    "cloudcode": ("crossroads.dialects.cloudcode", "DIALECT"),
}

_cache: dict[str, Dialect] = {}


def get(name: str) -> Dialect:
    dialect = _cache.get(name)
    if dialect is None:
        module, attribute = _MODULES[name]
        dialect = _cache[name] = getattr(import_module(module), attribute)
    return dialect


def identified_by(headers: Mapping[str, str]) -> str | None:
    """The dialect whose clients alone send one of these headers, if any."""
    for name in _MODULES:
        dialect = get(name)
        if dialect.identifies(headers):
            return dialect.name
    return None


def for_path(path: str, default: str = "openai-chat") -> str:
    """The dialect whose endpoints look like ``path`` (for errors on unknown paths)."""
    for name in _MODULES:
        dialect = get(name)
        if any(marker in path for marker in dialect.path_markers):
            return dialect.name
    return default


__all__ = ["Dialect", "StreamDecoder", "StreamEncoder", "for_path", "get", "identified_by"]
