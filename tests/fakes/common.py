"""Shared plumbing for the fake upstream servers.

A fake is an aiohttp.web app served on 127.0.0.1 from a background thread with its own
event loop, so synchronous tests and sync SDK clients can talk to it. Each dialect module
renders its own wire shapes; this module owns what is common:

- `Scenario`: what the next generation request should get (FIFO queue, `push()`).
- `ConversationView` + `plan_reply()`: the deterministic default reply derived from the
  request when no scenario is queued (or when a scenario only sets timing fields).
- `RecordedRequest`: every request the fake receives, for assertions.
- `validate_typed()`: validation of a body against an SDK TypedDict with readable errors.
- `stream_frames()`: writes pre-encoded stream frames honouring `chunk_delay` / `cut_after`.

The fakes never import `crossroads`: a translator checked against itself proves nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import itertools
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web
from multidict import CIMultiDict
from pydantic import TypeAdapter, ValidationError

JSON = dict[str, Any]
ToolCallSpec = tuple[str, dict[str, Any]]

# Neutral stop reasons used by `Reply.stop`; each fake maps them to its dialect.
STOP_END = "end"
STOP_MAX_TOKENS = "max_tokens"
STOP_TOOL_USE = "tool_use"
STOP_SEQUENCE = "stop_sequence"
STOP_CONTENT_FILTER = "content_filter"

MAX_TOKENS_CUTOFF = 5  # a max_tokens below this ends the reply with the max-tokens reason
CACHED_TOKENS_WHEN_REQUESTED = 64


# ---------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class FakeError:
    """An error reply. `type` is the dialect's error type (or Gemini status); derived from
    `status` when omitted."""

    status: int
    message: str = "scripted error"
    type: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Scenario:
    """What the next generation request gets. Every field is optional.

    Content fields (text, thinking, tool_calls, json_value) replace the default reply when
    any of them is set; a scenario with only timing fields (delay, chunk_delay, cut_after)
    keeps the default reply. `stop_reason` is a neutral name (end, max_tokens, tool_use,
    stop_sequence, content_filter) or a raw dialect value passed through unchanged.
    `usage` overrides keys of `Usage` (input_tokens, output_tokens, cached_tokens,
    cache_creation_tokens, reasoning_tokens).
    """

    text: str | None = None
    thinking: str | None = None
    tool_calls: Sequence[ToolCallSpec] | None = None
    stop_reason: str | None = None
    usage: dict[str, int] | None = None
    error: FakeError | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    json_value: Any = None

    @classmethod
    def fail(
        cls, status: int, message: str = "scripted error", *, retry_after: float | None = None,
        type: str | None = None,
    ) -> Scenario:
        return cls(error=FakeError(status, message, type, retry_after))

    def sets_content(self) -> bool:
        return (
            self.text is not None
            or self.thinking is not None
            or self.tool_calls is not None
            or self.json_value is not None
        )


# ---------------------------------------------------------------------------
# The neutral view of a request and the reply planned from it


@dataclass
class ToolOffer:
    name: str
    schema: JSON


@dataclass
class ConversationView:
    """What the default-reply rules need to know about a request, extracted per dialect."""

    last_user_text: str = ""
    tool_result_text: str | None = None  # set when the last user turn carries a tool result
    tools: list[ToolOffer] = field(default_factory=list)
    json_schema: JSON | None = None  # {} for "any JSON object"
    image_mime_types: list[str] = field(default_factory=list)
    thinking_enabled: bool = False
    max_tokens: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    cache_requested: bool = False
    body_size: int = 0


@dataclass
class Usage:
    """Neutral usage. `input_tokens` includes cached/cache-creation tokens; `output_tokens`
    includes reasoning tokens. Each dialect re-slices it the way its API reports it."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class Reply:
    text: str
    thinking: str | None
    tool_calls: list[ToolCallSpec]
    stop: str
    stop_sequence: str | None
    usage: Usage


class FakeIds:
    """Deterministic, per-fake increasing ids: `prefix + 24 chars`."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, prefix: str) -> str:
        with self._lock:
            n = next(self._counter)
        digest = hashlib.sha256(f"{self._kind}:{n}".encode()).hexdigest()[:16]
        return f"{prefix}{n:08d}{digest}"


def fake_signature(thinking: str) -> str:
    """An opaque, base64 signature that depends on the thinking text."""
    return base64.b64encode(b"fake-sig:" + hashlib.sha256(thinking.encode()).digest()).decode()


def plan_reply(view: ConversationView, scenario: Scenario | None, kind: str) -> Reply:
    if scenario is not None and scenario.sets_content():
        text, thinking, tool_calls = _scripted_content(scenario)
    else:
        text, thinking, tool_calls = _default_content(view, kind)
    stop = STOP_TOOL_USE if tool_calls else STOP_END
    stop_sequence = None
    for sequence in view.stop_sequences:
        if sequence and sequence in text:
            text = text[: text.index(sequence)]
            stop, stop_sequence = STOP_SEQUENCE, sequence
            break
    if view.max_tokens is not None and view.max_tokens < MAX_TOKENS_CUTOFF:
        text = " ".join(text.split(" ")[: max(view.max_tokens, 1)])
        tool_calls = []
        stop, stop_sequence = STOP_MAX_TOKENS, None
    if scenario is not None and scenario.stop_reason is not None:
        stop = scenario.stop_reason
    usage = _usage_for(view, text, thinking, tool_calls)
    if scenario is not None and scenario.usage:
        usage = dataclasses.replace(usage, **scenario.usage)
    return Reply(text, thinking, tool_calls, stop, stop_sequence, usage)


def _scripted_content(scenario: Scenario) -> tuple[str, str | None, list[ToolCallSpec]]:
    text = scenario.text or ""
    if scenario.json_value is not None:
        text = orjson.dumps(scenario.json_value).decode()
    return text, scenario.thinking, list(scenario.tool_calls or [])


def _default_content(view: ConversationView, kind: str) -> tuple[str, str | None, list[ToolCallSpec]]:
    thinking = f"Thinking about: {view.last_user_text[:200]}" if view.thinking_enabled else None
    if view.tool_result_text is not None:
        return f"Tool result received: {view.tool_result_text}", thinking, []
    if "CALL_TOOL" in view.last_user_text and view.tools:
        return "", thinking, _default_tool_calls(view)
    if view.json_schema is not None:
        return orjson.dumps(sample_for_output(view.json_schema)).decode(), thinking, []
    text = f"Hello from fake-{kind}. You said: {view.last_user_text[:200]}"
    if view.image_mime_types:
        text += f" [saw {len(view.image_mime_types)} image(s): {', '.join(view.image_mime_types)}]"
    return text, thinking, []


def _default_tool_calls(view: ConversationView) -> list[ToolCallSpec]:
    first = view.tools[0]
    calls = [(first.name, sample_for_arguments(first.schema))]
    if "CALL_TOOLS_PARALLEL" in view.last_user_text:
        second = view.tools[1] if len(view.tools) > 1 else first
        calls.append((second.name, sample_for_arguments(second.schema)))
    return calls


def _usage_for(view: ConversationView, text: str, thinking: str | None, calls: list[ToolCallSpec]) -> Usage:
    input_tokens = max(1, view.body_size // 4)
    reasoning = len(thinking) // 4 + 1 if thinking else 0
    arguments_size = sum(len(orjson.dumps(args)) + len(name) for name, args in calls)
    output_tokens = max(1, (len(text) + arguments_size) // 4) + reasoning
    cached = min(CACHED_TOKENS_WHEN_REQUESTED, input_tokens // 2) if view.cache_requested else 0
    return Usage(input_tokens, output_tokens, cached_tokens=cached, reasoning_tokens=reasoning)


# ---------------------------------------------------------------------------
# Sample values from JSON schemas (OpenAPI-style upper-case types too, as Gemini uses)


def sample_for_arguments(schema: JSON) -> Any:
    """Tool-call arguments: required properties only (always an object)."""
    arguments = _sample(schema, schema, required_only=True, depth=0)
    return arguments if isinstance(arguments, dict) else {}


def sample_for_output(schema: JSON) -> Any:
    """Structured output: every property."""
    if not schema:
        return {"result": "x"}
    return _sample(schema, schema, required_only=False, depth=0)


def _sample(schema: Any, root: JSON, *, required_only: bool, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 8:
        return "x"
    schema = _resolve_ref(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _sample(schema[key][0], root, required_only=required_only, depth=depth + 1)
    kind = _schema_type(schema)
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties") or {}
        names = schema.get("required", []) if required_only else list(properties)
        return {
            name: _sample(properties.get(name, {}), root, required_only=required_only, depth=depth + 1)
            for name in names
        }
    return {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}.get(
        kind, "x"
    )


def _schema_type(schema: JSON) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is None:
        return "object" if "properties" in schema else "string"
    return str(kind).lower()


def _resolve_ref(schema: JSON, root: JSON) -> JSON:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


# ---------------------------------------------------------------------------
# Request validation against the SDKs' TypedDicts


class BodyInvalid(Exception):
    """A request body the real API would reject. `param` is the dotted path when known."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def base64_bytes(data: Any, where: str, *, urlsafe: bool = False) -> bytes:
    """Inline data as the real API decodes it: standard base64 for Anthropic and
    OpenAI (which reject anything else); Google's JSON mapping of ``bytes``
    also takes the URL-safe alphabet and missing padding."""
    if not isinstance(data, str):
        raise BodyInvalid(f"{where}: expected base64 text", where)
    text = data
    if urlsafe:
        text = text.replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise BodyInvalid(f"{where}: invalid base64 data", where) from None


def data_url_bytes(url: Any, where: str) -> bytes | None:
    """The bytes of a ``data:`` URL (None for other URLs), strictly decoded."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, comma, payload = url[5:].partition(",")
    if not comma or not header.endswith(";base64") or "/" not in header:
        raise BodyInvalid(f"{where}: invalid data URL", where)
    return base64_bytes(payload, where)


def validate_typed(adapter: TypeAdapter[Any], body: JSON, allowed_keys: frozenset[str]) -> None:
    """Validate `body`, rejecting unknown top-level keys like the real APIs do.

    The SDK TypedDicts type lists as `Iterable[...]`, which pydantic validates lazily: the
    items are only checked when iterated. `_drain` iterates everything so nested shapes are
    really validated.
    """
    unknown = sorted(set(body) - allowed_keys)
    if unknown:
        raise BodyInvalid(f"{unknown[0]}: Extra inputs are not permitted", unknown[0])
    try:
        _drain(adapter.validate_python(body), ())
    except ValidationError as error:
        raise BodyInvalid(*_summarize(error, ())) from None
    except _NestedInvalid as nested:
        raise BodyInvalid(*_summarize(nested.error, nested.path)) from None


# pydantic-core does not export the type of its lazy iterables; take it from a sample.
_LAZY_ITERABLE = type(TypeAdapter(Iterable[int]).validate_python([]))


class _NestedInvalid(Exception):
    def __init__(self, error: ValidationError, path: tuple[str | int, ...]) -> None:
        self.error = error
        self.path = path


def _drain(value: Any, path: tuple[str | int, ...]) -> None:
    if isinstance(value, _LAZY_ITERABLE):
        items = iter(value)
        index = 0
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except ValidationError as error:
                raise _NestedInvalid(error, path) from None
            _drain(item, (*path, index))
            index += 1
    if isinstance(value, dict):
        for key, item in value.items():
            _drain(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _drain(item, (*path, index))


_FIELD_NAME = re.compile(r"^[a-z_][A-Za-z0-9_]*$")


def _summarize(error: ValidationError, prefix: tuple[str | int, ...]) -> tuple[str, str]:
    """One readable line from pydantic's (very long, union-expanded) error list.

    Unions of tagged shapes produce one error per member. Take the errors about the deepest
    item of the body; drop the members whose `type` tag did not match; if none is left, the
    tag itself is wrong.
    """
    details = error.errors()
    deepest = max(len(_item_path(detail["loc"])) for detail in details)
    at_item = [detail for detail in details if len(_item_path(detail["loc"])) == deepest]
    wrong_tag = {_member(detail["loc"]) for detail in at_item if _is_tag_mismatch(detail)}
    matching = [detail for detail in at_item if _member(detail["loc"]) not in wrong_tag]
    if matching:
        best = matching[0]
        path = _dotted((*prefix, *_real_path(best["loc"])))
        return f"{path}: {_message(best, matching)}", path
    tag_error = at_item[0]
    path = _dotted((*prefix, *_item_path(tag_error["loc"])))
    tag = tag_error["input"].get("type") if isinstance(tag_error["input"], dict) else tag_error["input"]
    return f"{path}: Input tag {tag!r} found using 'type' does not match any of the expected tags", path


def _message(best: Any, siblings: list[Any]) -> str:
    """Merge the literal choices several union members offer for the same field."""
    if best["type"] != "literal_error":
        return str(best["msg"])
    path = _real_path(best["loc"])
    expected = [
        str(detail["ctx"]["expected"])
        for detail in siblings
        if detail["type"] == "literal_error" and _real_path(detail["loc"]) == path
    ]
    choices = list(dict.fromkeys(expected))
    if len(choices) < 2:
        return str(best["msg"])
    return f"Input should be {', '.join(choices[:-1])} or {choices[-1]}"


def _dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def _is_field(part: str | int) -> bool:
    return isinstance(part, int) or bool(_FIELD_NAME.match(part))


def _real_path(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The path in the body: loc without pydantic's union-member names."""
    return tuple(part for part in loc if _is_field(part))


def _item_path(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The path of the object the error is about (the failing field name removed)."""
    path = _real_path(loc)
    return path[:-1] if path and isinstance(path[-1], str) and loc[-1] == path[-1] else path


def _member(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Identifies the union member an error belongs to: loc up to the last member name."""
    last = max((index for index, part in enumerate(loc) if not _is_field(part)), default=-1)
    return loc[: last + 1]


def _is_tag_mismatch(detail: Any) -> bool:
    return detail["type"] == "literal_error" and detail["loc"][-1:] == ("type",)


def typed_dict_keys(*typed_dicts: Any) -> frozenset[str]:
    keys: set[str] = set()
    for typed_dict in typed_dicts:
        keys |= set(typed_dict.__required_keys__) | set(typed_dict.__optional_keys__)
    return frozenset(keys)


# ---------------------------------------------------------------------------
# Recorded requests


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any  # parsed JSON, or None when the body is empty / not JSON
    raw: bytes


# ---------------------------------------------------------------------------
# The server base


Handler = Callable[[web.Request], Any]
JSON_BODY = web.RequestKey("json_body", object)
RAW_BODY = web.RequestKey("raw_body", bytes)
DROPPED = web.RequestKey("dropped_by_fake", bool)


class FakeServer:
    """Base of every fake: threading, queue, recording. Subclasses add routes."""

    kind = "fake"

    def __init__(self, *, api_keys: Iterable[str] = ("test-key",), host: str = "127.0.0.1", port: int = 0):
        self.api_keys = frozenset(api_keys)
        self.ids = FakeIds(self.kind)
        self._host = host
        self._port = port
        self._scenarios: deque[Scenario] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.abandoned = 0  # requests whose caller hung up before the answer was ready

    # --- subclasses
    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # --- lifecycle
    def start(self) -> Self:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fake-{self.kind}", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(timeout=10)
        return self

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._recording_middleware])
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    # --- scripting
    def push(self, *scenarios: Scenario) -> None:
        with self._lock:
            self._scenarios.extend(scenarios)

    def next_scenario(self) -> Scenario | None:
        with self._lock:
            return self._scenarios.popleft() if self._scenarios else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._scenarios)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    async def scripted(self) -> tuple[Scenario | None, web.Response | None]:
        """The next queued scenario, after its delay; when it scripts an error,
        the error reply to send instead of a generation."""
        scenario = self.next_scenario()
        if scenario is None:
            return None, None
        await pause(scenario.delay)
        if scenario.error is not None:
            return scenario, self.error_response(scenario.error)
        return scenario, None

    def error_response(self, error: FakeError) -> web.Response:
        """An error in this fake's API's own JSON shape."""
        raise NotImplementedError

    def clear(self) -> None:
        """Forget recorded requests and queued scenarios."""
        with self._lock:
            self._requests.clear()
            self._scenarios.clear()

    # --- request plumbing
    @web.middleware
    async def _recording_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(raw)
        recorded = RecordedRequest(
            request.method, request.path, dict(request.query), CIMultiDict(request.headers), body, raw
        )
        with self._lock:
            self._requests.append(recorded)
        request[JSON_BODY] = body
        request[RAW_BODY] = raw
        # like the real services, stop generating for a caller that hung up
        task = asyncio.ensure_future(handler(request))
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.05)
            if done:
                return task.result()
            if (request.transport is None or request.transport.is_closing()) and not request.get(DROPPED):
                with self._lock:
                    self.abandoned += 1
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                return web.Response(status=499)

    def bearer_or_header_key(self, request: web.Request, header: str) -> str | None:
        key = request.headers.get(header)
        if key:
            return key
        authorization = request.headers.get("Authorization", "")
        if authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        return None


def json_body(request: web.Request) -> Any:
    return request[JSON_BODY]


def body_size(request: web.Request) -> int:
    return len(request[RAW_BODY])


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers
    )


def error_headers(error: FakeError) -> dict[str, str]:
    if error.retry_after is None:
        return {}
    return {"Retry-After": f"{error.retry_after:g}"}


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def stream_frames(
    request: web.Request,
    frames: Iterable[bytes],
    scenario: Scenario | None,
    *,
    content_type: str = "text/event-stream",
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Write `frames` one by one; with `cut_after=N`, drop the connection after N frames
    without the proper terminator (the chunked encoding is left unfinished too)."""
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = content_type
    if content_type == "text/event-stream":
        response.headers["Cache-Control"] = "no-cache"
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk_delay = scenario.chunk_delay if scenario else 0.0
    cut_after = scenario.cut_after if scenario else None
    for written, frame in enumerate(frames):
        if cut_after is not None and written >= cut_after:
            _drop_connection(request)
            return response
        if written and chunk_delay:
            await asyncio.sleep(chunk_delay)
        await response.write(frame)
    await response.write_eof()
    return response


def _drop_connection(request: web.Request) -> None:
    request[DROPPED] = True
    transport = request.transport
    if transport is not None:
        transport.abort()


def sse_frame(data: JSON, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def split_text(text: str, pieces: int = 3) -> Iterator[str]:
    """Split text into up to `pieces` fragments on word boundaries (several deltas per block)."""
    if not text:
        return
    words = text.split(" ")
    size = max(1, -(-len(words) // pieces))
    for start in range(0, len(words), size):
        chunk = " ".join(words[start : start + size])
        yield chunk if start + size >= len(words) else chunk + " "


def split_string(value: str, pieces: int = 3) -> list[str]:
    """Split any string (e.g. JSON arguments) into `pieces` raw fragments."""
    if len(value) < pieces:
        return [value]
    size = -(-len(value) // pieces)
    return [value[start : start + size] for start in range(0, len(value), size)]
