"""Log files, as CLIProxyAPI keeps them in its logs directory:

- ``logging-to-file``: the log goes to ``main.log``, which is rotated at
  10 MB (to ``main-<time>.log``); every worker appends to the same file and
  the first to see it full renames it under a lock, the others reopen;
- ``request-log``: one file per request with the client's request, what was
  sent upstream and the response, bodies cut at ``request-log-max-body-bytes``
  and secrets masked;
- with ``request-log`` off, failed requests still get a file
  (``error-...log``), the newest ``error-logs-max-files`` kept;
- ``logs-max-total-size-mb``: the oldest files go once the directory is larger.

Files are written off the event loop, in a worker thread.
"""

from __future__ import annotations

import fcntl
import logging
import logging.handlers
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from crossroads.observe import redact
from crossroads.observe.redact import Text
from crossroads.record import RequestRecord

MAIN_LOG = "main.log"
AUDIT_LOG = "audit.log"  # management changes (kept whatever the size cap)
ROTATE_BYTES = 10 * 1024 * 1024
ERROR_PREFIX = "error-"
_SLUG = re.compile(r"[^A-Za-z0-9]+")


class SharedFileHandler(logging.handlers.WatchedFileHandler):
    """Appends from several processes; rotation is one rename under a lock,
    noticed by the others through the file's identity changing."""

    def __init__(self, path: Path, max_total_bytes: int = 0, max_bytes: int = ROTATE_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(path), encoding="utf-8")
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes
        self._lock_path = path.with_suffix(".lock")

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        stream = self.stream
        if stream is not None and stream.tell() >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                path = Path(self.baseFilename)
                if path.exists() and path.stat().st_size >= self.max_bytes:
                    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime())
                    path.rename(path.with_name(f"main-{stamp}-{os.getpid()}.log"))
                    if self.max_total_bytes:
                        cap_directory(path.parent, self.max_total_bytes)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self.reopenIfNeeded()


class RequestFiles:
    """Per-request files in the logs directory (see the module docstring)."""

    def __init__(self, directory: Path, max_body: int, error_files: int, max_total_mb: float) -> None:
        self.directory = directory
        self.max_body = max_body
        self.error_files = error_files
        self.max_total_bytes = int(max_total_mb * 1024 * 1024)

    def write(self, record: RequestRecord, redactor: Text, client: str, error_only: bool) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime(record.started_at))
        slug = _SLUG.sub("-", record.path).strip("-") or "request"
        name = f"{ERROR_PREFIX if error_only else ''}{slug}-{stamp}-{record.request_id}.log"
        path = self.directory / name
        path.write_text(self.render(record, redactor, client), encoding="utf-8")
        if error_only:
            self._keep_newest(ERROR_PREFIX, self.error_files)
        if self.max_total_bytes:
            cap_directory(self.directory, self.max_total_bytes)
        return path

    def render(self, record: RequestRecord, redactor: Text, client: str) -> str:
        sections = [
            ("REQUEST INFO", "\n".join((
                f"Request ID: {record.request_id}", f"Time: {_iso(record.started_at)}",
                f"Method: {record.method}", f"Path: {record.path}", f"Client: {client}",
                f"Ingress: {record.ingress or '-'}", f"Model: {record.model or '-'}",
                f"Served by: {record.account or '-'} ({record.served_model or '-'})",
                "Attempts: " + (", ".join(f"{a.account} {a.outcome}" for a in record.attempts) or "-"),
                f"Status: {record.status}", f"Latency: {record.latency * 1000:.0f} ms"))),
            ("HEADERS", _headers(redact.headers(redactor, record.request_headers or {}))),
            ("REQUEST BODY", self._body(record.request_body, redactor)),
        ]
        if record.upstream_url is not None:
            sections.append(("API REQUEST", "\n".join((
                f"URL: {redact.text(redactor, record.upstream_url)}",
                _headers(redact.headers(redactor, record.upstream_headers or {})), "",
                self._body(record.upstream_body, redactor)))))
        errors = [f"{a.account} {a.outcome}: {redact.text(redactor, a.message)}" for a in record.attempts if a.message]
        if errors:
            sections.append(("API ERRORS", "\n".join(errors)))
        response = record.response_body
        if response is None and record.response_chunks is not None:
            response = b"".join(record.response_chunks)
        sections.append(("RESPONSE", f"Status: {record.status}\n\n{self._body(response, redactor)}"))
        return "".join(f"=== {title} ===\n{text}\n\n" for title, text in sections)

    def _body(self, body: bytes | None, redactor: Text) -> str:
        if not body:
            return ""
        if len(body) > self.max_body:
            return redact.data(redactor, body[:self.max_body]) + f"\n[... {len(body) - self.max_body} more bytes cut]"
        return redact.data(redactor, body)

    def _keep_newest(self, prefix: str, count: int) -> None:
        if count <= 0:
            return
        files = sorted((p for p in self.directory.glob(f"{prefix}*.log")), key=_mtime)
        for old in files[:-count]:
            old.unlink(missing_ok=True)



def cap_directory(directory: Path, max_total_bytes: int) -> None:
    """``logs-max-total-size-mb``: the oldest files go (never main.log or the audit log)."""
    files = sorted((p for p in directory.glob("*.log") if p.name not in (MAIN_LOG, AUDIT_LOG)), key=_mtime)
    total = sum(_size(p) for p in directory.glob("*.log"))
    for old in files:
        if total <= max_total_bytes:
            break
        total -= _size(old)
        old.unlink(missing_ok=True)


def _headers(headers: Mapping[str, str]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
