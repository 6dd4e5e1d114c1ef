"""One table for reasoning levels and token budgets, used by every dialect.

=========  ============  ==========================================
level      budget        notes
=========  ============  ==========================================
none       0             thinking off
minimal    512
low        1024
medium     8192
high       24576
xhigh      32768
max        128000
auto       -1            provider decides (Gemini ``thinkingBudget: -1``)
=========  ============  ==========================================

Budget -> level picks the smallest level whose budget is >= the given budget
(0 -> none, 1..512 -> minimal, ..., 24577..32768 -> xhigh, above -> max).
Gemini ``thinkingLevel`` knows MINIMAL/LOW/MEDIUM/HIGH; xhigh and max map to
HIGH there. Anthropic ``output_config.effort`` knows low/medium/high/max:
minimal -> low, xhigh -> max, auto -> high.
"""

from __future__ import annotations

from crossroads import ir

LEVEL_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 128000,
    "auto": -1,
}

_ASCENDING = ["minimal", "low", "medium", "high", "xhigh", "max"]

GEMINI_LEVELS = {"minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                 "xhigh": "HIGH", "max": "HIGH"}
ANTHROPIC_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high",
                     "xhigh": "max", "max": "max", "auto": "high"}
OPENAI_EFFORTS = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium",
                  "high": "high", "xhigh": "xhigh", "max": "xhigh", "auto": "medium"}


def budget_for_level(level: str) -> int:
    try:
        return LEVEL_BUDGETS[level.lower()]
    except KeyError:
        raise ir.bad_request(
            f"unknown reasoning level {level!r}; expected one of {', '.join(LEVEL_BUDGETS)}"
        ) from None


def level_for_budget(budget: int) -> str:
    if budget < 0:
        return "auto"
    if budget == 0:
        return "none"
    for level in _ASCENDING:
        if budget <= LEVEL_BUDGETS[level]:
            return level
    return "max"


def effective_level(reasoning: ir.Reasoning) -> str | None:
    """The reasoning setting as a level (None when nothing was asked)."""
    if reasoning.effort is not None:
        return reasoning.effort.lower()
    if reasoning.budget is not None:
        return level_for_budget(reasoning.budget)
    return None


def effective_budget(reasoning: ir.Reasoning) -> int | None:
    """The reasoning setting as a token budget (None when nothing was asked)."""
    if reasoning.budget is not None:
        return reasoning.budget
    if reasoning.effort is not None:
        return budget_for_level(reasoning.effort)
    return None
