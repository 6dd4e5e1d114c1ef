"""Gemini error bodies <-> ir.Error."""

from __future__ import annotations

from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.gemini.tables import ERROR_STATUS, KIND_BY_GOOGLE_STATUS
from crossroads.dialects.kit import durations


def error_from_object(error: dict[str, Any], status: int) -> ir.Error:
    code = error.get("code")
    http_status = code if isinstance(code, int) and 400 <= code <= 599 else status
    raw_status, raw_message = error.get("status"), error.get("message")
    google_status = raw_status if isinstance(raw_status, str) else None
    message = raw_message if isinstance(raw_message, str) else ""
    kind = KIND_BY_GOOGLE_STATUS.get(google_status or "") or ir.kind_for_status(http_status)
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if (isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo")
                and detail.get("reason") == "API_KEY_INVALID"):
            # Google answers a bad API key with 400 INVALID_ARGUMENT; it is an auth failure.
            kind, http_status = "authentication", 401
    retry_after = durations.from_error(error, message)
    return ir.Error(status=http_status, kind=kind, message=message or f"upstream returned HTTP {http_status}",
                    retry_after=retry_after, code=google_status)


def parse_error(status: int, body: bytes) -> ir.Error:
    try:
        payload: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # streamGenerateContent without alt=sse
        payload = payload[0]
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return error_from_object(payload["error"], status)
    text = body.decode("utf-8", errors="replace").strip()[:500] if body else ""
    return ir.Error(status=status, kind=ir.kind_for_status(status),
                    message=text or f"upstream returned HTTP {status}")


def error_body(error: ir.Error) -> tuple[int, dict[str, Any]]:
    status, google_status = ERROR_STATUS.get(error.kind, (500, "INTERNAL"))
    if google_status == "INTERNAL" and error.status in (502, 503):
        status, google_status = 503, "UNAVAILABLE"  # an upstream out of reach: the SDK retries UNAVAILABLE
    body: dict[str, Any] = {"code": status, "message": error.message, "status": google_status}
    if error.retry_after is not None:
        delay = f"{error.retry_after:.3f}".rstrip("0").rstrip(".")
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}]
    return status, {"error": body}
