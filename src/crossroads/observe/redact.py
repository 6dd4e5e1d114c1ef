"""What the request log and request files add to the runtime's redaction
(:mod:`crossroads.redaction`, which masks every secret it knows in text):
secret-bearing headers masked by name, and keys in query strings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from crossroads.redaction import mask

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key",
                            "cookie", "set-cookie", "x-management-key"})
_QUERY_KEY = re.compile(r"([?&](?:key|api_key|token|auth_token)=)[^&#\s]+")

Text = Callable[[str], str]


def text(redact: Text, value: str) -> str:
    return _QUERY_KEY.sub(r"\1***", redact(value)) if value else value


def data(redact: Text, value: bytes) -> str:
    return text(redact, value.decode("utf-8", "replace"))


def headers(redact: Text, values: Mapping[str, str]) -> dict[str, str]:
    return {name: (_mask_header(value) if name.lower() in SECRET_HEADERS else redact(value))
            for name, value in values.items()}


def _mask_header(value: str) -> str:
    scheme, _, token = value.partition(" ")
    if token and scheme.lower() in ("bearer", "basic"):
        return f"{scheme} {mask(token)}"
    return mask(value)
