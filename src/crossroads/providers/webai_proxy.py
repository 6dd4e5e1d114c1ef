"""WebAI-to-API (``webai-proxy: {enabled, endpoint, ...}``): Gemini web
behind an OpenAI-compatible API (port 6969 by default).

v0.4 answers ``stream: true`` with one JSON object labelled
``chat.completion.chunk`` and has no model list (configure ``models``);
v0.5 streams real SSE (a stream ending without ``[DONE]`` was cut: an error)
and lists its models at ``/v1/models``. Only the models it lists (or the
configured ones) are routed. Neither has native tool calling, so tools are
emulated by default.
"""

from __future__ import annotations

from typing import Any, ClassVar

from crossroads import ir
from crossroads.config import Timeouts
from crossroads.providers.side_service import SideServiceProvider
from crossroads.services.spec import Defaults


class WebAIProxyProvider(SideServiceProvider):
    config_key: ClassVar[str] = "webai-proxy"
    service: ClassVar[str] = "WebAI-to-API"
    defaults: ClassVar[Defaults] = Defaults(prefix="webai-", tools="emulated",
                                            timeouts=Timeouts(connect=10.0, first_byte=300.0, idle=120.0))

    def shape(self, request: ir.Request, body: dict[str, Any]) -> dict[str, Any]:
        body.pop("reasoning_effort", None)  # its extended thinking is a switch of its own, not this
        return body


PROVIDER = WebAIProxyProvider()
