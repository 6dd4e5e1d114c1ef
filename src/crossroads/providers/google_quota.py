"""Google's quota errors (Gemini API, Vertex AI, Cloud Code) as quota windows:
a 429 ``RESOURCE_EXHAUSTED`` carries ``google.rpc.QuotaFailure`` violations
naming the quota (``...PerDay...`` or ``...PerMinute...``, requests or
tokens, often for one model) and ``google.rpc.RetryInfo`` with the delay
(``"37s"``). A per-model quota becomes a window scoped to that model."""

from __future__ import annotations

import time
from typing import Any

import orjson

from crossroads import quota
from crossroads.providers import ratelimit_headers


def error_windows(status: int, body: bytes) -> list[quota.Window]:
    if status != 429 or b"QuotaFailure" not in body:
        return []
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return []
    now = time.time()
    delay: float | None = None
    violations: list[dict[str, Any]] = []
    for detail in details:
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.rpc.RetryInfo"):
            text = str(detail.get("retryDelay") or "")
            delay = ratelimit_headers.duration(text) if text else None
        elif kind.endswith("google.rpc.QuotaFailure") and isinstance(detail.get("violations"), list):
            violations += [v for v in detail["violations"] if isinstance(v, dict)]
    windows = []
    for violation in violations:
        quota_id = str(violation.get("quotaId") or violation.get("quotaMetric") or "")
        if "PerDay" in quota_id:
            kind = "daily"
        elif "PerMinute" in quota_id:
            kind = "tokens-per-minute" if "Token" in quota_id else "requests-per-minute"
        else:
            continue
        dimensions = violation.get("quotaDimensions")
        model = dimensions.get("model") if isinstance(dimensions, dict) else None
        limit = ratelimit_headers.number(str(violation.get("quotaValue")))
        windows.append(quota.window(kind, 1.0, None if delay is None else now + delay, "error",
                                    family=str(model).lower() if model else None, limit=limit, now=now))
    return windows
