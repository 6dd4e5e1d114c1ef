"""Fake ChatGPT Codex backend: POST /backend-api/codex/responses.

The Responses body checks of :class:`FakeOpenAIResponses` (SDK types) plus
what the ChatGPT backend demands: a live bearer token from the identity
server, the ``chatgpt-account-id`` of that account, an ``originator``,
``stream: true``, ``store: false``, an ``instructions`` string, and none of
the sampling knobs it does not support. Never imports crossroads.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .common import BodyInvalid, FakeError
from .oauth import FakeIdentity
from .openai_responses import FakeOpenAIResponses

UNSUPPORTED = ("max_output_tokens", "temperature", "top_p", "service_tier")


class FakeCodexBackend(FakeOpenAIResponses):
    kind = "codex"

    def __init__(self, identity: FakeIdentity, account_id: str = "acct-42", **kwargs: Any) -> None:
        super().__init__(base_path="/backend-api/codex", **kwargs)
        self.identity = identity
        self.account_id = account_id

    def _check_access(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        if not token or not self.identity.use_access(token):
            return self.error_response(FakeError(401, "Your authentication token has expired. Please try "
                                                      "signing in again.", "invalid_request_error"))
        if request.headers.get("chatgpt-account-id") != self.account_id:
            return self.error_response(FakeError(403, "chatgpt-account-id does not match the token",
                                                 "invalid_request_error"))
        if not request.headers.get("originator"):
            return self.error_response(FakeError(400, "originator header required", "invalid_request_error"))
        return None

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
