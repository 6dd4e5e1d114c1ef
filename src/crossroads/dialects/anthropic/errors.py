"""Anthropic Messages error bodies <-> ir.Error."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.anthropic.tables import (
    CANONICAL_ERROR_TYPES,
    ERROR_KIND_FROM_TYPE,
    ERROR_WIRE_FOR_KIND,
    JSON,
    SDK_ERROR_TYPES,
)
from crossroads.dialects.kit import durations


def error_from_payload(payload: Any, status: int | None) -> ir.Error:
    """An Anthropic error body (``{"type": "error", "error": {...}}``) -> ir.Error.
    ``status`` None (a mid-stream ``error`` event) derives it from the type."""
    error = payload.get("error") if isinstance(payload, dict) else None
    wire_type: str | None = None
    code: str | None = None
    message = ""
    if isinstance(error, dict):
        wire_type = error.get("type") if isinstance(error.get("type"), str) else None
        message = str(error.get("message") or "")
        details = error.get("details")
        if isinstance(details, dict) and isinstance(details.get("error_code"), str):
            code = details["error_code"]
    elif isinstance(error, str):
        message = error
    kind = ERROR_KIND_FROM_TYPE.get(wire_type or "")
    if status is None:
        kind = kind or "server_error"
        status = ERROR_WIRE_FOR_KIND[kind][0]
    elif status == 413:
        kind = "request_too_large"
    elif kind is None:
        kind = ir.kind_for_status(status)
    if code is None and wire_type is not None and wire_type not in CANONICAL_ERROR_TYPES:
        code = wire_type
    return ir.Error(status, kind, message or wire_type or f"upstream returned HTTP {status}", code=code,
                    retry_after=durations.from_error(error, message))


def parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and "error" in payload:
        return error_from_payload(payload, status)
    text = body.decode(errors="replace").strip()[:500]
    return ir.Error(status, ir.kind_for_status(status), text or f"upstream returned HTTP {status}")


def error_body(error: ir.Error) -> JSON:
    wire_type = error.code if error.code in SDK_ERROR_TYPES else ERROR_WIRE_FOR_KIND[error.kind][1]
    message = error.message
    if error.param and not message.startswith(error.param):
        message = f"{error.param}: {message}"
    return {"type": "error", "error": {"type": wire_type, "message": message}}


def render_error(error: ir.Error) -> tuple[int, JSON]:
    status = error.status if 400 <= error.status <= 599 else ERROR_WIRE_FOR_KIND[error.kind][0]
    return status, error_body(error)
