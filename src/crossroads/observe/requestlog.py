"""The one line written when a request ends: human-readable, or JSON with
``log-format: json``. Client keys show as their configured name or masked;
accounts as their labels; unknown token counts stay unknown."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from crossroads.observe import redact
from crossroads.observe.redact import Text
from crossroads.record import RequestRecord

log = logging.getLogger("crossroads.requests")


def fields(record: RequestRecord, client: str, redactor: Text, debug: bool) -> dict[str, Any]:
    usage = record.usage
    out: dict[str, Any] = {
        "request_id": record.request_id,
        "client": client,
        "ingress": record.ingress or None,
        "method": record.method,
        "path": record.path,
        "model": record.model,
        "served_model": record.served_model,
        "account": record.account,
        "provider": record.provider,
        "attempts": [{"account": a.account, "outcome": a.outcome} for a in record.attempts],
        "status": record.status,
        "stream": record.stream,
        "latency_ms": round(record.latency * 1000, 1),
        "ttft_ms": None if record.ttft is None else round(record.ttft * 1000, 1),
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cached_tokens": usage.cache_read_tokens if usage else None,
        "reasoning_tokens": usage.reasoning_tokens if usage else None,
    }
    if record.error is not None:
        out["error"] = redact.text(redactor, record.error.message)
    if record.disconnected:
        out["client_disconnected"] = True
    failures = [redact.text(redactor, f"{a.account}: {a.message}") for a in record.attempts if a.message]
    if failures:
        out["upstream_errors"] = failures
    if debug and record.upstream_url is not None:
        out["upstream_url"] = redact.text(redactor, record.upstream_url)
        out["upstream_headers"] = redact.headers(redactor, record.upstream_headers or {})
    return out


def json_line(values: dict[str, Any]) -> str:
    return orjson.dumps(values).decode()


def text_line(values: dict[str, Any]) -> str:
    """``id key ingress model->served account [attempts] status latency ttft tokens``"""
    served = values["served_model"]
    model = values["model"] or "-"
    if served and served != model:
        model = f"{model}->{served}"
    attempts = ",".join(f"{a['account']}:{a['outcome'].replace(' ', '/')}" for a in values["attempts"])
    parts = [
        values["request_id"], f"key={values['client']}", f"in={values['ingress'] or '-'}",
        f"{values['method']} {values['path']}", f"model={model}", f"account={values['account'] or '-'}",
        f"attempts=[{attempts}]", f"status={values['status']}", f"latency={values['latency_ms']:.0f}ms",
        f"ttft={_ms(values['ttft_ms'])}",
        "tokens=in:{} out:{} cached:{} reasoning:{}".format(*(_n(values[k]) for k in (
            "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"))),
    ]
    if values.get("client_disconnected"):
        parts.append("client-disconnected")
    if "error" in values:
        parts.append(f"error={values['error']!r}")
    for failure in values.get("upstream_errors", ()):
        parts.append(f"upstream-error={failure!r}")
    if "upstream_url" in values:
        parts.append(f"upstream={values['upstream_url']} headers={json_line(values['upstream_headers'])}")
    return " ".join(parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
