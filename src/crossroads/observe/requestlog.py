"""The one line written when a request ends: human-readable, or JSON with
``log-format: json``. Client keys show as their configured name or masked;
accounts as their labels; unknown token counts stay unknown."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
        "cost": record.cost,
        "cost_usd": record.cost_usd,
        "cache": record.cache,
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


def text_line(record: RequestRecord, client: str, redactor: Text, debug: bool) -> str:
    """``id key ingress model->served account [attempts] status latency ttft tokens``, built from the
    record directly (the JSON form's dict is not needed for it)."""
    model = record.model or "-"
    served = record.served_model
    if served and served != model:
        model = f"{model}->{served}"
    attempts = ",".join(f"{a.account}:{a.outcome.replace(' ', '/')}" for a in record.attempts)
    usage = record.usage
    tokens = ("tokens=in:? out:? cached:? reasoning:?" if usage is None else
              f"tokens=in:{_n(usage.input_tokens)} out:{_n(usage.output_tokens)} "
              f"cached:{_n(usage.cache_read_tokens)} reasoning:{_n(usage.reasoning_tokens)}")
    ttft = record.ttft
    line = (f"{record.request_id} key={client} in={record.ingress or '-'} {record.method} {record.path} "
            f"model={model} account={record.account or '-'} attempts=[{attempts}] status={record.status} "
            f"latency={record.latency * 1000:.0f}ms ttft={'-' if ttft is None else f'{ttft * 1000:.0f}ms'} "
            f"{tokens}")
    parts = []
    if record.cost:
        usd = record.cost_usd
        parts.append(f"cost={record.cost}" + ("" if usd is None else f":${usd:.6f}"))
    if record.cache:
        parts.append(f"cache={record.cache.replace(' ', '')}")
    if record.disconnected:
        parts.append("client-disconnected")
    if record.error is not None:
        parts.append(f"error={redact.text(redactor, record.error.message)!r}")
    for attempt in record.attempts:
        if attempt.message:
            parts.append(f"upstream-error={redact.text(redactor, f'{attempt.account}: {attempt.message}')!r}")
    if debug and record.upstream_url is not None:
        parts.append(f"upstream={redact.text(redactor, record.upstream_url)} "
                     f"headers={json_line(redact.headers(redactor, record.upstream_headers or {}))}")
    return f"{line} {' '.join(parts)}" if parts else line


@dataclass(slots=True)
class Line:
    """One request's line, waiting for its batch: the text form or the JSON form's fields."""

    level: int
    at: float  # epoch seconds: when the request ended
    text: str | None = None
    fields: dict[str, Any] | None = None


class Batch(logging.LogRecord):
    """Request lines handed to the logging system at once: one record, one
    write per handler. The router's formatters write each line as if it had
    been logged alone (its own time, level and the request fields); any other
    formatter sees the lines as one message."""

    lines: list[Line]


def emit(lines: list[Line]) -> None:
    """Hand the lines to ``crossroads.requests`` in one record per level."""
    for level in sorted({line.level for line in lines}):
        if not log.isEnabledFor(level):
            continue
        chosen = [line for line in lines if line.level == level]
        text = "\n".join(line.text if line.text is not None else json_line(line.fields or {}) for line in chosen)
        batch = Batch(log.name, level, "", 0, text, None, None)
        batch.lines = chosen
        batch.redacted = True  # each line was masked as it was made
        log.handle(batch)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
