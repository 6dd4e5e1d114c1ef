"""Identifier helpers: fresh ids per dialect and tool-id sanitising."""

from __future__ import annotations

import re
import secrets

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def safe_tool_id(tool_id: str, prefix: str = "toolu_") -> str:
    """Anthropic (and others) require ``^[a-zA-Z0-9_-]+$`` for tool ids."""
    if not tool_id:
        return new_id(prefix)
    return _UNSAFE.sub("_", tool_id)
