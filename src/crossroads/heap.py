"""The garbage collector, tuned for a server whose heap is mostly built once.

A request allocates a few hundred short-lived objects and frees nearly all of
them by reference counting; the cyclic collector only finds the odd cycle.
Left at its defaults it runs every few requests, and every so often walks the
whole heap (config, dialect tables, the libraries' objects): a pause of tens
of milliseconds that showed as the router's p99 latency (bench/run.py: p99
52 ms against p50 8 ms at 32 connections; 17 ms with this).

So once the server has started, everything alive is moved out of the
collector's sight (``gc.freeze``: it is still freed normally when its last
reference goes) and the youngest generation is collected less often.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest generation (default 700)


def settle() -> None:
    """Call once the server has started (and its start-up garbage is collected)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
