"""A fake of cto.new's Clerk frontend API (clerk.cto.new), as the web app
and ctonew-proxy use it:

- ``GET /v1/client`` with the browser's ``Cookie`` (``__client=...``) and
  ``Origin: https://cto.new``: the client and its sessions
  (``response.sessions[0].id``);
- ``POST /v1/client/sessions/{sid}/tokens?__clerk_api_version=2025-04-10``
  (form content type, empty body, same cookie and origin): ``{"jwt": ...}``,
  a session token that lives ``ttl`` seconds (about 60 at Clerk).

A cookie it does not know gets a 401 in Clerk's error shape; a known cookie
whose session was signed out gets a client without sessions. The tokens are
HS256 JWTs signed with ``SECRET`` so the EngineLabs fake can check them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from .common import FakeError, FakeServer, json_response

SECRET = b"fake-clerk-signing-key"
ORIGIN = "https://cto.new"
API_VERSION = "2025-04-10"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict[str, Any]) -> str:
    head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"})) + "." + _b64(orjson.dumps(claims))
    return head + "." + _b64(hmac.new(SECRET, head.encode(), hashlib.sha256).digest())


def verify(token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token, else None."""
    try:
        head, payload, signature = token.split(".")
        expected = _b64(hmac.new(SECRET, f"{head}.{payload}".encode(), hashlib.sha256).digest())
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not hmac.compare_digest(signature, expected) or claims.get("exp", 0) <= time.time():
        return None
    return dict(claims)


class FakeClerk(FakeServer):
    """``api_keys`` are the known ``__client`` cookie values; each has a user."""

    kind = "clerk"

    def __init__(self, *, ttl: float = 60.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ttl = ttl
        self.signed_out: set[str] = set()
        self.token_calls = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/client", self._client)
        app.router.add_post("/v1/client/sessions/{sid}/tokens", self._token)

    def error_response(self, error: FakeError) -> web.Response:
        return json_response({"errors": [{"code": "authentication_invalid", "message": error.message}]},
                             status=error.status)

    def _cookie(self, request: web.Request) -> str | None:
        if request.headers.get("Origin") != ORIGIN:
            return None
        value = request.cookies.get("__client")
        return value if value in self.api_keys else None

    @staticmethod
    def user_of(cookie: str) -> tuple[str, str]:
        tag = hashlib.sha256(cookie.encode()).hexdigest()[:8]
        return f"user_{tag}", f"{cookie}@example.com"

    async def _client(self, request: web.Request) -> web.Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self.error_response(FakeError(401, "Invalid authentication"))
        if cookie in self.signed_out:
            return json_response({"response": {"object": "client", "id": "client_1", "sessions": []},
                                  "client": None})
        user_id, email = self.user_of(cookie)
        session = {"object": "session", "id": f"sess_{user_id}", "status": "active",
                   "user": {"id": user_id, "email_addresses": [{"email_address": email}]}}
        return json_response({"response": {"object": "client", "id": "client_1", "sessions": [session]},
                              "client": None})

    async def _token(self, request: web.Request) -> web.Response:
        cookie = self._cookie(request)
        if cookie is None:
            return self.error_response(FakeError(401, "Invalid authentication"))
        if request.query.get("__clerk_api_version") != API_VERSION:
            return self.error_response(FakeError(400, "__clerk_api_version is required"))
        if request.content_type != "application/x-www-form-urlencoded":
            return self.error_response(FakeError(400, "form content type expected"))
        user_id, _ = self.user_of(cookie)
        if request.match_info["sid"] != f"sess_{user_id}" or cookie in self.signed_out:
            return self.error_response(FakeError(404, "No session was found"))
        self.token_calls += 1
        now = time.time()
        return json_response({"object": "token", "jwt": sign({"sub": user_id, "sid": f"sess_{user_id}",
                                                                "iat": int(now), "exp": now + self.ttl})})
