"""Masking: secret-bearing headers by name, and every secret the config
holds (client keys, upstream keys, management and metrics secrets) wherever
it shows up in text, since an upstream's error may echo the key it was sent."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from crossroads.providers.base import mask

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key",
                            "cookie", "set-cookie", "x-management-key", "chatgpt-account-id"})
MIN_SECRET = 6  # shorter values are too common in text to replace blindly
_QUERY_KEY = re.compile(r"([?&](?:key|api_key|token)=)[^&#\s]+")


class Redactor:
    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, unique))) if unique else None

    def text(self, value: str) -> str:
        if self._pattern is not None and value:
            value = self._pattern.sub(lambda m: mask(m.group(0)), value)
        return _QUERY_KEY.sub(r"\1***", value)

    def data(self, value: bytes) -> str:
        return self.text(value.decode("utf-8", "replace"))

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {name: (_mask_header(value) if name.lower() in SECRET_HEADERS else self.text(value))
                for name, value in headers.items()}


def _mask_header(value: str) -> str:
    scheme, _, token = value.partition(" ")
    if token and scheme.lower() in ("bearer", "basic"):
        return f"{scheme} {mask(token)}"
    return mask(value)
