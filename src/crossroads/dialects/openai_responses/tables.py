"""Names, enums and wire tables of the openai_responses dialect."""

from __future__ import annotations

from typing import Any

from crossroads import ir

NAME = "openai-responses"


META = f"{NAME}:meta"  # Response.extra key for bookkeeping that must not reach the wire


KIND_PREFIX = f"{NAME}:"


SYNTH = "x"  # marks ids we made up: rs_x.., fc_x.., msg_x..


JSON = dict[str, Any]


ContentPart = ir.TextPart | ir.ImagePart | ir.DocumentPart


StreamPart = ir.TextPart | ir.ThinkingPart | ir.ToolCallPart


INPUT_TEXT: JSON = {"type": "input_text"}


OUTPUT_TEXT: JSON = {"type": "output_text", "annotations": []}


TEXT_TYPES = frozenset({"input_text", "output_text"})


WIRE_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})


FUNCTION_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})


MODELLED_TOP = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "max_output_tokens", "temperature", "top_p", "stream", "reasoning", "text", "user", "metadata",
})
