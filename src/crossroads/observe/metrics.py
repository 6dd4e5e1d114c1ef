"""Prometheus metrics, with the ``prometheus_client`` library.

With several workers (``crossroads serve --workers N``) each worker writes its
samples to files in the server's own directory (``PROMETHEUS_MULTIPROC_DIR``,
made fresh by ``serve``) and a scrape, whichever worker answers it, reads
them all: one scrape sees the whole server. Gauges say how workers combine:
open connections add up, a cooldown counts if any worker sees it.

The per-request cost is a handful of counter and histogram updates when the
request ends; gauges are sampled every few seconds and before each scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from crossroads.record import RequestRecord

_Series = tuple[Any, Any, Any, tuple[Any, ...]]  # requests counter, latency and TTFT histograms, token counters


@dataclass(frozen=True, slots=True)
class Gauges:
    """What the runtime reports for the gauges, sampled every few seconds and at each scrape."""

    cooling: Iterable[str]  # one account label per cooling model
    connections: tuple[int, int] | None  # upstream connections (in use, idle)
    queues: dict[str, tuple[int, int]] = field(default_factory=dict)  # service -> (waiting, being served)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
MAX_CACHED_SERIES = 20_000  # label combinations whose children are kept at hand
TOKEN_KINDS = (("input", "input_tokens"), ("output", "output_tokens"), ("cached", "cache_read_tokens"),
               ("reasoning", "reasoning_tokens"))


class Metrics:
    def __init__(self) -> None:
        self.directory = os.environ.get(MULTIPROC_ENV) or None
        if self.directory is not None and values.ValueClass is values.MutexValue:
            # the library picks its value store when first imported; a worker forked from a
            # process that imported it before the directory was set must switch to the files
            values.ValueClass = values.get_value_class()
        own = None if self.directory else CollectorRegistry()
        labels = ("model", "account", "provider", "ingress", "status_class")
        self.requests = Counter("crossroads_requests", "Requests answered, by how they ended.",
                                labels, registry=own)
        self.latency = Histogram("crossroads_request_duration_seconds", "Time from request to the end of the "
                                 "reply (streams: to their last byte).", ("model", "provider", "ingress"),
                                 buckets=LATENCY_BUCKETS, registry=own)
        self.ttft = Histogram("crossroads_time_to_first_token_seconds", "Streams: time to the first upstream "
                              "byte.", ("model", "provider", "ingress"), buckets=TTFT_BUCKETS, registry=own)
        self.tokens = Counter("crossroads_tokens", "Tokens reported by upstreams.",
                              ("model", "account", "provider", "kind"), registry=own)
        self.upstream_errors = Counter("crossroads_upstream_errors", "Failed upstream attempts, by the "
                                       "error's classification.", ("provider", "account", "classification"),
                                       registry=own)
        self.refreshes = Counter("crossroads_token_refreshes", "OAuth token refreshes by result (ok, failed, "
                                 "needs_login).", ("result",), registry=own)
        self.cooldowns = Gauge("crossroads_active_cooldowns", "Models of an account cooling down now.",
                               ("account",), multiprocess_mode="livemax", registry=own)
        self.connections = Gauge("crossroads_upstream_connections", "Open upstream connections (in_use, "
                                 "idle).", ("state",), multiprocess_mode="livesum", registry=own)
        self.queues = Gauge("crossroads_service_queue", "Side services that serve a limited number of "
                            "requests at once: requests waiting and being served.", ("service", "state"),
                            multiprocess_mode="livesum", registry=own)
        self._cooling: set[str] = set()
        self._series: dict[tuple[str, str, str, str, int], _Series] = {}
        if self.directory:
            self.registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(self.registry, path=self.directory)
        else:
            assert own is not None
            self.registry = own

    def request(self, record: RequestRecord) -> None:
        served = record.account is not None
        model = record.served_model or (record.model if record.attempts else None) or "-"
        account, provider = record.account or "-", record.provider or "-"
        ingress = record.ingress or "-"
        status = record.error.status if record.error is not None and record.status < 400 else record.status
        series = self._series.get((model, account, provider, ingress, status // 100))
        if series is None:
            series = self._new_series(model, account, provider, ingress, status // 100)
        requests, latency, ttft_histogram, tokens = series
        requests.inc()
        latency.observe(record.latency)
        ttft = record.ttft
        if ttft is not None:
            ttft_histogram.observe(ttft)
        usage = record.usage
        if served and usage is not None:
            for (_kind, attribute), counter in zip(TOKEN_KINDS, tokens, strict=True):
                count = getattr(usage, attribute)
                if count:
                    counter.inc(count)
        for attempt in record.attempts:
            if attempt.outcome != "ok":
                self.upstream_errors.labels(attempt.provider, attempt.account, attempt.outcome).inc()
        if record.error is not None and served:  # broke after the stream began
            self.upstream_errors.labels(provider, account, f"{record.error.status} {record.error.kind}").inc()

    def _new_series(self, model: str, account: str, provider: str, ingress: str, status_class: int) -> _Series:
        """The children of one label combination, looked up once (``labels()`` takes a lock and builds a
        key on every call, and a request updates several of them)."""
        series = (self.requests.labels(model, account, provider, ingress, f"{status_class}xx"),
                  self.latency.labels(model, provider, ingress), self.ttft.labels(model, provider, ingress),
                  tuple(self.tokens.labels(model, account, provider, kind) for kind, _ in TOKEN_KINDS))
        if len(self._series) < MAX_CACHED_SERIES:
            self._series[(model, account, provider, ingress, status_class)] = series
        return series

    def refreshed(self, result: str) -> None:
        self.refreshes.labels(result).inc()

    def sample(self, gauges: Gauges) -> None:
        """Gauges from this worker's view; accounts no longer cooling go to 0."""
        connections = gauges.connections
        for service, (waiting, active) in gauges.queues.items():
            self.queues.labels(service, "waiting").set(waiting)
            self.queues.labels(service, "active").set(active)
        counts: dict[str, int] = {}
        for account in gauges.cooling:
            counts[account] = counts.get(account, 0) + 1
        for account in self._cooling - counts.keys():
            self.cooldowns.labels(account).set(0)
        for account, count in counts.items():
            self.cooldowns.labels(account).set(count)
        self._cooling = set(counts)
        if connections is not None:
            self.connections.labels("in_use").set(connections[0])
            self.connections.labels("idle").set(connections[1])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        """This worker is going: its live gauges leave the sums."""
        if self.directory:
            prometheus_multiprocess.mark_process_dead(os.getpid(), self.directory)
