"""HTTP front doors, one module per client dialect. Each module exposes
``ROUTES``; adding a front door means adding its module name here."""

from __future__ import annotations

FRONTDOOR_MODULES = (
    "crossroads.frontdoors.openai",
    "crossroads.frontdoors.anthropic",
    "crossroads.frontdoors.gemini",
    "crossroads.frontdoors.health",
    "crossroads.frontdoors.management",
    "crossroads.frontdoors.metrics",
    "crossroads.frontdoors.management_config",
    "crossroads.frontdoors.management_accounts",
    "crossroads.frontdoors.management_lists",
    "crossroads.frontdoors.management_dashboard",
    "crossroads.frontdoors.management_tools",
)
