"""A loopback OTLP/HTTP trace receiver (what a collector's ``otlphttp``
receiver does): ``POST /v1/traces`` with an ExportTraceServiceRequest in
protobuf, decoded with opentelemetry-proto; spans are kept flattened for
tests to read."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .common import FakeServer

PROTOBUF = "application/x-protobuf"


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str  # hex
    span_id: str
    parent_span_id: str
    kind: int  # 2 server, 3 client
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else None


class FakeOTLP(FakeServer):
    kind = "otlp"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spans: list[ReceivedSpan] = []
        self.exports = 0
        self.headers_seen: list[dict[str, str]] = []
        self._spans_lock = threading.Lock()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"expected {PROTOBUF}")
        body = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        try:
            message.ParseFromString(body)
        except Exception as exc:
            return web.Response(status=400, text=f"not an ExportTraceServiceRequest: {exc}")
        received = []
        for resource_spans in message.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(ReceivedSpan(
                        span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.kind,
                        span.start_time_unix_nano, span.end_time_unix_nano, span.status.code,
                        {a.key: _value(a.value) for a in span.attributes}, resource))
        with self._spans_lock:
            self.spans.extend(received)
            self.exports += 1
            self.headers_seen.append(dict(request.headers))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        while True:
            with self._spans_lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.spans)} spans received, expected {count}")
            time.sleep(0.05)
