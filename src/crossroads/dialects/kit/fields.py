"""Reading client JSON: each reader returns the value or raises a 400 naming
the field, always in the words of :func:`invalid`.

Rules, the same in every dialect: an integer may be written ``3.0`` (JSON has
one number type), booleans are not numbers, and numbers must fit 64 bits (so
no upstream body carries a value its parser cannot hold).
"""

from __future__ import annotations

from typing import Any

from crossroads import ir

JSON = dict[str, Any]

INT_LIMIT = 2**63
NUMBER_LIMIT = 1e300


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


def out_of_range(param: str, value: Any) -> ir.Error:
    return ir.bad_request(f"invalid value for '{param}': {value!r} is out of range", param)


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


def require_number(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(param, "a number", value)
    limit = INT_LIMIT if isinstance(value, int) else NUMBER_LIMIT
    if not -limit <= value < limit:
        raise out_of_range(param, value)
    return value


def require_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise invalid(param, "an integer", value)
    if not -INT_LIMIT <= value < INT_LIMIT:
        raise out_of_range(param, value)
    return value


def require_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(param, "a boolean", value)
    return value


def optional_dict(value: Any, param: str) -> JSON | None:
    return None if value is None else require_dict(value, param)


def optional_list(value: Any, param: str) -> list[Any] | None:
    return None if value is None else require_list(value, param)


def optional_str(value: Any, param: str) -> str | None:
    return None if value is None else require_str(value, param)


def optional_number(value: Any, param: str) -> float | None:
    return None if value is None else require_number(value, param)


def optional_int(value: Any, param: str) -> int | None:
    return None if value is None else require_int(value, param)


def optional_bool(value: Any, param: str) -> bool | None:
    return None if value is None else require_bool(value, param)


def count(value: Any) -> int | None:
    """A token count in an upstream reply: an integer, or nothing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
