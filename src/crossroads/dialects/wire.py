"""Small helpers every dialect codec shares: type checks on client JSON that
raise a 400 naming the field, and data URLs."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote_to_bytes

from crossroads import ir

JSON = dict[str, Any]


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def invalid(param: str, expected: str, value: Any) -> ir.Error:
    return ir.bad_request(f"invalid type for '{param}': expected {expected}, got {kind_of(value)}", param)


def require_dict(value: Any, param: str) -> JSON:
    if not isinstance(value, dict):
        raise invalid(param, "an object", value)
    return value


def require_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(param, "an array", value)
    return value


def require_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(param, "a string", value)
    return value


def optional_str(value: Any, param: str) -> str | None:
    return None if value is None else require_str(value, param)


def require_number(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(param, "a number", value)
    return value


def require_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(param, "an integer", value)
    return value


def optional_int(value: Any, param: str) -> int | None:
    return None if value is None else require_int(value, param)


def require_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(param, "a boolean", value)
    return value


def split_data_url(url: str) -> tuple[str, str] | None:
    """``data:<type>[;base64],<payload>`` -> (media type, base64 data); None
    when ``url`` is not a well-formed data URL. Non-base64 payloads are
    percent-decoded and re-encoded."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    if not sep:
        return None
    media_type, _, params = header.partition(";")
    media_type = media_type or "application/octet-stream"
    if "base64" in params.split(";"):
        return media_type, payload
    return media_type, base64.b64encode(unquote_to_bytes(payload)).decode()


def data_url(media_type: str | None, data: str, fallback: str = "application/octet-stream") -> str:
    return f"data:{media_type or fallback};base64,{data}"
