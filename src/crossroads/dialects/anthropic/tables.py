"""Names, enums and wire tables of the anthropic dialect."""

from __future__ import annotations

from typing import Any

from crossroads import ir

NAME = "anthropic"


DEFAULT_MAX_TOKENS = 8192


MIN_THINKING_BUDGET = 1024


MIN_TOP_P_WITH_THINKING = 0.95


TOOL_KIND_PREFIX = NAME + ":"


JSON = dict[str, Any]


STOP_FROM_WIRE: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}


STOP_TO_WIRE: dict[str, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "content_filter": "refusal",
    "error": "end_turn",
}


ERROR_KIND_FROM_TYPE: dict[str, ir.ErrorKind] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication",
    "billing_error": "permission",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit",
    "timeout_error": "timeout",
    "api_error": "server_error",
    "overloaded_error": "overloaded",
}


# The SDK's ErrorObject union has no "request_too_large" type: a 413 carries
# invalid_request_error.
ERROR_WIRE_FOR_KIND: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "authentication": (401, "authentication_error"),
    "permission": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "request_too_large": (413, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "timeout": (504, "timeout_error"),
    "server_error": (500, "api_error"),
    "overloaded": (529, "overloaded_error"),
}


# Error types the SDK's ErrorObject union accepts; an ir.Error.code naming one
# of them (e.g. billing_error) is rendered as that type.
SDK_ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "billing_error", "permission_error",
    "not_found_error", "rate_limit_error", "timeout_error", "api_error", "overloaded_error",
})


CANONICAL_ERROR_TYPES = frozenset(ERROR_KIND_FROM_TYPE) - {"billing_error"}


NATIVE_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})


DISPLAY_FROM_INCLUDE = {True: "summarized", False: "omitted"}


INCLUDE_FROM_DISPLAY = {"summarized": True, "omitted": False}




# Known keys per wire object; anything else is kept in ``extra``.
REQUEST_KEYS = frozenset({
    "model", "messages", "system", "max_tokens", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "metadata", "output_config", "output_format",
})


MESSAGE_KEYS = frozenset({"role", "content"})


TEXT_KEYS = frozenset({"type", "text", "cache_control"})


IMAGE_KEYS = frozenset({"type", "source", "cache_control"})


DOCUMENT_KEYS = frozenset({"type", "source", "cache_control", "title"})


TOOL_USE_KEYS = frozenset({"type", "id", "name", "input"})


TOOL_RESULT_KEYS = frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"})


THINKING_KEYS = frozenset({"type", "thinking", "signature"})


TOOL_KEYS = frozenset({"name", "description", "input_schema", "cache_control", "strict"})


RESPONSE_KEYS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "stop_sequence",
                            "usage"})


USAGE_KEYS = frozenset({"input_tokens", "output_tokens", "cache_read_input_tokens",
                         "cache_creation_input_tokens", "output_tokens_details"})


UPSTREAM_CUT = "upstream stream ended before completion"
