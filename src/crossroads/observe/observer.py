"""The router's view of itself: it opens a record when a request arrives
and, when the request ends, writes the one log line, the metrics, the usage
row and (when asked for) the request's file.

Guarantees:
- per request: one record, written once, when the reply (or the stream) has
  ended, whether it ended well, in an error or because the client left;
- nothing is computed per stream chunk (request-log capture aside, which is
  opt-in and costs a list append per chunk);
- secrets are masked wherever a record is written: client keys show as their
  configured name or masked, accounts as their labels, headers by name, and
  text through the runtime's redaction (every secret of the config in force);
- usage rows are batched to the database by a background task; ``close``
  writes the last batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crossroads import requestid
from crossroads.config import Config
from crossroads.http import StreamReply
from crossroads.observe import requestlog
from crossroads.observe.alerts import Alerts
from crossroads.observe.logfiles import AUDIT_LOG, MAIN_LOG, RequestFiles, SharedFileHandler
from crossroads.observe.metrics import Gauges, Metrics
from crossroads.observe.redact import Text
from crossroads.observe.tracing import Tracer, close_soon, open_tracer
from crossroads.observe.usage_queue import UsageQueue, retention_of
from crossroads.observe.usage_sql import UsageRow
from crossroads.observe.usage_store import UsageStore
from crossroads.record import RequestRecord
from crossroads.redaction import mask

log = logging.getLogger("crossroads")
audit_log = logging.getLogger("crossroads.audit")
SAMPLE_EVERY = 5.0  # seconds between gauge samples
# An ended request is recorded at once (metrics, usage row, trace, alerts, files), each as it ends, so the
# work is spread as evenly as the requests are; only its request-log line waits, to go out in one log write
# with others. A batch of lines waits at most this long (a process killed outright loses at most these) ...
SETTLE_AFTER = 0.05
MAX_BATCH = 256  # ... or goes at once when it holds this many
# probes, scrapes and management calls: logged at debug level, not counted as traffic
QUIET_PATHS = ("/healthz", "/metrics", "/v0/management/")


class TextFormatter(logging.Formatter):
    """``%(asctime)s %(levelname)s %(name)s: %(message)s``, with the time text
    made once per second rather than once per line; a batch of request lines
    is written line by line, each with its own time."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._time(record.created)

    def _time(self, epoch: float) -> str:
        second = int(epoch)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((epoch - second) * 1000):03d}"

    def format(self, record: logging.LogRecord) -> str:
        if not isinstance(record, requestlog.Batch):
            return super().format(record)
        where = f" {record.levelname} {record.name}: "
        return "\n".join(self._time(line.at) + where + (line.text if line.text is not None
                                                         else requestlog.json_line(line.fields or {}))
                         for line in record.lines)


class JsonFormatter(TextFormatter):
    """``log-format: json``: every line a JSON object; request lines carry their fields."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record, requestlog.Batch):
            head = {"level": record.levelname.lower(), "logger": record.name}
            return "\n".join(requestlog.json_line({"time": self._time(line.at), **head,
                                                    **(line.fields or {"message": line.text})})
                             for line in record.lines)
        values = {"time": self.formatTime(record), "level": record.levelname.lower(), "logger": record.name}
        values["message"] = record.getMessage()
        if record.exc_info:  # exc_text: the traceback as the redaction filter masked it
            values["exception"] = record.exc_text or self.formatException(record.exc_info)
        return requestlog.json_line(values)


class Observer:
    def __init__(self, config: Callable[[], Config], redactor: Callable[[], Text],
                 gauges: Callable[[], Gauges]) -> None:
        self._config = config
        self.redactor = redactor  # the runtime's, for the config in force
        self._gauges = gauges
        settings = config().ops
        self.metrics = Metrics()
        self.usage = UsageStore(settings)
        self.usage_queue = UsageQueue(lambda: retention_of(config().raw))
        self.files = self._files()
        self._handlers: list[logging.Handler] = []
        self._pending_files: set[asyncio.Future[Any]] = set()
        self._file_writer: ThreadPoolExecutor | None = None
        self._lines: list[requestlog.Line] = []  # ended requests' log lines, not yet written
        self._settling: asyncio.TimerHandle | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._level = logging.NOTSET
        self.tracer: Tracer | None = None  # tracing: on
        self.alerts = Alerts(lambda: config().ops.alerts, lambda: config().ops.logs_path(), redactor, self.usage)

    def _files(self) -> RequestFiles:
        ops = self._config().ops
        return RequestFiles(ops.logs_path(), ops.request_log_max_body, ops.error_logs_max_files,
                            ops.logs_max_total_mb)

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        self._level = logging.getLogger("crossroads").level  # given back at close
        self._configure_logging(starting=True)
        self.tracer = open_tracer(self._config().ops.tracing)
        try:
            await self.usage.start()
        except Exception as exc:  # usage is not worth refusing to serve for
            log.error("usage: cannot open the database at %s: %s; usage is not recorded",
                      self.usage.db.where, exc)
        self._sampler = asyncio.create_task(self._sample_forever())
        await self.alerts.start()

    async def close(self) -> None:
        self.settle()
        if self._sampler is not None:
            self._sampler.cancel()
        await self.alerts.close()
        if self._pending_files:
            await asyncio.gather(*self._pending_files, return_exceptions=True)
        if self._file_writer is not None:
            self._file_writer.shutdown(wait=False)  # idle: every file it was given is written
            self._file_writer = None
        await self.usage.close()
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.close)
            self.tracer = None
        self.metrics.close()
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        self._handlers.clear()
        logging.getLogger("crossroads").setLevel(self._level)

    def configure(self) -> None:
        """A reloaded config: levels, formats and request-log settings follow it."""
        self.files = self._files()
        self._configure_logging()
        tracing = self._config().ops.tracing
        if self._sampler is not None and tracing != (self.tracer.settings if self.tracer else None) and (
                tracing.enabled or self.tracer is not None):
            close_soon(self.tracer)
            self.tracer = open_tracer(tracing)

    def _configure_logging(self, starting: bool = False) -> None:
        ops = self._config().ops
        logging.getLogger("crossroads").setLevel(ops.log_level.upper())
        root = logging.getLogger()
        if starting and ops.logging_to_file and not self._handlers:  # start-only, like the logs directory
            handler: logging.Handler = SharedFileHandler(ops.logs_path() / MAIN_LOG,
                                                         int(ops.logs_max_total_mb * 1024 * 1024))
            for existing in list(root.handlers):  # as CLIProxyAPI: the file instead of the console
                root.removeHandler(existing)
            root.addHandler(handler)
            self._handlers.append(handler)
        if not root.handlers:
            root.addHandler(logging.StreamHandler())
        # nothing of ours reads a record's caller, thread or process: the logging module need not look them up
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        logging._srcfile = None  # the documented way to skip the caller lookup
        formatter = JsonFormatter() if ops.log_format == "json" else TextFormatter()
        for handler in root.handlers:
            handler.setFormatter(formatter)

    # ---------------------------------------------------------------- requests

    def begin(self, method: str, path: str, client_request_id: str | None) -> RequestRecord:
        return RequestRecord(requestid.from_client(client_request_id), method, path)

    @staticmethod
    def open() -> RequestRecord:
        """A record for a request whose head is still to be read (``identify`` fills it in)."""
        return RequestRecord("")

    @staticmethod
    def identify(record: RequestRecord, method: str, path: str, client_request_id: str | None) -> None:
        record.method, record.path = method, path
        record.request_id = requestid.from_client(client_request_id)

    def received(self, record: RequestRecord, headers: dict[str, str], body: bytes) -> None:
        if self.tracer is not None:
            record.traceparent, record.tracestate = headers.get("traceparent"), headers.get("tracestate")
        if self._config().ops.request_log:  # kept by reference, read when the file is written
            record.request_headers, record.request_body = headers, body

    def replied(self, record: RequestRecord, body: bytes) -> None:
        if self._config().ops.request_log:
            record.response_body = body

    def capture(self, reply: StreamReply, record: RequestRecord) -> StreamReply:
        """With ``request-log`` on, the stream's chunks are kept for the file;
        otherwise the reply passes untouched."""
        if self._config().ops.request_log:
            record.response_chunks = []
            reply.chunks = _captured(reply.chunks, record.response_chunks)
        return reply

    def client_name(self, key: str | None) -> str:
        if key is None:
            return "-"
        policy = self._config().key_policies.get(key)
        return policy.name if policy is not None and policy.name else mask(key)

    def finish(self, record: RequestRecord, client_key: str | None) -> None:
        """The request has ended: it is recorded now, and its log line joins the
        batch written out by ``settle`` (soon, or at once when the batch is full).
        Recording a whole batch at once held the event loop for about a
        millisecond 20 times a second, which every request arriving meanwhile
        waited out: at one connection, one request in fifty."""
        if record.ended is None:
            record.ended = time.monotonic()
        if self._config().ops.metrics_enabled and not _is_quiet(record):  # at once: any worker's scrape sees it
            try:
                self.metrics.request(record)
                if record.error is not None or len(record.attempts) > 1:
                    self.sample()  # an account may have begun to cool: other workers' scrapes see it now
            except Exception:
                log.exception("observer: counting request %s failed", record.request_id)
        lines = self._lines
        try:
            self._record(record, client_key, lines)
        except Exception:
            log.exception("observer: recording request %s failed", record.request_id)
        if not lines:
            return
        if len(lines) >= MAX_BATCH:
            self.settle()
        elif self._settling is None:
            try:
                self._settling = asyncio.get_running_loop().call_later(SETTLE_AFTER, self.settle)
            except RuntimeError:  # no loop (a request made without the server): now
                self.settle()

    def settle(self) -> None:
        """Write out the log lines of every ended request (at close, a line
        not yet out would be lost). A fault is logged; it never reaches a
        client, who has its answer."""
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        lines, self._lines = self._lines, []
        if lines:
            try:
                requestlog.emit(lines)
            except Exception:
                log.exception("observer: writing %d request lines failed", len(lines))

    def _record(self, record: RequestRecord, client_key: str | None, lines: list[requestlog.Line]) -> None:
        ops = self._config().ops
        client = self.client_name(client_key)
        quiet = _is_quiet(record)
        level = logging.DEBUG if quiet else logging.INFO
        if requestlog.log.isEnabledFor(level):
            at = record.started_at + record.latency
            if ops.log_format == "json":
                lines.append(requestlog.Line(level, at, fields=requestlog.fields(record, client, self.redactor(),
                                                                                 ops.debug)))
            else:
                lines.append(requestlog.Line(level, at, requestlog.text_line(record, client, self.redactor(),
                                                                             ops.debug)))
        if record.model is not None:  # a model request (not /healthz, /metrics, management)
            row = _usage_row(record, client)
            self.usage.add(row)
            if self._config().raw.get("usage-statistics-enabled") is not False:  # as CLIProxyAPI: false stops it
                self.usage_queue.add(row, record.path, record.stream)
        if self.tracer is not None and not quiet:
            self.tracer.record(record)
        if record.error is not None:
            self.alerts.request_finished(record)
        if not quiet and (ops.request_log or (record.failed and record.model is not None
                                              and ops.error_logs_max_files > 0)):
            self._write_file(record, client, error_only=not ops.request_log)

    def _write_file(self, record: RequestRecord, client: str, error_only: bool) -> None:
        files, redactor = self.files, self.redactor()
        if self._file_writer is None:
            # one thread, so files are written in the order their requests ended: the newest-kept
            # files (error-logs-max-files) are chosen by age, which writes racing each other would muddle
            self._file_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossroads-request-files")
        future = asyncio.get_running_loop().run_in_executor(self._file_writer, files.write, record, redactor,
                                                            client, error_only)
        self._pending_files.add(future)
        future.add_done_callback(self._file_written)

    def _file_written(self, future: asyncio.Future[Any]) -> None:
        self._pending_files.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("request-log: cannot write a request file: %s", future.exception())

    # ---------------------------------------------------------------- audit

    def audit(self, actor: str | None, action: str) -> None:
        """A management change: who (the caller's address), what, when, in the
        log and in ``<logs-dir>/audit.log`` (one JSON object a line)."""
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "actor": actor or "local",
                 "action": self.redactor()(action)}
        audit_log.info("%s by %s", entry["action"], entry["actor"])
        path = self._config().ops.logs_path() / AUDIT_LOG
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as file:
                file.write(requestlog.json_line(entry) + "\n")
        except OSError as exc:
            log.error("audit: cannot write %s: %s", path, exc)

    # ---------------------------------------------------------------- gauges

    def sample(self) -> None:
        self.metrics.sample(self._gauges())

    async def _sample_forever(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("metrics: sampling gauges failed")
            await asyncio.sleep(SAMPLE_EVERY)


def _is_quiet(record: RequestRecord) -> bool:
    return record.model is None and record.path.startswith(QUIET_PATHS)


def _usage_row(record: RequestRecord, client: str) -> UsageRow:
    usage = record.usage
    ttft = record.ttft
    return UsageRow(
        record.started_at, record.request_id, client, record.account, record.provider, record.model,
        record.served_model,
        usage.input_tokens if usage else None, usage.output_tokens if usage else None,
        usage.cache_read_tokens if usage else None, usage.reasoning_tokens if usage else None,
        record.status, round(record.latency * 1000, 1), None if ttft is None else round(ttft * 1000, 1),
        record.failed, record.cost, record.cost_usd, record.cache)


async def _captured(chunks: AsyncIterator[bytes], kept: list[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            kept.append(chunk)
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
