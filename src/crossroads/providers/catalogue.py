"""Built-in model ids per provider, used when a config entry lists no models."""

from __future__ import annotations

ANTHROPIC = [
    "claude-opus-4-8", "claude-opus-4-5", "claude-opus-4-1", "claude-sonnet-4-5",
    "claude-sonnet-4", "claude-haiku-4-5",
]
GEMINI = [
    "gemini-3.8-flash", "gemini-3.5-flash-lite", "gemini-3-pro-preview", "gemini-3-flash-preview",
    "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
]
OPENAI_RESPONSES = [
    "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max", "gpt-5", "gpt-5-codex",
    "gpt-5-mini",
]
