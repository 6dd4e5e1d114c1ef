"""Helpers for checking codec output against the official SDK types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter

# pydantic validates the SDK's ``Iterable[...]`` fields lazily, through an
# iterator type pydantic_core does not export.
ValidatorIterator = type(TypeAdapter(Iterable[int]).validate_python([]))


def drain(value: Any) -> None:
    """Walk a validated SDK value so every lazily validated list is really checked."""
    if isinstance(value, ValidatorIterator | dict):
        for item in (value.values() if isinstance(value, dict) else value):
            drain(item)
    elif isinstance(value, list | tuple):
        for item in value:
            drain(item)
