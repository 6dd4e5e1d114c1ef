"""Fake Anthropic Messages API for subscription (OAuth) tokens: the body
checks of :class:`FakeAnthropic` plus what the real API demands of Claude
Pro/Max tokens — a live bearer token from the identity server, the OAuth and
Claude Code betas, and Claude Code's identity as the first system block.
Never imports crossroads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .anthropic import FakeAnthropic
from .common import FakeError, json_body
from .oauth import FakeIdentity

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


class FakeClaudeOAuth(FakeAnthropic):
    kind = "claude-oauth"

    def __init__(self, identity: FakeIdentity, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.identity = identity

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
        return None
