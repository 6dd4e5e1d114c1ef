"""One request on its way through the pipeline: what the front door hands
over (``Inbound``), what trying accounts taught it (``Progress``) and who
answered (``Served``). Plain records: the pipeline, the relay and stream
resume read and fill them; none of them outlives its request."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossroads import ir
from crossroads.dialects.base import Dialect
from crossroads.providers.base import Account, Outcome
from crossroads.record import RequestRecord
from crossroads.routing.registry import Candidate, Pool
from crossroads.snapshot import Snapshot


@dataclass(slots=True)
class Inbound:
    dialect: Dialect
    body: dict[str, Any]
    raw: bytes
    model: str
    stream: bool
    headers: Mapping[str, str]
    client_key: str | None = None
    record: RequestRecord = dataclasses.field(default_factory=RequestRecord.detached)  # what the request did


@dataclass(slots=True)
class Progress:
    """What one request learned while trying accounts."""

    snapshot: Snapshot
    ir_request: ir.Request | None = None
    suffix_reasoning: ir.Reasoning | None = None  # from the model name; forces translation
    last_error: ir.Error | None = None
    last_account: str | None = None  # the label of the account that gave last_error
    upstream_headers: Any = None  # the answering upstream's response headers (passthrough-headers)
    soonest: float | None = None  # monotonic time the first cooling account recovers
    served_pools: int = 0
    attempts: list[str] = dataclasses.field(default_factory=list)  # "account: outcome", for the final error
    # an account that answered 500: not cooled until another account shows the request was fine
    suspect: tuple[Candidate, ir.Error, Outcome] | None = None
    pool: Pool | None = None  # the pool being served, and the conversation's session (stream resume)
    session: str | None = None


@dataclass(slots=True)
class Served:
    account: Account
    model: str  # client-facing name of the model that answered
    upstream_model: str  # the name the account knows it by (health is kept per upstream model)
    record: RequestRecord
