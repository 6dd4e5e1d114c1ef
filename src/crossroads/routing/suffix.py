"""Reasoning from the model name, and fitting a reasoning setting to what
the target model supports.

Sources of the one canonical setting (``ir.Reasoning``), strongest first:

==========================================  ===================================
model-name suffix ``model(high)``           a level: none, minimal, low, medium,
``model(8192)``, ``model(none)``            high, xhigh, max, auto; or a budget
variant ``model-reasoning-high``,           same words, plus ``ultrathink``
``model-thinking-8192``                     (= xhigh); only when ``model`` is
                                            served and the full name is not
the dialect's own field                     ``reasoning_effort``, ``thinking``,
                                            ``thinkingConfig``, ``reasoning``
==========================================  ===================================

A suffix overrides the dialect field (the name was chosen to get it).

Fitting (:func:`fit`) to the model's capability
(:mod:`crossroads.providers.subscription_catalogue`):

- ``budget`` models (Claude, Gemini 2.5): levels become budgets with the
  table in :mod:`crossroads.reasoning`, then clamp to the model's range;
  ``none`` turns thinking off where the model allows it, else the minimum.
- ``level`` models (GPT-5, Gemini 3): budgets become levels with the same
  table, then the nearest level the model accepts (the next higher one,
  else its highest); ``none`` where allowed, else the lowest level.
- ``none`` models: the setting is dropped (they do not take one).
- ``auto`` passes through (the upstream decides).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from crossroads import ir, reasoning
from crossroads.providers.subscription_catalogue import ModelInfo

LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "auto")
ALIASES = {"ultrathink": "xhigh", "off": "none", "disabled": "none"}
_ORDER = ("minimal", "low", "medium", "high", "xhigh", "max")
_VARIANT = re.compile(r"^(?P<model>.+)-(?:reasoning|thinking)-(?P<arg>[a-z]+|\d+)$")


@dataclass(frozen=True, slots=True)
class Resolved:
    model: str
    reasoning: ir.Reasoning | None = None


def _setting(arg: str, name: str) -> ir.Reasoning:
    word = ALIASES.get(arg.lower(), arg.lower())
    if word.isdigit():
        return ir.Reasoning(budget=int(word))
    if word in LEVELS:
        return ir.Reasoning(effort=word)
    raise ir.bad_request(f"model {name!r}: unknown reasoning setting ({arg}); use a level "
                         f"({', '.join(LEVELS)}) or a token budget such as (8192)", "model")


def resolve(name: str, served: Callable[[str], bool]) -> Resolved:
    """Split a reasoning suffix or variant off a model name. A model actually
    named like a variant (served under its full name) is left alone."""
    if served(name):
        return Resolved(name)
    if name.endswith(")") and "(" in name:
        base, _, arg = name[:-1].rpartition("(")
        if base and arg.strip():
            return Resolved(base.strip(), _setting(arg.strip(), name))
    match = _VARIANT.match(name)
    if match is not None and served(match["model"]):
        word = ALIASES.get(match["arg"], match["arg"])
        if word.isdigit() or word in LEVELS:
            return Resolved(match["model"], _setting(word, name))
    return Resolved(name)


def merged(request: ir.Reasoning | None, suffix: ir.Reasoning | None) -> ir.Reasoning | None:
    """The suffix's level/budget over the request's, keeping summary and
    include_thoughts from the request."""
    if suffix is None:
        return request
    if request is None:
        return suffix
    return ir.Reasoning(effort=suffix.effort, budget=suffix.budget, summary=request.summary,
                        include_thoughts=request.include_thoughts)


def fit(setting: ir.Reasoning | None, model: ModelInfo | None) -> ir.Reasoning | None:
    """The setting in a form the model accepts (None: send no setting)."""
    if setting is None or model is None:
        return setting
    if model.reasoning == "none":
        return None
    level = reasoning.effective_level(setting)
    if level is None or level == "auto":
        return setting
    if model.reasoning == "budget":
        if level == "none":
            if model.can_disable:
                return _with(setting, budget=0)
            return _with(setting, budget=model.min_budget)
        budget = reasoning.effective_budget(setting) or 0
        return _with(setting, budget=max(model.min_budget, min(model.max_budget, budget)))
    if level == "none":
        if model.can_disable and "none" in model.levels:
            return _with(setting, effort="none")
        lowest = next((lv for lv in _ORDER if lv in model.levels), None)
        return _with(setting, effort=lowest) if lowest else None
    return _with(setting, effort=_nearest_level(level, model.levels))


def _with(setting: ir.Reasoning, *, effort: str | None = None, budget: int | None = None) -> ir.Reasoning:
    return dataclasses.replace(setting, effort=effort, budget=budget, adaptive=False)


def _nearest_level(level: str, accepted: tuple[str, ...]) -> str:
    if level in accepted or not accepted:
        return level
    ranked = [lv for lv in _ORDER if lv in accepted]
    if not ranked:
        return level
    position = _ORDER.index(level) if level in _ORDER else len(_ORDER)
    higher = [lv for lv in ranked if _ORDER.index(lv) >= position]
    return higher[0] if higher else ranked[-1]
