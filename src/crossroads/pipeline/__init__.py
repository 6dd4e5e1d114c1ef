"""The request's path: pick an account, call upstream, translate back.

Same dialect in and out: the body and the stream pass through with only the
model name edited. Otherwise the request goes through the IR once, and the
stream is translated event by event.

Failover: retryable errors (quota, auth, overload, outages, timeouts) move on
to the next account of the pool; streams fail over until their first event
reaches the client (with ``stream-resume``, mid-answer too: see resume.py).
When every account is cooling down, the pipeline waits for the soonest one
if that is within ``max-retry-interval``, else it answers 429 with
``Retry-After``. A model whose whole pool is unavailable falls back to
the next model of its ``fallbacks`` chain.

The package, one concept a module: ``core`` is the request's story (pick an
account, send, fail over, account for it), ``relay`` carries answers to the
client, ``upstream_errors`` reads and judges what upstreams refuse,
``client_data`` turns faults in the client's own data into a 400, and
``request`` holds the records one request fills on its way.
"""

from crossroads.pipeline.client_data import client_data
from crossroads.pipeline.core import Pipeline
from crossroads.pipeline.request import Inbound

__all__ = ["Inbound", "Pipeline", "client_data"]
