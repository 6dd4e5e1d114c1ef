"""What one request did, filled in as it goes and written out when it ends.

The pipeline marks a few well-defined points (each account tried and how it
went, the account that served, the first upstream byte, the usage); the
server stamps the status. Nothing here is computed per stream chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crossroads import ir, requestid

if TYPE_CHECKING:
    from crossroads.providers.base import Account


@dataclass(slots=True)
class Attempt:
    account: str  # the account's label (never a secret)
    provider: str
    outcome: str  # "ok", or the upstream's status and error kind ("429 rate_limit")
    message: str = ""  # the upstream's error text (masked before it is written anywhere)
    at: float = field(default_factory=time.monotonic)  # when it ended (a trace's attempt spans)


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    method: str = ""
    path: str = ""
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # epoch seconds
    client_key: str | None = None
    ingress: str = ""  # the client's dialect
    model: str | None = None  # as asked
    served_model: str | None = None
    account: str | None = None  # label of the account that served
    account_id: str | None = None
    provider: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    status: int = 0
    error: ir.Error | None = None  # what the client was told, or what broke a stream after it began
    stream: bool = False
    first_byte: float | None = None  # monotonic time of the first upstream byte of a stream
    ended: float | None = None
    stream_completed: bool = False
    left_early: bool = False  # the client went away before it was answered
    usage: ir.Usage | None = None
    # the last upstream call (kept by reference: read only for debug lines and request-log files)
    upstream_url: str | None = None
    upstream_headers: dict[str, str] | None = None
    upstream_body: bytes | None = None
    request_headers: dict[str, str] | None = None
    request_body: bytes | None = None
    response_body: bytes | None = None  # request-log only
    response_chunks: list[bytes] | None = None  # request-log only (streams)
    traceparent: str | None = None  # the client's W3C trace context (tracing only)
    tracestate: str | None = None

    @classmethod
    def detached(cls) -> RequestRecord:
        """A record nobody writes out (a request made without the server)."""
        return cls(requestid.new())

    # ---------------------------------------------------------------- marks (called by the pipeline)

    def asked(self, ingress: str, model: str, stream: bool) -> None:
        self.ingress, self.model, self.stream = ingress, model, stream

    def failed_attempt(self, account: Account, error: ir.Error) -> None:
        self.attempts.append(Attempt(account.label, account.provider.config_key,
                                     f"{error.status} {error.kind}", error.message))

    def served(self, account: Account, model: str) -> None:
        self.attempts.append(Attempt(account.label, account.provider.config_key, "ok"))
        self.account, self.account_id, self.provider = account.label, account.id, account.provider.config_key
        self.served_model = model

    def upstream(self, url: str, headers: dict[str, str], body: bytes) -> None:
        self.upstream_url, self.upstream_headers, self.upstream_body = url, headers, body

    def first_upstream_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.monotonic()

    def spent(self, usage: ir.Usage | None) -> None:
        self.usage = usage

    def broke(self, error: ir.Error) -> None:
        """A stream failed after it reached the client."""
        self.error = error

    def client_left(self) -> None:
        self.left_early = True
        if not self.status:
            self.status = 499  # as nginx logs it: the client closed the request

    def completed(self) -> None:
        """A stream ran to its end (else the client went away first)."""
        self.stream_completed = True

    # ---------------------------------------------------------------- derived

    @property
    def latency(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def ttft(self) -> float | None:
        return None if self.first_byte is None else self.first_byte - self.started

    @property
    def disconnected(self) -> bool:
        return self.left_early or (self.stream and self.status == 200 and not self.stream_completed
                                   and self.error is None)

    @property
    def failed(self) -> bool:
        return self.status >= 400 or self.error is not None
