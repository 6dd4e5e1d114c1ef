"""The client's own data is the client's problem: whatever exception reading
or re-rendering it raises, the client gets a 400 that names the fault, never
a 500 (an ``ir.Error`` raised inside passes unchanged)."""

from __future__ import annotations

import logging

import orjson

from crossroads import ir
from crossroads.pipeline.request import Inbound

log = logging.getLogger("crossroads.pipeline")

CLIENT_DATA_FAULTS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError,
                      orjson.JSONEncodeError)


class ClientData:
    """``with client_data:`` around work on the client's own data: its faults
    (nesting beyond what JSON encoders take, integers beyond 64 bits,
    unhashable schema values, types that do not fit) become a 400 naming the
    problem, never a 500. (A class, not a generator: it sits on the hot path.)"""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, ir.Error) or not isinstance(exc, CLIENT_DATA_FAULTS):
            return
        if isinstance(exc, RecursionError | orjson.JSONEncodeError):
            message = ("the request is nested too deeply or holds a value that cannot be forwarded (JSON "
                       "nesting is limited to 250 levels and integers to 64 bits)")
        else:
            message = f"the request could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        log.info("request refused as malformed: %s: %s", type(exc).__name__, str(exc)[:200])
        raise ir.bad_request(message) from None


client_data = ClientData()  # holds nothing: one guard serves every request


def parse_client(inbound: Inbound) -> ir.Request:
    """The client's request in the IR; a value the dialect cannot read is the
    client's 400, whatever exception it raised."""
    with client_data:
        return inbound.dialect.parse_request(inbound.body, model=inbound.model, stream=inbound.stream)
