"""OpenAI Responses error bodies <-> ir.Error."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

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


_RETRY_IN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)


_DURATION_PIECE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def retry_after(error: JSON) -> float | None:
    """Retry hints OpenAI puts inside bodies: resets_in_seconds / resets_at (Codex usage
    limits) and "Please try again in 1m3.5s" in messages."""
    seconds = error.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    resets_at = error.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        return max(0.0, float(resets_at) - time.time())
    message = error.get("message")
    if isinstance(message, str):
        match = _RETRY_IN.search(message)
        if match:
            return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PIECE.findall(match.group(1)))
    return None


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


def parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    kind = ir.kind_for_status(status)
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code")
        return ir.Error(
            status, kind,
            message if isinstance(message, str) and message else f"upstream returned HTTP {status}",
            retry_after=retry_after(error),
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            code=code if isinstance(code, str) else (error.get("type") if isinstance(error.get("type"), str)
                                                     and status == 429 else None),
        )
    if isinstance(error, str) and error:
        return ir.Error(status, kind, error)
    if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
        return ir.Error(status, kind, payload["detail"])
    text = body.decode("utf-8", "replace").strip()[:500] if body else ""
    return ir.Error(status, kind, text or f"upstream returned HTTP {status}")


def render_error(error: ir.Error) -> tuple[int, dict[str, Any]]:
    code = error.code
    if code is None and error.kind == "rate_limit":
        code = "rate_limit_exceeded"
    return error.status, {"error": {"message": error.message, "type": _ERROR_TYPES.get(error.kind, "server_error"),
                                    "param": error.param, "code": code}}
