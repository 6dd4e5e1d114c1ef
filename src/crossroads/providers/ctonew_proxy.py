"""ctonew-proxy (``ctonew-proxy: {enabled, endpoint, api-key, ...}``): cto.new
(EngineLabs) behind an OpenAI-compatible Deno server (port 8000).

The credential is the cto.new cookie string, sent as ``Authorization:
Bearer <cookie>`` (the proxy's README packs several cookies with
``.....`` for ``; ``). Thinking comes back inline as ``<think>…</think>``;
errors come back as answer text (``错误: …``); usage is always reported as 0,
so it is reported as unknown. It has no tool calling: tools are emulated.
"""

from __future__ import annotations

from typing import Any, ClassVar

from crossroads import ir
from crossroads.config import Timeouts
from crossroads.providers.side_service import SideServiceProvider
from crossroads.services.refine import Quirks
from crossroads.services.spec import Defaults, ServiceSpec


class CtonewProxyProvider(SideServiceProvider):
    config_key: ClassVar[str] = "ctonew-proxy"
    service: ClassVar[str] = "ctonew-proxy"
    defaults: ClassVar[Defaults] = Defaults(
        prefix="ctonew-", tools="emulated", health_path="/",
        timeouts=Timeouts(connect=10.0, first_byte=120.0, idle=120.0),
        quirks=Quirks(think_tags=True, error_prefixes=("错误:", "错误\uff1a", "Error:"), usage_known=False))

    def shape(self, request: ir.Request, body: dict[str, Any]) -> dict[str, Any]:
        body.pop("reasoning_effort", None)  # no effort control: the model thinks as it likes
        return body

    def credential_headers(self, spec: ServiceSpec) -> dict[str, str]:
        if not spec.api_key:
            return {}
        cookie = spec.api_key.strip().replace("; ", ".....")
        return {"authorization": f"Bearer {cookie}"}


PROVIDER = CtonewProxyProvider()
