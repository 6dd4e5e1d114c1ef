"""OpenTelemetry traces of finished requests, exported over OTLP/HTTP.

Off by default, and then nothing of OpenTelemetry is even imported. On, the
observer hands each finished request to :meth:`Tracer.record`, which writes
its spans after the fact from what the request record already holds: a
server span for the request (a child of the client's W3C ``traceparent``
when it sent one) and a client span per upstream attempt, named and
attributed after the GenAI semantic conventions. Nothing is added to the
request's path; the SDK's batch processor exports from its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from crossroads import __version__
from crossroads.opsconfig import TracingSettings
from crossroads.record import RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("crossroads.tracing")
EXPORT_DELAY_MS = 500
EXPORT_TIMEOUT = 10.0
# the GenAI operation of each ingress dialect (gen_ai.operation.name)
OPERATIONS = {"openai-chat": "chat", "openai-responses": "chat", "anthropic": "chat", "gemini": "chat",
              "openai-completions": "text_completion"}


class Tracer:
    def __init__(self, settings: TracingSettings) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.settings = settings
        resource = Resource.create({"service.name": settings.service_name, "service.version": __version__})
        self._provider: TracerProvider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
        exporter = OTLPSpanExporter(endpoint=settings.endpoint, headers=dict(settings.headers),
                                    timeout=EXPORT_TIMEOUT)
        self._provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS))
        self._tracer = self._provider.get_tracer("crossroads", __version__)
        self._propagator = TraceContextTextMapPropagator()

    def record(self, record: RequestRecord) -> None:
        """Write the spans of a finished request."""
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        parent = None
        if record.traceparent:
            parent = self._propagator.extract({"traceparent": record.traceparent,
                                               "tracestate": record.tracestate or ""})
        # monotonic marks -> epoch nanoseconds
        offset = record.started_at - record.started
        start_ns = int(record.started_at * 1e9)
        end = record.ended if record.ended is not None else time.monotonic()
        operation = OPERATIONS.get(record.ingress, "chat")
        name = f"{operation} {record.model}" if record.model else f"{record.method} {record.path}"
        attributes: dict[str, Any] = {
            "http.request.method": record.method, "url.path": record.path,
            "http.response.status_code": record.status, "crossroads.request_id": record.request_id,
        }
        if record.model:
            attributes.update(_genai(operation, record.model, record.served_model, record.provider, record))
            attributes["crossroads.ingress"] = record.ingress
            attributes["gen_ai.request.stream"] = record.stream  # not (yet) a convention name
        if record.account:
            attributes["crossroads.account"] = record.account
        if record.ttft is not None:
            attributes["crossroads.time_to_first_token_ms"] = round(record.ttft * 1000, 1)
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER, start_time=start_ns,
                                       attributes=attributes)
        if record.failed:
            span.set_status(Status(StatusCode.ERROR, record.error.message[:200] if record.error else None))
            if record.error is not None:
                span.set_attribute("error.type", record.error.kind)
        child_context = set_span_in_context(span)
        began = record.started
        for attempt in record.attempts:
            finished = attempt.at if attempt.outcome != "ok" else end
            served = attempt.outcome == "ok"
            status = record.status if served else _status(attempt.outcome)
            child_attributes: dict[str, Any] = {
                **_genai(operation, record.model or "", record.served_model if served else None, attempt.provider,
                         record if served else None),
                "crossroads.account": attempt.account, "crossroads.outcome": attempt.outcome,
            }
            if status:
                child_attributes["http.response.status_code"] = status
            child = self._tracer.start_span(f"{operation} {record.model or ''}".strip(), context=child_context,
                                            kind=SpanKind.CLIENT, start_time=int((began + offset) * 1e9),
                                            attributes=child_attributes)
            if not served:
                child.set_attribute("error.type", attempt.outcome.partition(" ")[2] or attempt.outcome)
                child.set_status(Status(StatusCode.ERROR, attempt.outcome))
            child.end(end_time=int((max(finished, began) + offset) * 1e9))
            began = finished
        span.end(end_time=int((end + offset) * 1e9))

    def close(self) -> None:
        """Export what is left (blocking: call it from a thread)."""
        try:
            self._provider.shutdown()
        except Exception as exc:
            log.warning("tracing: the last export failed: %s", exc)


def open_tracer(settings: TracingSettings) -> Tracer | None:
    """A tracer for the settings, None when tracing is off or cannot start."""
    if not settings.enabled:
        return None
    try:
        return Tracer(settings)
    except ImportError:
        log.error("tracing: enabled but OpenTelemetry is not installed (pip install 'crossroads[tracing]'); "
                  "no traces are exported")
        return None


def close_soon(tracer: Tracer | None) -> None:
    """Close a tracer replaced by a reload without holding up the reload."""
    if tracer is not None:
        threading.Thread(target=tracer.close, name="crossroads-tracing-close", daemon=True).start()


def _status(outcome: str) -> int | None:
    head = outcome.partition(" ")[0]
    return int(head) if head.isdigit() else None


def _genai(operation: str, model: str, served: str | None, provider: str | None,
           usage_of: RequestRecord | None) -> dict[str, Any]:
    """GenAI semantic convention attributes (gen_ai.*)."""
    out: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
    if provider:
        out["gen_ai.provider.name"] = provider
        out["gen_ai.system"] = provider  # the older name of the same attribute
    if served:
        out["gen_ai.response.model"] = served
    usage = usage_of.usage if usage_of is not None else None
    if usage is not None:
        if usage.input_tokens is not None:
            out["gen_ai.usage.input_tokens"] = usage.input_tokens
        if usage.output_tokens is not None:
            out["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cache_read_tokens is not None:
            out["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
        if usage.reasoning_tokens is not None:
            out["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    return out
