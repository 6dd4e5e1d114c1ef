"""Fake ChatGPT Codex backend: POST /backend-api/codex/responses.

The Responses body checks of :class:`FakeOpenAIResponses` (SDK types) plus
what the ChatGPT backend demands: a live bearer token from the identity
server, the ``chatgpt-account-id`` of that account, an ``originator``,
``stream: true``, ``store: false``, an ``instructions`` string, and none of
the sampling knobs it does not support. Never imports crossroads.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .common import BodyInvalid, FakeError, json_response
from .oauth import FakeIdentity
from .openai_responses import FakeOpenAIResponses

UNSUPPORTED = ("max_output_tokens", "temperature", "top_p", "service_tier")


class FakeCodexBackend(FakeOpenAIResponses):
    kind = "codex"

    def __init__(self, identity: FakeIdentity, account_id: str = "acct-42", **kwargs: Any) -> None:
        super().__init__(base_path="/backend-api/codex", **kwargs)
        self.identity = identity
        self.account_id = account_id
        # primary (5-hour) and secondary (weekly): (used percent, window minutes, reset epoch); set by tests
        now = time.time()
        self.windows: dict[str, tuple[float, int, float]] = {"primary": (0.0, 300, now + 5 * 3600),
                                                             "secondary": (0.0, 10080, now + 7 * 86400)}
        self.credits: tuple[bool, float] | None = None  # (has credits, balance)
        self.usage_reads = 0

    def set_window(self, name: str, used_percent: float, minutes: int, resets_in: float) -> None:
        self.windows[name] = (used_percent, minutes, time.time() + resets_in)

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/backend-api/wham/usage", self._usage)

    def _live(self) -> dict[str, tuple[float, int, float]]:
        now = time.time()
        return {name: window for name, window in self.windows.items() if window[2] > now}

    def _headers(self) -> dict[str, str]:
        headers = dict(super()._headers())
        now = time.time()
        for name, (used, minutes, reset) in self._live().items():
            headers[f"x-codex-{name}-used-percent"] = f"{used:g}"
            headers[f"x-codex-{name}-window-minutes"] = str(minutes)
            headers[f"x-codex-{name}-reset-at"] = str(int(reset))
            headers[f"x-codex-{name}-reset-after-seconds"] = str(int(reset - now))
        if self.credits is not None:
            headers["x-codex-credits-has-credits"] = "true" if self.credits[0] else "false"
            headers["x-codex-credits-unlimited"] = "false"
            headers["x-codex-credits-balance"] = f"{self.credits[1]:g}"
        return headers

    async def _usage(self, request: web.Request) -> web.StreamResponse:
        """``GET /backend-api/wham/usage``, shaped as the Codex CLI reads it."""
        rejected = self._check_token(request)
        if rejected is not None:
            return rejected
        self.usage_reads += 1
        now = time.time()
        live = self._live()
        reached = any(used >= 100 for used, _, _ in live.values())

        def snapshot(name: str) -> dict[str, Any] | None:
            if name not in live:
                return None
            used, minutes, reset = live[name]
            return {"used_percent": used, "limit_window_seconds": minutes * 60,
                    "reset_after_seconds": int(reset - now), "reset_at": int(reset)}

        credits = None if self.credits is None else {
            "has_credits": self.credits[0], "unlimited": False, "balance": f"{self.credits[1]:g}"}
        return json_response({"plan_type": "plus", "rate_limit": {
            "allowed": not reached, "limit_reached": reached,
            "primary_window": snapshot("primary"), "secondary_window": snapshot("secondary")},
            "credits": credits})

    def _check_token(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        if not token or not self.identity.use_access(token):
            return self.error_response(FakeError(401, "Your authentication token has expired. Please try "
                                                      "signing in again.", "invalid_request_error"))
        if request.headers.get("chatgpt-account-id") != self.account_id:
            return self.error_response(FakeError(403, "chatgpt-account-id does not match the token",
                                                 "invalid_request_error"))
        return None

    def _usage_limit(self) -> web.Response | None:
        """An exhausted window: 429 ``usage_limit_reached`` naming its reset."""
        now = time.time()
        spent = [reset for used, _, reset in self._live().values() if used >= 100]
        if not spent:
            return None
        reset = max(spent)
        return json_response({"error": {
            "type": "usage_limit_reached", "message": "The usage limit has been reached", "plan_type": "plus",
            "resets_at": int(reset), "resets_in_seconds": int(reset - now)}}, status=429, headers=self._headers())

    def _check_access(self, request: web.Request) -> web.Response | None:
        refused = self._check_token(request)
        if refused is not None:
            return refused
        if not request.headers.get("originator"):
            return self.error_response(FakeError(400, "originator header required", "invalid_request_error"))
        return self._usage_limit()

    def _validate(self, body: Any) -> None:
        if isinstance(body, dict):
            if body.get("stream") is not True:
                raise BodyInvalid("Stream must be set to true", "stream")
            if body.get("store") is not False:
                raise BodyInvalid("Store must be set to false", "store")
            if not isinstance(body.get("instructions"), str):
                raise BodyInvalid("Instructions are required", "instructions")
            for key in UNSUPPORTED:
                if key in body:
                    raise BodyInvalid(f"Unsupported parameter: {key}", key)
        super()._validate(body)
