"""The request's path (being split out of core.py)."""

from crossroads.pipeline.core import Inbound, Pipeline, _ClientEncoder, _Progress, _Served, client_data

__all__ = ["Inbound", "Pipeline", "_ClientEncoder", "_Progress", "_Served", "client_data"]
