"""Usage from upstream payloads without a full decode, and the usage ledger
(per client key, per account, per model)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from crossroads import ir
from crossroads.dialects.base import Dialect
from crossroads.providers.base import mask
from crossroads.state.base import USAGE_FIELDS, State, StateUnavailable

JSON = dict[str, Any]

# An object, not ``"usage":null`` (which OpenAI puts on every chunk when usage is asked for). One
# pattern, so a chunk is scanned once however many spellings there are: a stream pays per byte scanned.
USAGE_MARKER = re.compile(rb'"usage(?:": ?\{|Metadata"|_metadata")')


def from_body(dialect: Dialect, body: bytes) -> ir.Usage | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return dialect.usage_of(payload) if isinstance(payload, dict) else None


class StreamUsage:
    """Watches a pass-through SSE stream event by event, parsing only the
    events that carry usage. With ``drop_usage_only_chunks`` it also removes
    the usage-only events the router asked for on the client's behalf
    (``Dialect.hides_usage_chunk``)."""

    __slots__ = ("_buffer", "_dialect", "_drop", "usage")

    def __init__(self, dialect: Dialect, drop_usage_only_chunks: bool = False) -> None:
        self._dialect = dialect
        self._buffer = b""
        self._drop = drop_usage_only_chunks
        self.usage: ir.Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        """Returns the bytes to forward (whole events only)."""
        data = self._buffer + chunk if self._buffer else chunk
        lf = data.rfind(b"\n\n")
        # a CRLF boundary ending after the last LF one can only start from there: no second full scan
        crlf = data.rfind(b"\r\n\r\n", max(lf - 1, 0))
        end = crlf + 4 if crlf >= 0 else lf + 2 if lf >= 0 else -1
        if end < 0:
            self._buffer = data
            return b""
        self._buffer = data[end:]
        complete = data[:end] if self._buffer else data
        found = USAGE_MARKER.search(complete)
        if found is None:
            return complete
        # usage sits in a few events at the stream's tail: visit only those, not every event
        separator = b"\r\n\r\n" if crlf >= 0 else b"\n\n"
        kept: list[bytes] = []
        done = 0  # forwarded up to here
        while found is not None:
            position = found.start()
            start = complete.rfind(separator, done, position)
            start = done if start < 0 else start + len(separator)
            stop = complete.find(separator, position)
            stop = len(complete) if stop < 0 else stop + len(separator)
            if self._observe(complete[start:stop]) and self._drop:
                kept.append(complete[done:start])
                done = stop
            found = USAGE_MARKER.search(complete, stop)
        if not kept:
            return complete
        kept.append(complete[done:])
        return b"".join(kept)

    def flush(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest

    def _observe(self, event: bytes) -> bool:
        """Record usage from one event; True when it is a usage-only chunk."""
        for line in event.splitlines():
            if line.startswith(b"data:"):
                try:
                    payload = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    return False
                if not isinstance(payload, dict):
                    return False
                usage = self._dialect.usage_of(payload)
                if usage is not None:
                    self.usage = usage if self.usage is None else self.usage.merged(usage)
                return usage is not None and self._dialect.hides_usage_chunk(payload)
        return False


@dataclass(slots=True)
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    unreported: int = 0  # requests whose upstream reported no usage

    def add(self, usage: ir.Usage | None) -> None:
        self.requests += 1
        if usage is None:
            self.unreported += 1
            return
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cached_tokens += usage.cache_read_tokens or 0
        self.reasoning_tokens += usage.reasoning_tokens or 0


    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in USAGE_FIELDS}


@dataclass
class Ledger:
    """This replica's totals; with a shared state also everyone's, which is
    what ``report`` shows when the state can answer."""

    by_key: dict[str, Totals] = field(default_factory=dict)
    by_account: dict[str, Totals] = field(default_factory=dict)
    by_model: dict[str, Totals] = field(default_factory=dict)
    state: State | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, client_key: str | None, account_id: str, model: str, usage: ir.Usage | None) -> None:
        with self._lock:
            for table, name in ((self.by_key, client_key or "-"), (self.by_account, account_id),
                                (self.by_model, model)):
                totals = table.get(name)
                if totals is None:
                    totals = table[name] = Totals()
                totals.add(usage)
        if self.state is not None and self.state.shared:
            self.state.add_usage(_display_key(client_key), account_id, model, _counts(usage))

    async def report(self) -> dict[str, Any]:
        """``{by_key, by_account, by_model, scope}`` with client keys masked;
        scope is "shared" (all replicas) or "replica" (this one only)."""
        if self.state is not None and self.state.shared:
            try:
                tables = await self.state.usage()
            except StateUnavailable:
                pass
            else:
                report: dict[str, Any] = {table: {name: {f: row.get(f, 0) for f in USAGE_FIELDS}
                                                  for name, row in rows.items()} for table, rows in tables.items()}
                return {**report, "scope": "shared"}
        with self._lock:
            return {"by_key": {_display_key(k if k != "-" else None): t.counts() for k, t in self.by_key.items()},
                    "by_account": {k: t.counts() for k, t in self.by_account.items()},
                    "by_model": {k: t.counts() for k, t in self.by_model.items()},
                    "scope": "replica"}


def _counts(usage: ir.Usage | None) -> dict[str, int]:
    if usage is None:
        return {"requests": 1, "unreported": 1}
    return {"requests": 1, "input_tokens": usage.input_tokens or 0, "output_tokens": usage.output_tokens or 0,
            "cached_tokens": usage.cache_read_tokens or 0, "reasoning_tokens": usage.reasoning_tokens or 0}


def _display_key(client_key: str | None) -> str:
    """Client keys are shown (and shared) masked."""
    return "-" if client_key is None else mask(client_key)
