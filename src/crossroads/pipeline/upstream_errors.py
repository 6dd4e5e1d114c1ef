"""Upstream failures, read and judged: the error an upstream answered (its
text relayed only when it is an error document the dialects know, always
redacted), a broken stream, whether a failure cools its account, and what
the client is told when it is not the client's fault."""

from __future__ import annotations

import aiohttp
import orjson

from crossroads import ir
from crossroads.dialects.base import Dialect
from crossroads.dialects.kit import durations
from crossroads.providers.base import REQUEST_RATE_LIMIT, Account
from crossroads.redaction import Redaction
from crossroads.resume import broken
from crossroads.routing.health import Health
from crossroads.transport import Answer


async def upstream_error(response: Answer, upstream: Dialect, account: Account, health: Health,
                         redaction: Redaction, signalled: bool = False) -> ir.Error:
    """The error a response of status 400 or more carries (the response is
    released); ``signalled``: its headers already reported rate-limit windows."""
    try:
        data = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        data = b""
    finally:
        response.release()
    windows = account.provider.error_windows(response.status, data)
    if windows:  # a quota error that names its reset: skipped until then, on every replica
        health.observe(account.id, windows)
    readable = is_error_document(data)
    error = upstream.parse_error(response.status, data if readable else b"")
    if not readable:  # raw text (an HTML page, a proxy's echo of our headers) is never relayed
        error.message = f"the upstream answered HTTP {response.status}"
    error.message = redaction.redactor(error.message)
    retry_after = response.headers.get("retry-after")
    if retry_after and error.retry_after is None:
        error.retry_after = durations.retry_after_header(retry_after)
    if response.status == 429 and account.provider.signals_every_answer and not signalled and not windows \
            and error.retry_after is None and not error.code:
        error.code = REQUEST_RATE_LIMIT  # no window ran out: a burst, or this request's size
    return error


def is_error_document(data: bytes) -> bool:
    """A JSON error in one of the shapes the dialects know (``{"error": ...}``,
    Gemini's list of them, or a bare ``message``/``detail``)."""
    try:
        payload = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return False
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return False
    return isinstance(payload.get("error"), dict | str) or isinstance(payload.get("message"), str) \
        or isinstance(payload.get("detail"), str)


def stream_failure(exc: BaseException, account: Account) -> ir.Error:
    return broken(exc, account.label)


def cooling_off(account: Account, default: bool) -> bool:
    """``disable-cooling``: the entry's own value, else the config's."""
    return default if account.disable_cooling is None else account.disable_cooling


def request_fault(attempts: list[str]) -> ir.Error:
    """Two accounts failed on the same request with a bare 500: the request
    is the likely cause, so no account is cooled and no more are tried."""
    return ir.Error(502, "server_error", "two upstream accounts failed on this request with HTTP 500, so the "
                                         "request itself is the likely cause; it was not tried further "
                                         f"(tried {'; '.join(attempts)})", code="upstream_rejected_request")


def client_facing(error: ir.Error, model: str, account: str | None) -> ir.Error:
    """An upstream credential problem is not the client's: never answer
    401/403 (the client's own key was fine), but say what happened: a 502
    whose code names refused upstream credentials, not an overload."""
    if error.status in (401, 402, 403):
        return ir.Error(502, "server_error",
                        f"the upstream refused the credentials of account {account or '?'} for {model} "
                        f"({error.status}: {error.message})", code="upstream_credentials_refused")
    return error
