"""Seeing the router run: request ids, the request log, log files, metrics
and persistent usage, owned by the runtime's :class:`Observer`."""

from crossroads.observe.observer import Observer
from crossroads.record import RequestRecord

__all__ = ["Observer", "RequestRecord"]
