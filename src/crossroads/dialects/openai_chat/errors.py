"""OpenAI chat error bodies <-> ir.Error."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.kit import durations
from crossroads.dialects.openai_chat.tables import JSON

_TYPE_BY_KIND: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "server_error",
    "server_error": "server_error",
    "timeout": "server_error",
}


_CODE_BY_KIND: dict[str, str] = {
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "overloaded",
    "timeout": "timeout",
}


_STATUS_BY_KIND: dict[str, int] = {
    "invalid_request": 400, "authentication": 401, "permission": 403, "not_found": 404,
    "request_too_large": 413, "rate_limit": 429, "overloaded": 503, "server_error": 500,
    "timeout": 504,
}


def error_object(error: ir.Error) -> JSON:
    return {"message": error.message, "type": _TYPE_BY_KIND.get(error.kind, "server_error"),
            "param": error.param, "code": error.code or _CODE_BY_KIND.get(error.kind)}


def render_error(error: ir.Error) -> tuple[int, JSON]:
    status = error.status
    if status == 529 or (error.kind == "overloaded" and status < 500):
        status = 503  # Anthropic's 529 means nothing to OpenAI clients
    elif status < 400:
        status = _STATUS_BY_KIND.get(error.kind, 500)
    return status, {"error": error_object(error)}


def _kind_for(status: int, type_: str | None, code: str | None) -> ir.ErrorKind:
    markers = f"{type_ or ''} {code or ''}".lower()
    if "overloaded" in markers:
        return "overloaded"
    if status in ir.KIND_BY_STATUS or status >= 400:
        return ir.kind_for_status(status)
    # No usable HTTP status (an error inside a 200 stream): read the type.
    if "rate_limit" in markers or "quota" in markers:
        return "rate_limit"
    if "authentication" in markers or "invalid_api_key" in markers:
        return "authentication"
    if "permission" in markers:
        return "permission"
    if "not_found" in markers:
        return "not_found"
    if "invalid_request" in markers or "context_length" in markers:
        return "invalid_request"
    if "timeout" in markers:
        return "timeout"
    return "server_error"


def _opt_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def error_from_payload(payload: Any, status: int = 0, fallback: str = "") -> ir.Error:
    """An OpenAI-style error body (also the lenient shapes of compatible
    servers: a list around it, ``error`` as a string, top-level ``message``)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    message: str | None = None
    type_ = code = param = None
    err: Any = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            message = _opt_text(err.get("message"))
            type_ = _opt_text(err.get("type") or err.get("status"))
            code = _opt_text(err.get("code"))
            param = _opt_text(err.get("param"))
        elif isinstance(err, str):
            message = err
            type_ = _opt_text(payload.get("type"))
            code = _opt_text(payload.get("code"))
        else:
            message = _opt_text(payload.get("message") or payload.get("detail"))
            type_ = _opt_text(payload.get("type"))
            code = _opt_text(payload.get("code"))
    if not message:
        message = fallback or (f"upstream returned HTTP {status}" if status else "upstream stream error")
    if code is None and status == 429 and type_ is not None:
        code = type_  # Codex names the limit in the type: usage_limit_reached, usage_not_included
    kind = _kind_for(status, type_, code)
    if status < 400:
        status = _STATUS_BY_KIND[kind]
    return ir.Error(status, kind, message, retry_after=durations.from_error(err if isinstance(err, dict) else None, message), param=param,
                    code=code)


def parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    fallback = body[:500].decode("utf-8", "replace").strip() if payload is None else ""
    return error_from_payload(payload, status, fallback)
