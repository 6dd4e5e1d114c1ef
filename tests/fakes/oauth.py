"""Fake OAuth identity server: authorize redirect (PKCE S256), token endpoint
(form or JSON, as each provider uses), device authorization with
``authorization_pending`` / ``slow_down``, the Codex device variant, refresh
with rotation, ``invalid_grant``, the JWT-bearer grant, userinfo and OIDC
discovery.

Rotation follows the "grace until use" rule: after a refresh, the previous
refresh token stays valid until a token from the new grant is used (at the
token endpoint or at an upstream through :meth:`FakeIdentity.use_access`);
then it is revoked. A refresh token reused after that gets ``invalid_grant``.

Never imports crossroads.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web

from .common import FakeServer, json_body, json_response

Encoding = Literal["form", "json"]


@dataclass
class Grant:
    access_token: str
    refresh_token: str
    expires_at: float
    parent: str | None = None  # the refresh token this grant came from
    used: bool = False


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    state: str


@dataclass
class DeviceAuth:
    device_code: str
    user_code: str
    challenge: str | None = None
    approved: bool = False
    denied: bool = False
    last_poll: float = 0.0
    polls: int = 0


@dataclass
class RefreshFailure:
    status: int
    error: str
    description: str = ""


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT (the router reads claims it does not verify)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{part({'sig': 'fake'})}"


def _signature_valid(public_key: Any, parts: list[str]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeIdentity(FakeServer):
    kind = "oauth"

    def __init__(self, *, client_id: str = "test-client", encoding: Encoding = "form",
                 expires_in: int = 3600, email: str = "user@example.com",
                 id_token_claims: dict[str, Any] | None = None, client_secret: str | None = None,
                 interval: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_id = client_id
        self.client_secret = client_secret
        self.encoding = encoding
        self.expires_in = expires_in
        self.email = email
        self.id_token_claims = id_token_claims
        self.interval = interval
        self.grants: dict[str, Grant] = {}  # refresh token -> grant
        self.by_access: dict[str, Grant] = {}
        self.revoked: set[str] = set()
        self.codes: dict[str, PendingCode] = {}
        self.devices: dict[str, DeviceAuth] = {}
        self.refresh_calls = 0
        self.jwt_grants = 0  # service-account (jwt-bearer) tokens minted
        self.service_keys: dict[str, Any] = {}  # client_email -> RSA public key: assertions must verify
        self.refresh_delay = 0.0
        self.refresh_failures: list[RefreshFailure] = []
        self.extra_token_fields: dict[str, Any] = {}
        self._counter = itertools.count(1)
        self._glock = threading.Lock()

    # -- scripting / inspection (thread-safe, called from tests) -----------------------

    def issue(self, expires_in: int | None = None) -> Grant:
        """A grant as if a login had happened (for records written by tests)."""
        with self._glock:
            return self._issue(None, expires_in)

    def fail_refresh(self, status: int = 400, error: str = "invalid_grant", description: str = "") -> None:
        with self._glock:
            self.refresh_failures.append(RefreshFailure(status, error, description))

    def approve(self, user_code: str, *, deny: bool = False) -> None:
        with self._glock:
            for device in self.devices.values():
                if device.user_code == user_code:
                    device.approved, device.denied = not deny, deny
                    return
        raise KeyError(user_code)

    def use_access(self, token: str) -> bool:
        """Called by fake upstreams: is ``token`` a live access token? Using
        it revokes the refresh token its grant replaced."""
        with self._glock:
            grant = self.by_access.get(token)
            if grant is None or grant.refresh_token in self.revoked or time.time() >= grant.expires_at:
                return False
            self._mark_used(grant)
            return True

    def refresh_token_valid(self, token: str) -> bool:
        with self._glock:
            return token in self.grants and token not in self.revoked

    # -- routes ------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth/authorize", self._authorize)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/oauth/device", self._device)
        app.router.add_post("/deviceauth/usercode", self._codex_usercode)
        app.router.add_post("/deviceauth/token", self._codex_device_token)
        app.router.add_get("/userinfo", self._userinfo)
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/iflow/oauth", self._iflow_authorize)
        app.router.add_get("/api/oauth/getUserInfo", self._iflow_userinfo)

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        problems = []
        if q.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if q.get("response_type") != "code":
            problems.append("response_type must be code")
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            problems.append("PKCE S256 code_challenge required")
        if not q.get("redirect_uri") or not q.get("state"):
            problems.append("redirect_uri and state required")
        if problems:
            return json_response({"error": "invalid_request", "error_description": "; ".join(problems)}, status=400)
        code = f"code-{secrets.token_hex(8)}"
        with self._glock:
            self.codes[code] = PendingCode(q["client_id"], q["redirect_uri"], q["code_challenge"],
                                           q.get("scope", ""), q["state"])
        target = q["redirect_uri"] + ("&" if "?" in q["redirect_uri"] else "?") + urllib.parse.urlencode(
            {"code": code, "state": q["state"]})
        raise web.HTTPFound(target)

    async def _iflow_authorize(self, request: web.Request) -> web.StreamResponse:
        """iFlow's authorize page: ``redirect`` (not redirect_uri), no PKCE."""
        q = request.query
        if q.get("client_id") != self.client_id or not q.get("redirect") or not q.get("state"):
            return json_response({"error": "invalid_request", "error_description": "client_id, redirect, state"},
                                 status=400)
        code = f"code-{secrets.token_hex(8)}"
        with self._glock:
            self.codes[code] = PendingCode(q["client_id"], q["redirect"], "", "", q["state"])
        raise web.HTTPFound(q["redirect"] + "?" + urllib.parse.urlencode({"code": code, "state": q["state"]}))

    async def _iflow_userinfo(self, request: web.Request) -> web.StreamResponse:
        if not self.use_access(request.query.get("accessToken", "")):
            return json_response({"success": False, "message": "invalid token"}, status=401)
        return json_response({"success": True, "data": {"apiKey": "sk-iflow-fake", "email": self.email}})

    async def _params(self, request: web.Request) -> dict[str, str] | web.Response:
        content_type = request.headers.get("Content-Type", "")
        wanted = "application/json" if self.encoding == "json" else "application/x-www-form-urlencoded"
        if not content_type.startswith(wanted):
            return self._error(400, "invalid_request", f"expected {wanted}, got {content_type or 'nothing'}")
        if self.encoding == "json":
            body = json_body(request)
            if not isinstance(body, dict):
                return self._error(400, "invalid_request", "body must be a JSON object")
            return {str(k): str(v) for k, v in body.items()}
        return dict(urllib.parse.parse_qsl((await request.read()).decode()))

    async def _token(self, request: web.Request) -> web.StreamResponse:
        params = await self._params(request)
        if isinstance(params, web.Response):
            return params
        client = params.get("client_id")
        basic = request.headers.get("Authorization", "")
        if not client and basic.startswith("Basic "):
            client = base64.b64decode(basic[6:]).decode().partition(":")[0]
        grant_type = params.get("grant_type")
        if grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt_bearer(params)
        if client != self.client_id:
            return self._error(401, "invalid_client", "unknown client_id")
        if self.client_secret is not None and params.get("client_secret") != self.client_secret \
                and not basic.startswith("Basic "):
            return self._error(401, "invalid_client", "client_secret required")
        if grant_type == "authorization_code":
            return self._code_grant(params)
        if grant_type == "refresh_token":
            return await self._refresh_grant(params)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_grant(params)
        return self._error(400, "unsupported_grant_type", str(grant_type))

    def _code_grant(self, params: dict[str, str]) -> web.Response:
        with self._glock:
            pending = self.codes.pop(params.get("code", ""), None)
        if pending is None:
            return self._error(400, "invalid_grant", "unknown or already used authorization code")
        if params.get("redirect_uri") != pending.redirect_uri:
            return self._error(400, "invalid_grant", "redirect_uri does not match the authorize request")
        if pending.challenge and s256(params.get("code_verifier", "")) != pending.challenge:
            return self._error(400, "invalid_grant", "code_verifier does not match code_challenge")
        with self._glock:
            grant = self._issue(None, None)
        return self._grant_reply(grant)

    async def _refresh_grant(self, params: dict[str, str]) -> web.Response:
        token = params.get("refresh_token", "")
        with self._glock:
            self.refresh_calls += 1
            failure = self.refresh_failures.pop(0) if self.refresh_failures else None
        if self.refresh_delay:
            import asyncio

            await asyncio.sleep(self.refresh_delay)
        if failure is not None:
            return self._error(failure.status, failure.error, failure.description or failure.error)
        with self._glock:
            old = self.grants.get(token)
            if old is None or token in self.revoked:
                return self._error(400, "invalid_grant", "refresh token is invalid or was revoked")
            self._mark_used(old)
            # an unused sibling issued from the same parent dies: only one branch lives
            for sibling in list(self.grants.values()):
                if sibling.parent == token and not sibling.used:
                    self.revoked.add(sibling.refresh_token)
            grant = self._issue(token, None)
        return self._grant_reply(grant)

    def _device_grant(self, params: dict[str, str]) -> web.Response:
        with self._glock:
            device = self.devices.get(params.get("device_code", ""))
            if device is None:
                return self._error(400, "expired_token", "unknown device_code")
            now = time.monotonic()
            too_fast = device.last_poll and now - device.last_poll < self.interval * 0.5
            device.last_poll = now
            device.polls += 1
            if device.challenge is not None and s256(params.get("code_verifier", "")) != device.challenge:
                return self._error(400, "invalid_grant", "code_verifier does not match")
            if device.denied:
                return self._error(400, "access_denied", "the user denied the request")
            if not device.approved:
                if too_fast:
                    return self._error(400, "slow_down", "polling too fast")
                return self._error(400, "authorization_pending", "waiting for the user")
            del self.devices[device.device_code]
            grant = self._issue(None, None)
        return self._grant_reply(grant)

    async def _device(self, request: web.Request) -> web.StreamResponse:
        params = await self._params(request)
        if isinstance(params, web.Response):
            return params
        if params.get("client_id") != self.client_id:
            return self._error(401, "invalid_client", "unknown client_id")
        challenge = params.get("code_challenge")
        if challenge is not None and params.get("code_challenge_method") != "S256":
            return self._error(400, "invalid_request", "code_challenge_method must be S256")
        device = DeviceAuth(f"dev-{secrets.token_hex(8)}", f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}",
                            challenge)
        with self._glock:
            self.devices[device.device_code] = device
        return json_response({"device_code": device.device_code, "user_code": device.user_code,
                              "verification_uri": f"{self.base_url}/activate",
                              "verification_uri_complete": f"{self.base_url}/activate?user_code={device.user_code}",
                              "expires_in": 600, "interval": self.interval})

    async def _codex_usercode(self, request: web.Request) -> web.StreamResponse:
        body = json_body(request)
        if not isinstance(body, dict) or body.get("client_id") != self.client_id:
            return self._error(401, "invalid_client", "unknown client_id")
        device = DeviceAuth(f"deviceauth_{secrets.token_hex(6)}", f"{secrets.token_hex(2).upper()}-{secrets.token_hex(3).upper()}")
        with self._glock:
            self.devices[device.device_code] = device
        return json_response({"device_auth_id": device.device_code, "user_code": device.user_code,
                              "interval": str(self.interval)})

    async def _codex_device_token(self, request: web.Request) -> web.StreamResponse:
        body = json_body(request)
        if not isinstance(body, dict):
            return self._error(400, "invalid_request", "JSON body required")
        with self._glock:
            device = self.devices.get(str(body.get("device_auth_id")))
            if device is None or device.user_code != body.get("user_code"):
                return self._error(404, "not_found", "unknown device authorization")
            if not device.approved:
                return json_response({"error": {"code": "deviceauth_authorization_unknown"}}, status=403)
            del self.devices[device.device_code]
            verifier = secrets.token_urlsafe(32)
            code = f"code-{secrets.token_hex(8)}"
            redirect = f"{self.base_url}/deviceauth/callback"
            self.codes[code] = PendingCode(self.client_id, redirect, s256(verifier), "", "")
        return json_response({"authorization_code": code, "code_verifier": verifier,
                              "code_challenge": s256(verifier)})

    def _jwt_bearer(self, params: dict[str, str]) -> web.Response:
        assertion = params.get("assertion", "")
        parts = assertion.split(".")
        if len(parts) != 3:
            return self._error(400, "invalid_grant", "assertion is not a JWT")
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return self._error(400, "invalid_grant", "assertion payload unreadable")
        now = time.time()
        if not claims.get("iss") or not claims.get("scope") or not (claims.get("iat", 0) - 60 <= now < claims.get("exp", 0)):
            return self._error(400, "invalid_grant", "assertion claims iss/scope/iat/exp invalid")
        if claims.get("aud") != f"{self.base_url}/oauth/token":
            return self._error(400, "invalid_grant", f"assertion aud {claims.get('aud')!r} is not this endpoint")
        public_key = self.service_keys.get(str(claims.get("iss")))
        if public_key is not None and not _signature_valid(public_key, parts):
            return self._error(400, "invalid_grant", "Invalid JWT Signature.")
        with self._glock:
            self.jwt_grants += 1
            grant = self._issue(None, None)
        return json_response({"access_token": grant.access_token, "expires_in": self.expires_in,
                              "token_type": "Bearer"})

    async def _userinfo(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "")[7:]
        if not self.use_access(token):
            return self._error(401, "invalid_token", "bad access token")
        return json_response({"email": self.email, "id": "user-1"})

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        return json_response({"issuer": self.base_url, "token_endpoint": f"{self.base_url}/oauth/token",
                              "device_authorization_endpoint": f"{self.base_url}/oauth/device",
                              "authorization_endpoint": f"{self.base_url}/oauth/authorize"})

    # -- helpers -------------------------------------------------------------------------

    def _issue(self, parent: str | None, expires_in: int | None) -> Grant:
        n = next(self._counter)
        grant = Grant(f"at-{n}-{secrets.token_hex(6)}", f"rt-{n}-{secrets.token_hex(6)}",
                      time.time() + (self.expires_in if expires_in is None else expires_in), parent)
        self.grants[grant.refresh_token] = grant
        self.by_access[grant.access_token] = grant
        return grant

    def _mark_used(self, grant: Grant) -> None:
        grant.used = True
        if grant.parent is not None:
            self.revoked.add(grant.parent)

    def _grant_reply(self, grant: Grant) -> web.Response:
        reply: dict[str, Any] = {"access_token": grant.access_token, "refresh_token": grant.refresh_token,
                                 "expires_in": self.expires_in, "token_type": "Bearer"}
        if self.id_token_claims is not None:
            reply["id_token"] = jwt({"email": self.email, **self.id_token_claims})
        reply.update(self.extra_token_fields)
        return json_response(reply)

    def _error(self, status: int, error: str, description: str) -> web.Response:
        return json_response({"error": error, "error_description": description}, status=status)
