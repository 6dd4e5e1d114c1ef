"""Every retry hint is read the same way wherever it appears: as a header, in
an error body of each dialect, in a stream's error event, and in the
rate-limit headers providers read."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import orjson
import pytest

from crossroads import dialects, ir
from crossroads.dialects.kit import durations
from crossroads.providers import ratelimit_headers

# (what the upstream said, seconds it means)
HINTS = [
    ("try again in 2S", 2.0),
    ("Please try again in 2s.", 2.0),
    ("Please try again in 1m3.5s", 63.5),
    ("try again in 250ms", 0.25),
    ("Please retry in 41.2s.", 41.2),
    ("try again in 1h", 3600.0),
]


def _chat_body(message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}})


def _anthropic_body(message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": message}})


def _gemini_body(message: str) -> bytes:
    return orjson.dumps({"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}})


BODIES: dict[str, Callable[[str], bytes]] = {
    "openai-chat": _chat_body,
    "openai-completions": _chat_body,
    "openai-responses": _chat_body,
    "anthropic": _anthropic_body,
    "gemini": _gemini_body,
}


def _responses_stream_error(payload: dict[str, object]) -> ir.Error:
    decoder = dialects.get("openai-responses").stream_decoder()
    events = decoder.feed(str(payload["type"]), orjson.dumps(payload).decode())
    errors = [e.error for e in events if isinstance(e, ir.ErrorEvent)]
    assert len(errors) == 1
    return errors[0]


@pytest.mark.parametrize(("message", "seconds"), HINTS)
@pytest.mark.parametrize("dialect", sorted(BODIES))
def test_retry_hint_in_an_error_message(dialect: str, message: str, seconds: float) -> None:
    error = dialects.get(dialect).parse_error(429, BODIES[dialect](message))
    assert error.retry_after == pytest.approx(seconds)


@pytest.mark.parametrize(("message", "seconds"), HINTS)
def test_retry_hint_in_stream_error_events(message: str, seconds: float) -> None:
    failed = {"type": "response.failed",
              "response": {"id": "r", "status": "failed", "error": {"code": "rate_limit_exceeded", "message": message}}}
    assert _responses_stream_error(failed).retry_after == pytest.approx(seconds)
    event = {"type": "error", "code": "rate_limit_exceeded", "message": message}
    assert _responses_stream_error(event).retry_after == pytest.approx(seconds)


@pytest.mark.parametrize(("duration", "seconds"), [("2S", 2.0), ("2s", 2.0), ("6m0s", 360.0), ("1.5s", 1.5),
                                                    ("250ms", 0.25), ("2", 2.0)])
def test_durations_in_rate_limit_headers(duration: str, seconds: float) -> None:
    headers = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "10",
               "x-ratelimit-reset-requests": duration}
    [window] = ratelimit_headers.openai_windows(headers)
    assert window.used == pytest.approx(0.9) and window.kind == "requests-per-minute"
    assert window.resets_at - window.observed_at == pytest.approx(seconds)
    assert durations.duration(duration) == pytest.approx(seconds)


@pytest.mark.parametrize(("delay", "seconds"), [("2s", 2.0), ("2S", 2.0), ("0.5s", 0.5), ({"seconds": 2}, 2.0),
                                                 ({"seconds": "1", "nanos": 500000000}, 1.5)])
def test_gemini_retry_info(delay: object, seconds: float) -> None:
    body = orjson.dumps({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED",
                                   "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                "retryDelay": delay}]}})
    assert dialects.get("gemini").parse_error(429, body).retry_after == pytest.approx(seconds)
    assert durations.retry_info(orjson.loads(body)["error"]["details"]) == pytest.approx(seconds)


@pytest.mark.parametrize("dialect", ["openai-chat", "openai-responses"])
def test_codex_quota_fields(dialect: str) -> None:
    relative = orjson.dumps({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                       "resets_in_seconds": 2}})
    error = dialects.get(dialect).parse_error(429, relative)
    assert (error.retry_after, error.code) == (2.0, "usage_limit_reached")
    absolute = orjson.dumps({"error": {"type": "usage_limit_reached", "message": "limit",
                                       "resets_at": time.time() + 120}})
    assert dialects.get(dialect).parse_error(429, absolute).retry_after == pytest.approx(120, abs=2)
    failed = {"type": "response.failed", "response": {"id": "r", "status": "failed", "error": {
        "code": "usage_limit_reached", "message": "limit", "resets_in_seconds": 2}}}
    streamed = _responses_stream_error(failed)
    assert (streamed.status, streamed.retry_after) == (429, 2.0)


@pytest.mark.parametrize(("header", "seconds"), [("2", 2.0), ("2.5", 2.5), ("0", 0.0), ("soon", None), ("", None)])
def test_retry_after_header(header: str, seconds: float | None) -> None:
    assert durations.retry_after_header(header) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_header_as_a_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert durations.retry_after_header(when) == pytest.approx(30, abs=2)


@pytest.mark.parametrize("text", ["try again later", "retry in a moment", "in 2s", ""])
def test_no_hint_means_none(text: str) -> None:
    assert durations.in_message(text) is None
    assert dialects.get("openai-chat").parse_error(429, _chat_body(text) if text else b"").retry_after is None
