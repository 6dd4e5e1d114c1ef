"""Fake Anthropic Messages API for subscription (OAuth) tokens: the body
checks of :class:`FakeAnthropic` plus what the real API demands of Claude
Pro/Max tokens — a live bearer token from the identity server, the OAuth and
Claude Code betas, and Claude Code's identity as the first system block.
Never imports crossroads."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .anthropic import FakeAnthropic
from .common import FakeError, json_body, json_response
from .oauth import FakeIdentity

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
# the subscription's windows as the headers name them, and as the usage endpoint does
USAGE_NAMES = {"5h": "five_hour", "7d": "seven_day"}


def usage_name(claim: str) -> str:
    """``7d_opus`` -> ``seven_day_opus``."""
    head, _, family = claim.partition("_")
    return USAGE_NAMES[head] + (f"_{family}" if family else "")


class FakeClaudeOAuth(FakeAnthropic):
    kind = "claude-oauth"

    def __init__(self, identity: FakeIdentity, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.identity = identity
        # claim (5h, 7d, 7d_opus) -> (utilisation 0..1, reset epoch); tests set them (a fresh
        # subscription: both windows unused; cleared, the fake signals nothing, like an upstream that does not)
        now = time.time()
        self.windows: dict[str, tuple[float, float]] = {"5h": (0.0, now + 5 * 3600), "7d": (0.0, now + 7 * 86400)}
        self.usage_reads = 0

    def set_window(self, claim: str, utilisation: float, resets_in: float) -> None:
        self.windows[claim] = (utilisation, time.time() + resets_in)

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/api/oauth/usage", self._usage)

    def _live_windows(self) -> dict[str, tuple[float, float]]:
        now = time.time()
        return {claim: (used, reset) for claim, (used, reset) in self.windows.items() if reset > now}

    def _headers(self) -> dict[str, str]:
        """What a subscription response carries: the unified window headers
        (utilisation as a fraction, resets as epoch seconds), not the API-key
        per-minute ones."""
        headers = {k: v for k, v in super()._headers().items() if not k.startswith("anthropic-ratelimit-")}
        windows = self._live_windows()
        if not windows:
            return headers
        binding = max(windows, key=lambda claim: windows[claim][0])
        worst, reset = windows[binding]
        status = "rejected" if worst >= 1.0 else "allowed_warning" if worst >= 0.8 else "allowed"
        headers.update({"anthropic-ratelimit-unified-status": status,
                        "anthropic-ratelimit-unified-reset": str(int(reset)),
                        "anthropic-ratelimit-unified-representative-claim": binding,
                        "anthropic-ratelimit-unified-fallback-percentage": "0.5"})
        for claim, (used, reset) in windows.items():
            headers[f"anthropic-ratelimit-unified-{claim}-utilization"] = f"{min(used, 1.0):.4f}"
            headers[f"anthropic-ratelimit-unified-{claim}-reset"] = str(int(reset))
            headers[f"anthropic-ratelimit-unified-{claim}-status"] = "rejected" if used >= 1.0 else "allowed"
        return headers

    async def _usage(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/oauth/usage``: each window's utilisation in percent and its reset (RFC 3339)."""
        rejected = self._check_token(request)
        if rejected is not None:
            return rejected
        self.usage_reads += 1
        body: dict[str, Any] = {"five_hour": None, "seven_day": None}
        for claim, (used, reset) in self._live_windows().items():
            body[usage_name(claim)] = {"utilization": round(used * 100, 1), "resets_at": time.strftime(
                "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(reset))}
        return json_response(body)

    def _check_token(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        betas = {b.strip() for b in request.headers.get("anthropic-beta", "").split(",")}
        if "oauth-2025-04-20" not in betas or not token or not self.identity.use_access(token):
            return self.error_response(FakeError(401, "OAuth authentication is currently not supported.",
                                                 "authentication_error"))
        return None

    def _check_access(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key"):
            return self.error_response(FakeError(401, "invalid x-api-key", "authentication_error"))
        authorization = request.headers.get("Authorization", "")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        betas = {b.strip() for b in request.headers.get("anthropic-beta", "").split(",")}
        if "oauth-2025-04-20" not in betas:
            return self.error_response(FakeError(401, "OAuth authentication is currently not supported.",
                                                 "authentication_error"))
        if not token or not self.identity.use_access(token):
            return self.error_response(FakeError(401, "OAuth token has expired. Please obtain a new token "
                                                      "or refresh your existing token.", "authentication_error"))
        body = json_body(request)
        system = body.get("system") if isinstance(body, dict) else None
        first = system[0] if isinstance(system, list) and system else None
        claude_code = ("claude-code-20250219" in betas and isinstance(first, dict)
                       and first.get("text") == IDENTITY)
        if request.path.endswith("/messages") and not claude_code:
            return self.error_response(FakeError(
                400, "This credential is only authorized for use with Claude Code and cannot be used "
                     "for other API requests.", "invalid_request_error"))
        if not request.headers.get("anthropic-version", "").startswith("20"):
            return self.error_response(FakeError(400, "anthropic-version: header is required",
                                                 "invalid_request_error"))
        if request.path.endswith("/messages") and any(used >= 1.0 for used, _ in self._live_windows().values()):
            return self.error_response(FakeError(429, "This request would exceed your account's rate limit. "
                                                      "Please try again later.", "rate_limit_error"))
        return None
