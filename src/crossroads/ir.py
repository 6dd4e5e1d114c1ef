"""The canonical model every dialect converts to and from.

Conventions (every dialect module relies on them):

* ``Usage.input_tokens`` counts the *whole* prompt, cached tokens included
  (OpenAI's convention). Anthropic's ``input_tokens`` excludes cache reads and
  writes, so its codec adds/subtracts them. ``Usage.output_tokens`` includes
  reasoning tokens (Gemini reports them apart as ``thoughtsTokenCount``).
  A field the upstream did not report stays ``None``; nothing is invented.
* Tool results live in ``user`` messages as ``ToolResultPart``; dialects that
  need a separate role (OpenAI ``tool`` messages, Responses
  ``function_call_output`` items) split them when rendering.
* ``ToolCallPart.arguments`` is the JSON text of the arguments, as streamed.
* ``extra`` dicts hold fields a dialect knows but the IR does not model, keyed
  by dialect name, so a round trip through the same dialect loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]

StopReason = Literal[
    "end_turn",  # natural stop
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "content_filter",
    "refusal",
    "pause_turn",
    "error",
]

# Canonical error kinds; each dialect maps them to its own type strings.
ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "request_too_large",
    "rate_limit",
    "overloaded",
    "server_error",
    "timeout",
]


# --------------------------------------------------------------------- parts


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ImagePart:
    """An image either inline (``data`` is base64) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None
    cache_control: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class DocumentPart:
    """A file (PDF or text) inline as base64, or by url."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    filename: str | None = None
    cache_control: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str = ""  # JSON text
    extra: dict[str, Any] | None = None  # e.g. Gemini thoughtSignature, Responses item id


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart | DocumentPart] = field(default_factory=list)
    is_error: bool = False
    name: str | None = None  # Gemini needs the function name on the response
    cache_control: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ThinkingPart:
    """Model reasoning. ``signature`` round-trips Anthropic/Gemini signatures;
    ``redacted`` holds Anthropic's opaque redacted_thinking data;
    ``encrypted`` holds OpenAI Responses ``encrypted_content``."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    encrypted: str | None = None
    extra: dict[str, Any] | None = None


Part = TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)
    name: str | None = None
    extra: dict[str, Any] | None = None


# --------------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    """A function tool, or (``kind`` != "function") a provider tool such as
    ``web_search`` whose original definition is kept in ``raw`` so a
    same-dialect upstream receives it unchanged."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    kind: str = "function"
    strict: bool | None = None
    raw: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None  # per-dialect fields of a function tool


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None  # when mode == "tool"


@dataclass(slots=True)
class Reasoning:
    """One canonical reasoning setting.

    Exactly one of ``effort`` or ``budget`` is normally set, whichever the
    client gave; renderers convert with :mod:`crossroads.reasoning`.
    ``effort`` is one of none, minimal, low, medium, high, xhigh, max, auto.
    """

    effort: str | None = None
    budget: int | None = None
    summary: str | None = None  # Responses reasoning.summary
    include_thoughts: bool | None = None
    adaptive: bool = False  # Anthropic thinking.type == "adaptive"


@dataclass(slots=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[TextPart] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    reasoning: Reasoning | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None  # end-user id (OpenAI user, Anthropic metadata.user_id)
    metadata: dict[str, Any] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = None
    include_usage: bool | None = None  # OpenAI stream_options.include_usage
    extra: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> Request:
        """A shallow copy: what ``dataclasses.replace`` makes, at a seventh
        of its cost (every translated attempt makes one)."""
        return Request(*_request_fields(self))


_request_fields = attrgetter(*Request.__dataclass_fields__)


# --------------------------------------------------------------------- response


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    def merged(self, later: Usage) -> Usage:
        """Fields reported later win; fields not reported later are kept."""
        return Usage(
            input_tokens=later.input_tokens if later.input_tokens is not None else self.input_tokens,
            output_tokens=later.output_tokens if later.output_tokens is not None else self.output_tokens,
            cache_read_tokens=later.cache_read_tokens
            if later.cache_read_tokens is not None
            else self.cache_read_tokens,
            cache_write_tokens=later.cache_write_tokens
            if later.cache_write_tokens is not None
            else self.cache_write_tokens,
            reasoning_tokens=later.reasoning_tokens
            if later.reasoning_tokens is not None
            else self.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[Part] = field(default_factory=list)  # Text, Thinking, ToolCall
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------- errors


@dataclass(slots=True)
class Error(Exception):
    status: int
    kind: ErrorKind
    message: str
    retry_after: float | None = None
    param: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.kind}: {self.message}"


def bad_request(message: str, param: str | None = None) -> Error:
    return Error(400, "invalid_request", message, param=param)


KIND_BY_STATUS: dict[int, ErrorKind] = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit",
    500: "server_error",
    502: "server_error",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


def kind_for_status(status: int) -> ErrorKind:
    if status in KIND_BY_STATUS:
        return KIND_BY_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request"


# --------------------------------------------------------------------- stream events
#
# A stream is: Start, then for each output part PartStart / PartDelta* /
# PartStop (indices are 0-based, in output order, never reused), then one
# Finish (stop reason + final usage), or an ErrorEvent at any point.
# UsageEvent may appear any time a dialect reports interim usage.


@dataclass(slots=True)
class Start:
    id: str
    model: str
    usage: Usage | None = None  # Anthropic message_start carries input usage


@dataclass(slots=True)
class PartStart:
    index: int
    part: TextPart | ThinkingPart | ToolCallPart  # content empty; ids/names set


@dataclass(slots=True)
class PartDelta:
    index: int
    text: str = ""  # text, thinking text, or tool-call argument JSON fragment
    signature: str | None = None  # thinking signature fragment/value


@dataclass(slots=True)
class PartStop:
    index: int


@dataclass(slots=True)
class UsageEvent:
    usage: Usage


@dataclass(slots=True)
class Finish:
    stop_reason: StopReason | None
    usage: Usage | None = None
    stop_sequence: str | None = None


@dataclass(slots=True)
class ErrorEvent:
    error: Error


Event = Start | PartStart | PartDelta | PartStop | UsageEvent | Finish | ErrorEvent
