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
                  "error-logs-max-files", "logs-dir", "request-log-max-body-bytes", "metrics", "usage"})
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


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"'{key}' must be true or false, got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"'{key}' must be a non-negative number, got {value!r}")
    return float(value)
