"""Device-code logins (RFC 8628): Qwen (with PKCE), Kimi, xAI (endpoints
from OIDC discovery) and Codex's own device variant; plus the non-browser
imports (Vertex service accounts) and post-login steps per provider.

Polling honours ``authorization_pending`` (wait ``interval``) and
``slow_down`` (wait 5 s longer from then on), and stops at ``expires_in``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from crossroads.auth import flows, oauth, settings, tokens
from crossroads.auth.flows import LoginResult, safe_id, token_digest
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.pkce import Pkce

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_ONLY = frozenset({"qwen", "kimi", "xai"})
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class DeviceLogin:
    type: str
    device_code: str
    user_code: str
    verification_uri: str
    token_url: str
    interval: float = 5.0
    expires_at: float = 0.0
    verification_uri_complete: str = ""
    pkce: Pkce | None = None
    headers: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


async def discover_endpoints(conf: settings.OAuthSettings) -> tuple[str, str]:
    """xAI: device and token endpoints from OIDC discovery, kept on the issuer's domain."""
    if conf.device_url and conf.token_url:
        return conf.device_url, conf.token_url
    document = await oauth.get_json(conf.discovery_url, {"accept": "application/json"})
    device_url = str(document.get("device_authorization_endpoint") or "")
    token_url = str(document.get("token_endpoint") or "")
    if not device_url.startswith(("https://", "http://")) or not token_url.startswith(("https://", "http://")):
        raise LoginError("the identity server's discovery document names no device/token endpoints")
    if not settings.overridden(conf.type) and not all(_on_domain(u, "x.ai") for u in (device_url, token_url)):
        raise LoginError("the discovery document points outside x.ai; refusing it")
    return device_url, token_url


def _on_domain(url: str, domain: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host == domain or host.endswith("." + domain)


async def start(kind: str, options: dict[str, Any] | None = None) -> DeviceLogin:
    conf = settings.get(kind)
    options = dict(options or {})
    if kind == "codex":
        return await _codex_start(conf, options)
    device_url, token_url = (await discover_endpoints(conf)) if conf.discovery_url else (conf.device_url, conf.token_url)
    if not device_url:
        raise LoginError(f"{kind} has no device login; use the browser login")
    params: dict[str, Any] = {"client_id": conf.client_id}
    if conf.scopes:
        params["scope"] = " ".join(conf.scopes)
    headers: dict[str, str] = {}
    pkce = None
    if kind == "qwen":
        pkce = Pkce()
        params.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    if kind == "kimi":
        headers = {"X-Msh-Platform": "crossroads", "X-Msh-Device-Id": options.setdefault(
            "device_id", uuid.uuid4().hex)}
    try:
        reply = await oauth.post(device_url, params, headers=headers)
    except OAuthError as exc:
        raise LoginError(f"starting the {kind} device login failed: {exc}") from None
    try:
        return DeviceLogin(kind, str(reply["device_code"]), str(reply["user_code"]),
                           str(reply.get("verification_uri") or reply.get("verification_url") or ""),
                           token_url, float(reply.get("interval") or 5),
                           time.time() + float(reply.get("expires_in") or 900),
                           str(reply.get("verification_uri_complete") or ""), pkce, headers, options)
    except (KeyError, TypeError, ValueError):
        raise LoginError(f"the {kind} device endpoint sent an unexpected reply") from None


async def _codex_start(conf: settings.OAuthSettings, options: dict[str, Any]) -> DeviceLogin:
    reply = await oauth.post(conf.device_url, {"client_id": conf.client_id}, encoding="json")
    try:
        interval = float(reply.get("interval") or 5)
        return DeviceLogin("codex", str(reply["device_auth_id"]), str(reply["user_code"]),
                           conf.verification_url, conf.extra["device-token-url"], interval,
                           time.time() + 900, options=options)
    except (KeyError, ValueError):
        raise LoginError("the Codex device endpoint sent an unexpected reply") from None


async def poll(login: DeviceLogin, sleep: Sleep = asyncio.sleep) -> list[LoginResult]:
    """Wait for the user to approve; returns the records to store."""
    interval = login.interval
    while True:
        if login.expires_at and time.time() > login.expires_at:
            raise LoginError("the device code expired before it was approved; start the login again")
        await sleep(interval)
        try:
            reply = await _poll_once(login)
        except OAuthError as exc:
            pending = exc.code == "authorization_pending" or (login.type == "codex" and exc.status in (403, 404))
            if pending:
                continue
            if exc.code == "slow_down":
                interval += 5
                continue
            if exc.code in ("access_denied", "expired_token"):
                raise LoginError(f"the device login was {'denied' if exc.code == 'access_denied' else 'expired'}"
                                 "; start it again") from None
            raise LoginError(f"the device login failed: {exc}") from None
        return await _finish(login, reply)


async def _poll_once(login: DeviceLogin) -> dict[str, Any]:
    conf = settings.get(login.type)
    if login.type == "codex":
        return await oauth.post(login.token_url, {"device_auth_id": login.device_code,
                                                  "user_code": login.user_code}, encoding="json")
    params: dict[str, Any] = {"grant_type": DEVICE_GRANT, "device_code": login.device_code,
                              "client_id": conf.client_id}
    if login.pkce is not None:
        params["code_verifier"] = login.pkce.verifier
    return await oauth.post(login.token_url, params, headers=login.headers)


async def _finish(login: DeviceLogin, reply: dict[str, Any]) -> list[LoginResult]:
    conf = settings.get(login.type)
    if login.type == "codex":  # the device approval yields an authorization code to exchange
        redirect = conf.extra.get("device-redirect-uri") or ""
        if settings.overridden("codex"):
            redirect = conf.token_url.rsplit("/oauth/", 1)[0] + "/deviceauth/callback"
        exchanged = await oauth.post(conf.token_url, {
            "grant_type": "authorization_code", "code": reply.get("authorization_code"),
            "redirect_uri": redirect, "client_id": conf.client_id, "code_verifier": reply.get("code_verifier")})
        return [flows.codex_result(exchanged)]
    data: dict[str, Any] = {"type": login.type, "access_token": reply["access_token"],
                            "refresh_token": reply.get("refresh_token", ""),
                            "last_refresh": tokens.format_time(time.time()), **flows.expiry_fields(reply)}
    if login.type == "qwen" and reply.get("resource_url"):
        data["resource_url"] = reply["resource_url"]
    if login.type == "kimi":
        data["device_id"] = login.options.get("device_id", "")
    claims = tokens.jwt_claims(str(reply.get("id_token") or reply["access_token"]))
    email = str(claims.get("email") or login.options.get("email") or "")
    data["email"] = email
    return [LoginResult(safe_id(login.type, email or token_digest(data)), data)]


async def vertex_import(options: dict[str, Any]) -> LoginResult:
    from crossroads.auth.vertex import record_from_service_account

    path = options.get("service_account")
    if not path:
        raise LoginError("vertex login needs --service-account FILE (a Google service-account JSON key)")
    try:
        account = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise LoginError(f"cannot read the service-account file {path}: {exc}") from None
    if not isinstance(account, dict):
        raise LoginError("the service-account file must hold a JSON object")
    data = record_from_service_account(account, str(options.get("location") or "us-central1"))
    return LoginResult(safe_id("vertex", str(data["project_id"])), data)


PostLogin = Callable[[list[LoginResult], dict[str, Any]], Awaitable[list[LoginResult]]]
AFTER_LOGIN: dict[str, PostLogin] = {}


async def after_login(kind: str, results: list[LoginResult], options: dict[str, Any]) -> list[LoginResult]:
    """Provider steps after the tokens arrive (project discovery, API keys)."""
    step = AFTER_LOGIN.get(kind)
    return await step(results, options) if step is not None else results


Save = Callable[[list[LoginResult]], Awaitable[list[str]]]


class PendingDeviceLogins:
    """Device logins started from the management API: each is polled in the
    background until approved, denied or expired, then saved; its outcome is
    looked up by the ``state`` handed out at the start (as browser logins)."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[list[str]]] = {}

    async def start(self, kind: str, save: Save, options: dict[str, Any] | None = None,
                    sleep: Sleep = asyncio.sleep) -> tuple[str, DeviceLogin]:
        from crossroads.auth.pkce import new_state

        login = await start(kind, options)
        state = new_state()

        async def run() -> list[str]:
            results = await after_login(kind, await poll(login, sleep), login.options)
            return await save(results)

        self._tasks[state] = asyncio.get_running_loop().create_task(run())
        return state, login

    def status(self, state: str) -> dict[str, Any]:
        """``{"status": "wait"}``, ``{"status": "ok", "accounts": [...]}`` or
        ``{"status": "error", "error": message}``; KeyError for unknown states."""
        task = self._tasks[state]
        if not task.done():
            return {"status": "wait"}
        if task.cancelled():
            return {"status": "error", "error": "the login was cancelled"}
        error = task.exception()
        if error is not None:
            message = str(error) if isinstance(error, LoginError) else f"{type(error).__name__}: {error}"
            return {"status": "error", "error": message}
        return {"status": "ok", "accounts": task.result()}

    def cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
