"""Gemini error bodies <-> ir.Error."""

from __future__ import annotations

import re
from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.gemini.tables import ERROR_STATUS, KIND_BY_GOOGLE_STATUS


def _retry_seconds(value: Any) -> float | None:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", value)
        return float(match.group(1)) if match else None
    if isinstance(value, dict):  # a Duration given as an object
        seconds = value.get("seconds", 0)
        nanos = value.get("nanos", 0)
        try:
            return float(seconds) + float(nanos) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def error_from_object(error: dict[str, Any], status: int) -> ir.Error:
    code = error.get("code")
    http_status = code if isinstance(code, int) and 400 <= code <= 599 else status
    raw_status, raw_message = error.get("status"), error.get("message")
    google_status = raw_status if isinstance(raw_status, str) else None
    message = raw_message if isinstance(raw_message, str) else ""
    kind = KIND_BY_GOOGLE_STATUS.get(google_status or "") or ir.kind_for_status(http_status)
    retry_after: float | None = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        type_url = str(detail.get("@type", ""))
        if type_url.endswith("google.rpc.RetryInfo"):
            retry_after = _retry_seconds(detail.get("retryDelay"))
        elif type_url.endswith("google.rpc.ErrorInfo") and detail.get("reason") == "API_KEY_INVALID":
            # Google answers a bad API key with 400 INVALID_ARGUMENT; it is an auth failure.
            kind, http_status = "authentication", 401
    if retry_after is None and kind == "rate_limit":
        hinted = re.search(r"retry in (\d+(?:\.\d+)?)s", message, re.IGNORECASE)
        retry_after = float(hinted.group(1)) if hinted else None
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
    body: dict[str, Any] = {"code": status, "message": error.message, "status": google_status}
    if error.retry_after is not None:
        delay = f"{error.retry_after:.3f}".rstrip("0").rstrip(".")
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}]
    return status, {"error": body}
