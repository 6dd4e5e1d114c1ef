"""Fake subscription upstreams of Kimi, xAI, iFlow and Vertex AI, each the
body checks of the matching API fake (official SDK types) plus what the real
upstream demands of subscription credentials:

- :class:`FakeKimi`: OpenAI chat completions at ``/coding/v1`` and Anthropic
  Messages at ``/coding/v1/messages``; a live bearer token from the identity
  server and the ``X-Msh-Device-Id`` the login registered;
- :class:`FakeXai`: Responses at ``/v1/responses`` with a live bearer token;
- :class:`FakeIflow`: chat completions at ``/v1`` with the account's API key,
  a ``session-id`` and a fresh HMAC-SHA256 ``x-iflow-signature`` over
  ``user-agent:session-id:timestamp``; plus the platform's cookie -> API key
  endpoint ``GET /api/openapi/apikey``;
- :class:`FakeVertex`: Gemini on the publisher-model endpoints
  ``/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{action}``
  (bearer minted from a service account, project checked) and
  ``/v1/publishers/google/models/{m}:{action}`` (``x-goog-api-key``).

Never imports crossroads.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from aiohttp import web

from .anthropic import FakeAnthropic
from .common import FakeError, json_response
from .gemini import FakeGemini
from .oauth import FakeIdentity
from .openai_chat import FakeOpenAIChat
from .openai_responses import FakeOpenAIResponses

SIGNATURE_WINDOW_MS = 5 * 60 * 1000


def live_bearer(request: web.Request, identity: FakeIdentity) -> bool:
    authorization = request.headers.get("Authorization", "")
    token = authorization[7:] if authorization.startswith("Bearer ") else ""
    return bool(token) and identity.use_access(token)


class FakeKimi(FakeOpenAIChat):
    kind = "kimi"

    def __init__(self, identity: FakeIdentity, device_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_path="/coding/v1", **kwargs)
        self.identity = identity
        self.device_id = device_id  # None: any non-empty device id
        self.messages = _KimiMessages(self)

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_post(f"{self.base_path}/messages", self.messages.handle)

    def _check_access(self, request: web.Request) -> web.Response | None:
        if not live_bearer(request, self.identity):
            return self.error_response(FakeError(401, "The API key or token is invalid or expired.",
                                                 "invalid_authentication_error"))
        device = request.headers.get("X-Msh-Device-Id", "")
        if not device or (self.device_id is not None and device != self.device_id):
            return self.error_response(FakeError(403, "unknown device", "permission_denied_error"))
        return None


class _KimiMessages(FakeAnthropic):
    """Kimi's Anthropic-compatible endpoint: the Anthropic fake's body checks,
    run inside :class:`FakeKimi`'s server (same identity and device checks)."""

    kind = "kimi-anthropic"

    def __init__(self, owner: FakeKimi) -> None:
        super().__init__()
        self.owner = owner

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await self._messages(request)

    def next_scenario(self) -> Any:
        return self.owner.next_scenario()

    def _check_access(self, request: web.Request) -> web.Response | None:
        rejected = self.owner._check_access(request)
        if rejected is not None:
            return self.error_response(FakeError(401, "invalid token", "authentication_error"))
        if not request.headers.get("anthropic-version", "").startswith("20"):
            return self.error_response(FakeError(400, "anthropic-version: header is required",
                                                 "invalid_request_error"))
        return None


class FakeXai(FakeOpenAIResponses):
    kind = "xai"

    def __init__(self, identity: FakeIdentity, **kwargs: Any) -> None:
        super().__init__(base_path="/v1", **kwargs)
        self.identity = identity

    def _check_access(self, request: web.Request) -> web.Response | None:
        if not live_bearer(request, self.identity):
            return self.error_response(FakeError(401, "Incorrect API key or expired token.",
                                                 "invalid_request_error"))
        return None


class FakeIflow(FakeOpenAIChat):
    kind = "iflow"

    def __init__(self, api_key: str = "sk-iflow-fake", cookie: str = "BXAuth=cookie-1",
                 cookie_api_key: str = "sk-iflow-cookie", account_name: str = "cookie@example.com",
                 **kwargs: Any) -> None:
        super().__init__(base_path="/v1", api_keys=[api_key, cookie_api_key], **kwargs)
        self.cookie = cookie
        self.cookie_api_key = cookie_api_key  # what the cookie login is given
        self.account_name = account_name

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/api/openapi/apikey", self._apikey)

    async def _apikey(self, request: web.Request) -> web.StreamResponse:
        if self.cookie not in request.headers.get("Cookie", ""):
            return json_response({"success": False, "code": "401", "message": "not logged in"}, status=401)
        return json_response({"success": True, "data": {"name": self.account_name, "apiKey": self.cookie_api_key,
                                                        "expireTime": "2099-01-01 00:00"}})

    def _check_access(self, request: web.Request) -> web.Response | None:
        rejected = super()._check_access(request)
        if rejected is not None:
            return rejected
        headers = request.headers
        api_key = headers["Authorization"][7:].strip()
        session, stamp = headers.get("session-id", ""), headers.get("x-iflow-timestamp", "")
        user_agent = headers.get("User-Agent", "")
        if not session or not stamp.isdigit():
            return self.error_response(FakeError(400, "session-id and x-iflow-timestamp are required", None))
        if abs(int(stamp) - time.time() * 1000) > SIGNATURE_WINDOW_MS:
            return self.error_response(FakeError(401, "request timestamp is stale", None))
        message = f"{user_agent}:{session}:{stamp}".encode()
        expected = hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-iflow-signature", ""), expected):
            return self.error_response(FakeError(401, "invalid x-iflow-signature", None))
        return None


class FakeVertex(FakeGemini):
    kind = "vertex"

    def __init__(self, identity: FakeIdentity | None = None, project: str = "vx-proj",
                 location: str = "us-central1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.identity = identity
        self.project = project
        self.location = location

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/projects/{project}/locations/{location}/publishers/google/models/{target}",
                            self._model_action)
        app.router.add_post("/v1/publishers/google/models/{target}", self._model_action)

    def _check_access(self, request: web.Request) -> web.Response | None:
        project = request.match_info.get("project")
        if project is None:  # the API-key endpoint
            if request.headers.get("Authorization"):
                return self.error_response(FakeError(401, "this endpoint takes an API key"))
            return super()._check_access(request)
        if self.identity is None or not live_bearer(request, self.identity):
            return self.error_response(FakeError(401, "Request had invalid authentication credentials.",
                                                 "UNAUTHENTICATED"))
        if project != self.project or request.match_info.get("location") != self.location:
            return self.error_response(FakeError(403, f"Permission denied on projects/{project}/locations/"
                                                      f"{request.match_info.get('location')}", "PERMISSION_DENIED"))
        return None
