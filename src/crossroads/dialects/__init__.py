"""Wire dialects. Each module exposes a module-level ``DIALECT`` instance."""

from __future__ import annotations

from importlib import import_module

from crossroads.dialects.base import Dialect, StreamDecoder, StreamEncoder

_MODULES = {
    "openai-chat": "crossroads.dialects.openai_chat",
    "openai-completions": "crossroads.dialects.openai_completions",
    "openai-responses": "crossroads.dialects.openai_responses",
    "anthropic": "crossroads.dialects.anthropic",
    "gemini": "crossroads.dialects.gemini",
    "cloudcode": "crossroads.dialects.cloudcode",
}

_cache: dict[str, Dialect] = {}


def get(name: str) -> Dialect:
    dialect = _cache.get(name)
    if dialect is None:
        dialect = import_module(_MODULES[name]).DIALECT
        _cache[name] = dialect
    return dialect


__all__ = ["Dialect", "StreamDecoder", "StreamEncoder", "get"]
