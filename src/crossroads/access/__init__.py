"""Client-key access control."""

from __future__ import annotations

from crossroads.http import Request


class KeyCheck:
    """Accepts a client key from ``Authorization: Bearer``, ``x-api-key``,
    ``x-goog-api-key`` or ``?key=``. No configured keys means open access."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = frozenset(keys)

    @property
    def open(self) -> bool:
        return not self._keys

    def presented(self, request: Request) -> str | None:
        headers = request.headers
        auth = headers.get("authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        for name in ("x-api-key", "x-goog-api-key"):
            value = headers.get(name)
            if value:
                return value.strip()
        if request.query_string:  # the Gemini API's ?key= (query strings end up in proxy logs: prefer headers)
            return request.query.get("key")
        return None

    def accepts(self, key: str) -> bool:
        return key in self._keys

    def allows(self, request: Request) -> bool:
        if not self._keys:
            return True
        key = self.presented(request)
        return key is not None and key in self._keys
