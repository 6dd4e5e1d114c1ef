"""Request ids: the client's ``x-request-id`` when it sends a usable one,
else a fresh one; stamped on error bodies in the shape the client reads."""

from __future__ import annotations

import random
import re
from typing import Any

HEADER = "x-request-id"
MAX_LENGTH = 128
_UNSAFE = re.compile(r"[^A-Za-z0-9._:\-]")
# google.rpc.RequestInfo: where Google APIs put the request id in an error's details
_REQUEST_INFO = "type.googleapis.com/google.rpc.RequestInfo"


def new() -> str:
    # unique, not secret: nothing is guarded by knowing an id, so no system call per request
    return f"{random.getrandbits(128):032x}"


def from_client(value: str | None) -> str:
    """A client id kept to a safe charset and length (it goes into logs, file
    names and upstream headers); a fresh id when nothing usable is left."""
    if value:
        cleaned = _UNSAFE.sub("", value)[:MAX_LENGTH]
        if cleaned:
            return cleaned
    return new()


def stamp(payload: Any, request_id: str) -> Any:
    """The error body with the request id: Google's RPC status shape gets a
    ``RequestInfo`` detail, the others (OpenAI, Anthropic) a top-level
    ``request_id`` as Anthropic's own errors carry."""
    if not isinstance(payload, dict):
        return payload
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("status"), str) and isinstance(error.get("code"), int):
        details = error.get("details")
        info = {"@type": _REQUEST_INFO, "requestId": request_id}
        error["details"] = [*details, info] if isinstance(details, list) else [info]
        return payload
    payload["request_id"] = request_id
    return payload
