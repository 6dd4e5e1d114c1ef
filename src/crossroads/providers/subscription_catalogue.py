"""What the subscription models can do: context size, maximum output and
reasoning capability (a token budget, a set of levels, or none).

Built in for the models the subscription providers serve; the config key
``model-catalogue`` overrides or adds entries::

    model-catalogue:
      gemini-2.5-pro: {context: 1048576, max-output: 65536, reasoning: budget,
                       min-budget: 128, max-budget: 32768, can-disable: false}
      gpt-5.1-codex-max: {reasoning: level, levels: [low, medium, high, xhigh]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Capability = Literal["budget", "level", "none"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    context: int
    max_output: int
    reasoning: Capability = "none"
    levels: tuple[str, ...] = ()  # for "level": what the upstream accepts
    min_budget: int = 0  # for "budget"
    max_budget: int = 0
    can_disable: bool = True  # reasoning can be switched off


def _claude(model_id: str, max_output: int = 64000) -> ModelInfo:
    return ModelInfo(model_id, 200_000, max_output, "budget", min_budget=1024, max_budget=max_output - 1)


GPT5_LEVELS = ("minimal", "low", "medium", "high")
CODEX_LEVELS = ("low", "medium", "high")
GPT51_LEVELS = ("none", "low", "medium", "high")

_BUILT_IN = [
    _claude("claude-opus-4-8"), _claude("claude-opus-4-5"), _claude("claude-opus-4-1", 32000),
    _claude("claude-sonnet-4-5"), _claude("claude-sonnet-4"), _claude("claude-haiku-4-5"),
    _claude("claude-sonnet-4-5-thinking"), _claude("claude-opus-4-5-thinking"),
    ModelInfo("gpt-5", 400_000, 128_000, "level", GPT5_LEVELS, can_disable=False),
    ModelInfo("gpt-5-codex", 400_000, 128_000, "level", CODEX_LEVELS, can_disable=False),
    ModelInfo("gpt-5-codex-mini", 400_000, 128_000, "level", ("medium", "high"), can_disable=False),
    ModelInfo("gpt-5.1", 400_000, 128_000, "level", GPT51_LEVELS),
    ModelInfo("gpt-5.1-codex", 400_000, 128_000, "level", CODEX_LEVELS, can_disable=False),
    ModelInfo("gpt-5.1-codex-mini", 400_000, 128_000, "level", ("medium", "high"), can_disable=False),
    ModelInfo("gpt-5.1-codex-max", 400_000, 128_000, "level", ("low", "medium", "high", "xhigh"),
              can_disable=False),
    ModelInfo("gemini-2.5-pro", 1_048_576, 65_536, "budget", min_budget=128, max_budget=32_768,
              can_disable=False),
    ModelInfo("gemini-2.5-flash", 1_048_576, 65_536, "budget", min_budget=1, max_budget=24_576),
    ModelInfo("gemini-2.5-flash-lite", 1_048_576, 65_536, "budget", min_budget=512, max_budget=24_576),
    ModelInfo("gemini-3-pro-preview", 1_048_576, 65_536, "level", ("low", "high"), can_disable=False),
    ModelInfo("gemini-3-flash-preview", 1_048_576, 65_536, "level", ("minimal", "low", "medium", "high")),
    ModelInfo("qwen3-coder-plus", 1_000_000, 65_536), ModelInfo("qwen3-coder-flash", 1_000_000, 65_536),
    ModelInfo("vision-model", 131_072, 8_192), ModelInfo("qwen3-max", 262_144, 65_536),
    ModelInfo("kimi-k2", 262_144, 32_768), ModelInfo("kimi-k2-thinking", 262_144, 32_768),
    ModelInfo("kimi-k2-turbo-preview", 262_144, 32_768),
    ModelInfo("grok-4", 256_000, 64_000), ModelInfo("grok-4-fast-reasoning", 2_000_000, 30_000),
    ModelInfo("grok-code-fast-1", 256_000, 10_000),
    ModelInfo("deepseek-v3.2", 128_000, 64_000), ModelInfo("glm-4.6", 200_000, 128_000),
]

BUILT_IN: dict[str, ModelInfo] = {info.id: info for info in _BUILT_IN}


class Catalogue:
    """The built-in entries with one config's ``model-catalogue`` laid over
    them; immutable, so a config that is rejected never reaches a request."""

    __slots__ = ("_overrides",)

    def __init__(self, overrides: Mapping[str, ModelInfo] | None = None) -> None:
        self._overrides: Mapping[str, ModelInfo] = dict(overrides or {})

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> Catalogue:
        section = raw.get("model-catalogue") or {}
        if not isinstance(section, dict):
            raise ValueError("'model-catalogue' must map model ids to their limits")
        found: dict[str, ModelInfo] = {}
        for model_id, values in section.items():
            if not isinstance(values, dict):
                raise ValueError(f"model-catalogue.{model_id} must be a mapping")
            base = BUILT_IN.get(str(model_id)) or ModelInfo(str(model_id), 128_000, 8_192)
            found[str(model_id)] = _override(base, values, f"model-catalogue.{model_id}")
        return cls(found)

    def lookup(self, model_id: str) -> ModelInfo | None:
        return self._overrides.get(model_id) or BUILT_IN.get(model_id)


def _override(base: ModelInfo, values: Mapping[str, Any], where: str) -> ModelInfo:
    changes: dict[str, Any] = {}
    try:
        for key, name in (("context", "context"), ("max-output", "max_output"), ("min-budget", "min_budget"),
                          ("max-budget", "max_budget")):
            if key in values:
                changes[name] = int(values[key])
        if "reasoning" in values:
            if values["reasoning"] not in ("budget", "level", "none"):
                raise ValueError("reasoning must be budget, level or none")
            changes["reasoning"] = values["reasoning"]
        if "levels" in values:
            changes["levels"] = tuple(str(level) for level in values["levels"])
        if "can-disable" in values:
            changes["can_disable"] = bool(values["can-disable"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    return replace(base, **changes)

