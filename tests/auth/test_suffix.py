"""Reasoning suffixes/variants and fitting a setting to the model."""

from __future__ import annotations

import pytest

from crossroads import ir
from crossroads.providers import subscription_catalogue as catalogue
from crossroads.routing.suffix import Resolved, fit, merged, resolve

SERVED = {"claude-sonnet-4-5", "gpt-5.1-codex", "gemini-2.5-pro", "claude-sonnet-4-5-thinking"}


def served(name: str) -> bool:
    return name in SERVED


@pytest.mark.parametrize(("name", "expected"), [
    ("gpt-5.1-codex(high)", Resolved("gpt-5.1-codex", ir.Reasoning(effort="high"))),
    ("gemini-2.5-pro(8192)", Resolved("gemini-2.5-pro", ir.Reasoning(budget=8192))),
    ("claude-sonnet-4-5(none)", Resolved("claude-sonnet-4-5", ir.Reasoning(effort="none"))),
    ("claude-sonnet-4-5-reasoning-high", Resolved("claude-sonnet-4-5", ir.Reasoning(effort="high"))),
    ("claude-sonnet-4-5-reasoning-ultrathink", Resolved("claude-sonnet-4-5", ir.Reasoning(effort="xhigh"))),
    ("claude-sonnet-4-5-thinking", Resolved("claude-sonnet-4-5-thinking")),  # served under its full name
    ("unknown-reasoning-high", Resolved("unknown-reasoning-high")),  # base not served: left alone
])
def test_resolve(name: str, expected: Resolved) -> None:
    assert resolve(name, served) == expected


def test_bad_suffix_is_a_clear_400() -> None:
    with pytest.raises(ir.Error) as raised:
        resolve("gpt-5.1-codex(turbo)", served)
    assert raised.value.status == 400 and "unknown reasoning setting (turbo)" in raised.value.message


def test_suffix_beats_the_dialect_field_but_keeps_summary() -> None:
    request = ir.Reasoning(effort="low", summary="detailed", include_thoughts=True)
    assert merged(request, ir.Reasoning(budget=4096)) == ir.Reasoning(budget=4096, summary="detailed",
                                                                      include_thoughts=True)
    assert merged(request, None) is request


def info(model: str, table: catalogue.Catalogue | None = None) -> catalogue.ModelInfo:
    found = (table or catalogue.Catalogue()).lookup(model)
    assert found is not None
    return found


def test_fit_to_budget_models() -> None:
    assert fit(ir.Reasoning(effort="high"), info("claude-sonnet-4-5")) == ir.Reasoning(budget=24576)
    assert fit(ir.Reasoning(budget=100), info("claude-sonnet-4-5")) == ir.Reasoning(budget=1024)
    assert fit(ir.Reasoning(effort="max"), info("gemini-2.5-pro")) == ir.Reasoning(budget=32768)
    assert fit(ir.Reasoning(effort="none"), info("gemini-2.5-pro")) == ir.Reasoning(budget=128)  # cannot disable
    assert fit(ir.Reasoning(effort="none"), info("gemini-2.5-flash")) == ir.Reasoning(budget=0)
    assert fit(ir.Reasoning(effort="auto"), info("gemini-2.5-flash")) == ir.Reasoning(effort="auto")


def test_fit_to_level_models() -> None:
    assert fit(ir.Reasoning(budget=30000), info("gpt-5.1-codex")) == ir.Reasoning(effort="high")  # xhigh -> high
    assert fit(ir.Reasoning(effort="minimal"), info("gpt-5.1-codex")) == ir.Reasoning(effort="low")
    assert fit(ir.Reasoning(effort="xhigh"), info("gpt-5.1-codex-max")) == ir.Reasoning(effort="xhigh")
    assert fit(ir.Reasoning(effort="none"), info("gpt-5.1")) == ir.Reasoning(effort="none")
    assert fit(ir.Reasoning(effort="none"), info("gpt-5-codex")) == ir.Reasoning(effort="low")
    assert fit(ir.Reasoning(effort="medium"), info("gemini-3-pro-preview")) == ir.Reasoning(effort="high")


def test_non_reasoning_models_drop_the_setting_and_config_overrides() -> None:
    assert fit(ir.Reasoning(effort="high"), info("qwen3-coder-plus")) is None
    configured = catalogue.Catalogue.from_config({"model-catalogue": {"qwen3-coder-plus": {
        "reasoning": "budget", "max-budget": 2048, "min-budget": 1, "context": 262144}}})
    assert info("qwen3-coder-plus", configured).context == 262144
    assert fit(ir.Reasoning(effort="high"), info("qwen3-coder-plus", configured)) == ir.Reasoning(budget=2048)
    with pytest.raises(ValueError, match="reasoning must be"):
        catalogue.Catalogue.from_config({"model-catalogue": {"x": {"reasoning": "lots"}}})
    assert info("qwen3-coder-plus").context == 1_000_000  # another config's table is untouched
