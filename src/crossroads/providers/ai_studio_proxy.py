"""AIstudioProxyAPI (``ai-studio-proxy: {enabled, endpoint, ...}``): Google
AI Studio driven through one browser page, OpenAI-compatible on its port
(2048 by default).

Its page serves one request at a time, so requests queue in Crossroads
(``max-concurrency`` 1 by default). It reads ``max_output_tokens``, not
``max_tokens`` (an unknown field is dropped silently), and its
``reasoning_effort`` takes a budget as an integer, ``0`` for off and
``"none"`` for "on, no budget" (so an OpenAI ``none`` becomes ``0``). Its
``/health`` answers 503 with what the browser and page are doing; thinking
comes back as ``reasoning_content``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from crossroads import ir, reasoning
from crossroads.config import Timeouts
from crossroads.providers.side_service import SideServiceProvider
from crossroads.services.spec import Defaults

_PRESETS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


class AIStudioProxyProvider(SideServiceProvider):
    config_key: ClassVar[str] = "ai-studio-proxy"
    service: ClassVar[str] = "AIstudioProxyAPI"
    defaults: ClassVar[Defaults] = Defaults(prefix="ai-studio-", max_concurrency=1, tools="native",
                                            health_path="/health",
                                            timeouts=Timeouts(connect=10.0, first_byte=600.0, idle=120.0))

    def shape(self, request: ir.Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        effort = _effort(request.reasoning)
        if effort is None:
            body.pop("reasoning_effort", None)
        else:
            body["reasoning_effort"] = effort
        return body


def _effort(wanted: ir.Reasoning | None) -> int | str | None:
    """The client's reasoning in the service's terms: an integer budget, 0 for
    off, "none" for on without a budget, or a preset."""
    if wanted is None:
        return None
    if wanted.effort == "none" or wanted.budget == 0:
        return 0
    if wanted.budget is not None:
        return "none" if wanted.budget < 0 else wanted.budget  # -1 (dynamic) is its "none"
    if wanted.adaptive or wanted.effort == "auto":
        return "none"
    if wanted.effort in _PRESETS:
        return _PRESETS[wanted.effort]
    budget = reasoning.effective_budget(wanted)
    return budget if budget else None


PROVIDER = AIStudioProxyProvider()
