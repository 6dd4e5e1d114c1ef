"""Settings for seeing the router run: the request log, log files, metrics
and the usage database, read from config.yaml::

    log-format: text            # text (default) | json: the one line per request
    log-level: info             # debug | info | warning | error
    debug: false                # true: the request line adds the upstream URL and headers (masked)
    logging-to-file: false      # CLIProxyAPI's key: logs go to <logs-dir>/main.log, rotated
    logs-max-total-size-mb: 0   # CLIProxyAPI's key: the oldest log files go beyond this (0 = no cap)
    request-log: false          # CLIProxyAPI's key: every request and response, bodies too, one file each
    error-logs-max-files: 10    # CLIProxyAPI's key: with request-log off, failed requests are kept, this many
    logs-dir: ~/.crossroads/logs          # default: <auth-dir>/logs
    request-log-max-body-bytes: 1048576   # bodies longer than this are cut in request-log files
    metrics: {enabled: true, token: ""}   # /metrics; a token replaces the client-key check
    usage:
      database: sqlite          # sqlite (default, <auth-dir>/usage.sqlite3) | postgres
      path: ~/.crossroads/usage.sqlite3
      dsn: postgresql://user@host/db      # postgres
      schema: public            # postgres
      retention-days: 90        # 0: keep forever
      flush-interval: 1.0       # seconds between batched writes
    tracing:                    # OpenTelemetry traces over OTLP/HTTP (off by default)
      enabled: false
      endpoint: http://127.0.0.1:4318/v1/traces
      service-name: crossroads
      sample-ratio: 1.0         # of traces the client did not start (a client's sampled flag is followed)
      headers: {}               # sent with every export (e.g. an authorization header)
    alerts:                     # webhooks (off without any)
      webhooks:
        - url: https://hooks.slack.com/services/...
          format: slack         # json (default) | slack | discord
          events: [needs-login, no-account, service-down, service-up, budget]   # default: all
          headers: {}
      check-interval: 10        # seconds between looks at logins, side services and budgets
      repeat-after: 3600        # the same alert is not sent again sooner (seconds)
      max-per-minute: 10        # per webhook; alerts beyond it are dropped (and counted in the log)
      budget-threshold: 0.9     # share of a key's budget that counts as nearly spent

Only the standard library here: config.py calls :func:`parse` while it reads
the file, so a bad value is a config error with the file's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
USAGE_DATABASES = ("sqlite", "postgres")
KEYS = frozenset({"log-format", "log-level", "logging-to-file", "logs-max-total-size-mb", "request-log",
                  "error-logs-max-files", "logs-dir", "request-log-max-body-bytes", "metrics", "usage", "tracing", "alerts"})
ALERT_EVENTS = ("needs-login", "no-account", "service-down", "service-up", "budget")
ALERT_FORMATS = ("json", "slack", "discord")
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


@dataclass(slots=True, frozen=True)
class UsageSettings:
    database: str = "sqlite"
    path: str | None = None  # None: <auth-dir>/usage.sqlite3
    dsn: str | None = None
    schema: str = "public"
    retention_days: float = 90.0
    flush_interval: float = 1.0


@dataclass(slots=True, frozen=True)
class TracingSettings:
    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "crossroads"
    sample_ratio: float = 1.0
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, frozen=True)
class Webhook:
    url: str
    format: str = "json"
    events: tuple[str, ...] = ALERT_EVENTS
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, frozen=True)
class AlertSettings:
    webhooks: tuple[Webhook, ...] = ()
    check_interval: float = 10.0
    repeat_after: float = 3600.0
    max_per_minute: int = 10
    budget_threshold: float = 0.9


@dataclass(slots=True, frozen=True)
class OpsSettings:
    log_format: str = "text"
    log_level: str = "info"
    debug: bool = False
    logging_to_file: bool = False
    logs_max_total_mb: float = 0.0
    request_log: bool = False
    error_logs_max_files: int = 10
    logs_dir: str | None = None  # None: <auth-dir>/logs
    request_log_max_body: int = 1024 * 1024
    metrics_enabled: bool = True
    metrics_token: str | None = None
    usage: UsageSettings = field(default_factory=UsageSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    auth_dir: str = "~/.crossroads"

    def logs_path(self) -> Path:
        return Path(self.logs_dir or Path(self.auth_dir) / "logs").expanduser()

    def usage_path(self) -> Path:
        return Path(self.usage.path or Path(self.auth_dir) / "usage.sqlite3").expanduser()


def parse(data: dict[str, Any], auth_dir: str, debug: bool) -> OpsSettings:
    """The settings in ``data`` (a config mapping); ValueError names the key."""
    log_format = str(data.get("log-format") or "text")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"'log-format' must be text or json, got {log_format!r}")
    log_level = str(data.get("log-level") or ("debug" if debug else "info")).lower()
    if log_level == "warn":
        log_level = "warning"
    if log_level not in LOG_LEVELS:
        raise ValueError(f"'log-level' must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise ValueError("'metrics' must be a mapping like {enabled: true, token: SECRET}")
    token = metrics.get("token")
    if token is not None and not isinstance(token, str):
        raise ValueError("'metrics.token' must be a string")
    logs_dir = data.get("logs-dir")
    if logs_dir is not None and not isinstance(logs_dir, str):
        raise ValueError("'logs-dir' must be a path")
    return OpsSettings(
        log_format=log_format, log_level=log_level, debug=debug,
        logging_to_file=_flag(data, "logging-to-file"),
        logs_max_total_mb=_number(data.get("logs-max-total-size-mb", 0), "logs-max-total-size-mb"),
        request_log=_flag(data, "request-log"),
        error_logs_max_files=int(_number(data.get("error-logs-max-files", 10), "error-logs-max-files")),
        logs_dir=logs_dir or None,
        request_log_max_body=int(_number(data.get("request-log-max-body-bytes", 1024 * 1024),
                                         "request-log-max-body-bytes")),
        metrics_enabled=bool(metrics.get("enabled", True)),
        metrics_token=token or None,
        usage=_usage(data.get("usage")),
        tracing=_tracing(data.get("tracing")),
        alerts=_alerts(data.get("alerts")),
        auth_dir=auth_dir,
    )


def _usage(data: Any) -> UsageSettings:
    if data is None:
        return UsageSettings()
    if not isinstance(data, dict):
        raise ValueError("'usage' must be a mapping like {database: sqlite, retention-days: 90}")
    database = str(data.get("database") or "sqlite")
    if database not in USAGE_DATABASES:
        raise ValueError(f"'usage.database' must be sqlite or postgres, got {database!r}")
    dsn = data.get("dsn")
    if database == "postgres" and not (isinstance(dsn, str) and dsn.startswith(("postgres://", "postgresql://"))):
        raise ValueError("'usage.dsn' must be a postgresql:// URL when usage.database is postgres")
    schema = str(data.get("schema") or "public")
    if not _SCHEMA.fullmatch(schema):
        raise ValueError(f"'usage.schema' must be a plain SQL name, got {schema!r}")
    path = data.get("path")
    if path is not None and not isinstance(path, str):
        raise ValueError("'usage.path' must be a file path")
    flush = _number(data.get("flush-interval", 1.0), "usage.flush-interval")
    return UsageSettings(database, path or None, dsn if isinstance(dsn, str) else None, schema,
                         _number(data.get("retention-days", 90), "usage.retention-days"),
                         max(0.05, flush))


def _tracing(data: Any) -> TracingSettings:
    if data is None:
        return TracingSettings()
    if not isinstance(data, dict):
        raise ValueError("'tracing' must be a mapping like {enabled: true, endpoint: http://collector:4318/v1/traces}")
    defaults = TracingSettings()
    endpoint = data.get("endpoint", defaults.endpoint)
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"'tracing.endpoint' must be an http(s) URL (OTLP over HTTP), got {endpoint!r}")
    name = data.get("service-name", defaults.service_name)
    if not isinstance(name, str) or not name:
        raise ValueError("'tracing.service-name' must be a non-empty string")
    ratio = _number(data.get("sample-ratio", 1.0), "tracing.sample-ratio")
    if ratio > 1:
        raise ValueError(f"'tracing.sample-ratio' must be between 0 and 1, got {ratio!r}")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ValueError("'tracing.headers' must be a mapping of header names to strings")
    return TracingSettings(_flag(data, "enabled"), endpoint, name, ratio, tuple(headers.items()))


def _alerts(data: Any) -> AlertSettings:
    if data is None:
        return AlertSettings()
    if not isinstance(data, dict):
        raise ValueError("'alerts' must be a mapping like {webhooks: [{url: https://..., format: slack}]}")
    hooks = data.get("webhooks") or []
    if not isinstance(hooks, list):
        raise ValueError("'alerts.webhooks' must be a list of {url, format, events, headers}")
    webhooks = []
    for n, hook in enumerate(hooks):
        where = f"alerts.webhooks[{n}]"
        if not isinstance(hook, dict) or not isinstance(hook.get("url"), str) or \
                not hook["url"].startswith(("http://", "https://")):
            raise ValueError(f"'{where}' needs an http(s) 'url'")
        form = str(hook.get("format") or "json")
        if form not in ALERT_FORMATS:
            raise ValueError(f"'{where}.format' must be one of {', '.join(ALERT_FORMATS)}, got {form!r}")
        events = hook.get("events") or list(ALERT_EVENTS)
        if not isinstance(events, list) or any(e not in ALERT_EVENTS for e in events):
            raise ValueError(f"'{where}.events' must be a list of {', '.join(ALERT_EVENTS)}")
        headers = hook.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValueError(f"'{where}.headers' must be a mapping of header names to strings")
        webhooks.append(Webhook(hook["url"], form, tuple(events), tuple((str(k), v) for k, v in headers.items())))
    threshold = _number(data.get("budget-threshold", 0.9), "alerts.budget-threshold")
    if threshold > 1:
        raise ValueError(f"'alerts.budget-threshold' must be between 0 and 1, got {threshold!r}")
    return AlertSettings(tuple(webhooks), max(0.2, _number(data.get("check-interval", 10), "alerts.check-interval")),
                         _number(data.get("repeat-after", 3600), "alerts.repeat-after"),
                         int(_number(data.get("max-per-minute", 10), "alerts.max-per-minute")), threshold)


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"'{key}' must be true or false, got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"'{key}' must be a non-negative number, got {value!r}")
    return float(value)
