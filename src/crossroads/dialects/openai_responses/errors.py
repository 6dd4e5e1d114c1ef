"""OpenAI Responses error bodies <-> ir.Error."""

from __future__ import annotations

from typing import Any

from crossroads import ir
from crossroads.dialects.openai_responses.tables import JSON

_ERROR_TYPES: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "overloaded": "server_error",
    "server_error": "server_error",
    "timeout": "timeout_error",
}


# ResponseError.code (in response.failed) is a closed set in the SDK.
_FAILED_CODES: dict[str, str] = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}


_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "insufficient_quota", "usage_limit_reached",
                               "usage_not_included"})


def error_from_code(code: Any, message: str, param: Any = None, retry_after: float | None = None) -> ir.Error:
    """A mid-stream / response.failed error (which carries a code but no HTTP status)."""
    code_str = code if isinstance(code, str) else None
    if code_str in _RATE_LIMIT_CODES:
        status = 429
    elif code_str and (code_str.startswith(("invalid", "image", "context_length", "unsupported"))
                       or "image" in code_str):
        status = 400
    elif code_str in ("server_is_overloaded", "slow_down"):
        status = 503
    else:
        status = 500
    return ir.Error(status, ir.kind_for_status(status), message or "upstream error",
                    retry_after=retry_after, param=param if isinstance(param, str) else None, code=code_str)


def failed_error(error: ir.Error) -> JSON:
    return {"code": error.code or _FAILED_CODES.get(error.kind, "server_error"), "message": error.message}


def render_error(error: ir.Error) -> tuple[int, dict[str, Any]]:
    code = error.code
    if code is None and error.kind == "rate_limit":
        code = "rate_limit_exceeded"
    return error.status, {"error": {"message": error.message, "type": _ERROR_TYPES.get(error.kind, "server_error"),
                                    "param": error.param, "code": code}}
