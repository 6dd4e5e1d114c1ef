"""Names, enums and wire tables of the gemini dialect."""

from __future__ import annotations

import re
from typing import Any, Literal

from crossroads import ir

NAME = "gemini"


META = "_meta"


_CAMEL_RE = re.compile(r"_([a-z0-9])")


def camel(key: str) -> str:
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), key) if "_" in key else key


def get(obj: dict[str, Any], camel: str) -> Any:
    """A field under its camelCase or snake_case name (proto JSON accepts both)."""
    value = obj.get(camel)
    if value is None:
        snake = _SNAKE.get(camel)
        if snake is not None:
            value = obj.get(snake)
    return value


_CAMEL_FIELDS = (
    "systemInstruction", "toolConfig", "generationConfig", "functionCallingConfig", "allowedFunctionNames",
    "functionDeclarations", "parametersJsonSchema", "maxOutputTokens", "stopSequences", "candidateCount",
    "presencePenalty", "frequencyPenalty", "topP", "topK", "responseMimeType", "responseSchema",
    "responseJsonSchema", "thinkingConfig", "thinkingBudget", "thinkingLevel", "includeThoughts",
    "inlineData", "fileData", "functionCall", "functionResponse", "thoughtSignature", "mimeType",
    "fileUri", "displayName", "executableCode", "codeExecutionResult", "finishReason", "usageMetadata",
    "promptTokenCount", "candidatesTokenCount", "totalTokenCount", "cachedContentTokenCount",
    "thoughtsTokenCount", "toolUsePromptTokenCount", "modelVersion", "responseId", "promptFeedback",
    "blockReason",
)


_SNAKE = {name: re.sub(r"([A-Z])", r"_\1", name).lower() for name in _CAMEL_FIELDS}


def known(*camel: str) -> frozenset[str]:
    return frozenset(camel) | frozenset(_SNAKE.get(name, name) for name in camel)


REQUEST_KEYS = known("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")


GENERATION_KEYS = known(
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed",
    "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
    "thinkingConfig",
)


THINKING_KEYS = known("thinkingBudget", "thinkingLevel", "includeThoughts")


DECLARATION_KEYS = known("name", "description", "parameters", "parametersJsonSchema")


USAGE_KEYS = known("promptTokenCount", "candidatesTokenCount", "totalTokenCount",
                     "cachedContentTokenCount", "thoughtsTokenCount")


RESPONSE_KEYS = known("candidates", "usageMetadata", "modelVersion", "responseId")


CANDIDATE_KEYS = known("content", "finishReason")


FINISH_TO_STOP: dict[str, ir.StopReason] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
}


STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "STOP",
    "tool_use": "STOP",
    "stop_sequence": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "refusal": "SAFETY",
    "error": "OTHER",
}


_ChoiceMode = Literal["auto", "none", "required", "tool"]


MODE_TO_CHOICE: dict[str, _ChoiceMode] = {"AUTO": "auto", "VALIDATED": "auto", "MODE_UNSPECIFIED": "auto",
                                           "NONE": "none", "ANY": "required"}


CHOICE_TO_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


ERROR_STATUS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "INVALID_ARGUMENT"),
    "request_too_large": (400, "INVALID_ARGUMENT"),
    "authentication": (401, "UNAUTHENTICATED"),
    "permission": (403, "PERMISSION_DENIED"),
    "not_found": (404, "NOT_FOUND"),
    "rate_limit": (429, "RESOURCE_EXHAUSTED"),
    "server_error": (500, "INTERNAL"),
    "overloaded": (503, "UNAVAILABLE"),
    "timeout": (504, "DEADLINE_EXCEEDED"),
}


KIND_BY_GOOGLE_STATUS: dict[str, ir.ErrorKind] = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "UNAUTHENTICATED": "authentication",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "UNAVAILABLE": "overloaded",
    "INTERNAL": "server_error",
    "UNKNOWN": "server_error",
    "DATA_LOSS": "server_error",
    "ABORTED": "server_error",
    "CANCELLED": "server_error",
    "DEADLINE_EXCEEDED": "timeout",
}


SKIP_SIGNATURE_CHECK = "skip_thought_signature_validator"


BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")




def proto_int(value: Any) -> Any:
    """Proto JSON may quote 64-bit integers ("8192"): those read as numbers."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value
JSON = dict[str, Any]
