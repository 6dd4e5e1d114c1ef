"""Fake Cloud Code Assist (``cloudcode-pa.googleapis.com/v1internal``), as
Gemini CLI and Antigravity use it: ``:generateContent``,
``:streamGenerateContent?alt=sse``, ``:countTokens``, ``:loadCodeAssist``
and ``:onboardUser`` (a long-running operation).

Requests are envelopes ``{model, project, request}``: the envelope keys are
checked, the project must belong to the caller, and ``request`` is validated
as a Gemini request with the google-genai types (the Gemini fake's checks).
Replies are Gemini responses wrapped in ``{"response": ..., "traceId": ...}``.
Never imports crossroads.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .common import (
    BodyInvalid,
    FakeError,
    FakeServer,
    body_size,
    json_body,
    json_response,
    plan_reply,
    stream_frames,
)
from .gemini import STATUSES, conversation_view, final_response, stream_chunks, validate_request
from .gemini import _parts as gemini_parts
from .oauth import FakeIdentity

ENVELOPE_KEYS = frozenset({"model", "project", "request", "user_prompt_id", "requestId", "requestType",
                           "userAgent"})
MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview", "claude-opus-4-5-thinking")


class FakeCloudCode(FakeServer):
    kind = "cloudcode"

    def __init__(self, identity: FakeIdentity, *, project: str = "proj-123", onboarded: bool = True,
                 onboard_polls: int = 1, user_agent_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.identity = identity
        self.project = project
        self.onboarded = onboarded
        self.onboard_polls = onboard_polls  # onboardUser calls answered "not done" first
        self.user_agent_prefix = user_agent_prefix

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{target}", self._dispatch)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        version, _, method = request.match_info["target"].partition(":")
        if version != "v1internal":
            return self.error_response(FakeError(404, f"unknown path {request.path}"))
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        if method == "loadCodeAssist":
            return self._load(request)
        if method == "onboardUser":
            return self._onboard(request)
        if method in ("generateContent", "streamGenerateContent", "countTokens"):
            return await self._generate(request, method)
        return self.error_response(FakeError(404, f"Method not found: {method}"))

    def _check_access(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        if not token or not self.identity.use_access(token):
            return self.error_response(FakeError(401, "Request had invalid authentication credentials.",
                                                 "UNAUTHENTICATED"))
        if not request.headers.get("User-Agent", "").startswith(self.user_agent_prefix):
            return self.error_response(FakeError(403, "unexpected client", "PERMISSION_DENIED"))
        return None

    def _load(self, request: web.Request) -> web.Response:
        body = json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            return self.error_response(FakeError(400, "metadata is required"))
        if self.onboarded:
            return json_response({"currentTier": {"id": "free-tier"}, "cloudaicompanionProject": self.project,
                                  "allowedTiers": [{"id": "free-tier", "isDefault": True}]})
        return json_response({"allowedTiers": [{"id": "free-tier", "isDefault": True},
                                               {"id": "standard-tier", "userDefinedCloudaicompanionProject": True}]})

    def _onboard(self, request: web.Request) -> web.Response:
        body = json_body(request)
        if not isinstance(body, dict) or body.get("tierId") not in ("free-tier", "standard-tier"):
            return self.error_response(FakeError(400, "tierId is required"))
        if self.onboard_polls > 0:
            self.onboard_polls -= 1
            return json_response({"name": "operations/onboard-1", "done": False})
        self.onboarded = True
        return json_response({"name": "operations/onboard-1", "done": True,
                              "response": {"cloudaicompanionProject": {"id": self.project, "name": self.project}}})

    async def _generate(self, request: web.Request, method: str) -> web.StreamResponse:
        body = json_body(request)
        try:
            inner = self._validate_envelope(body)
            if method == "countTokens":
                validate_request({k: v for k, v in inner.items() if k != "model"})
            else:
                validate_request(inner)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message))
        if method == "countTokens":
            return json_response({"totalTokens": max(1, body_size(request) // 4)})
        scenario, scripted_error = await self.scripted()
        if scripted_error is not None:
            return scripted_error
        reply = plan_reply(conversation_view(inner, body_size(request)), scenario, self.kind)
        response_id = self.ids.next("")
        trace = self.ids.next("trace-")
        model = str(body["model"])
        if method == "generateContent":
            return json_response({"response": final_response(model, response_id, reply, gemini_parts(reply)),
                                  "traceId": trace})
        if request.query.get("alt") != "sse":
            return self.error_response(FakeError(400, "streamGenerateContent requires alt=sse here"))
        frames = (b"data: " + orjson.dumps({"response": chunk, "traceId": trace}) + b"\r\n\r\n"
                  for chunk in stream_chunks(model, response_id, reply))
        return await stream_frames(request, frames, scenario)

    def _validate_envelope(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BodyInvalid("Invalid JSON payload received. Expected an object.")
        unknown = sorted(set(body) - ENVELOPE_KEYS)
        if unknown:
            raise BodyInvalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
        if body.get("project") != self.project:
            raise BodyInvalid(f"project {body.get('project')!r} is not this account's Code Assist project")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise BodyInvalid("model is required")
        inner = body.get("request")
        if not isinstance(inner, dict):
            raise BodyInvalid("request is required")
        return inner

    def error_response(self, error: FakeError) -> web.Response:
        status = error.type or STATUSES.get(error.status, "UNKNOWN")
        return json_response({"error": {"code": error.status, "message": error.message, "status": status}},
                             status=error.status)
