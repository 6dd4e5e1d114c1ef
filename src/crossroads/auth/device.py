"""Device-code logins (RFC 8628).

:class:`StandardDeviceFlow` is the RFC's flow (optionally with PKCE, with
endpoints from OIDC discovery); a provider adapts it (extra headers, fields
kept on the record) or supplies its own :class:`~crossroads.auth.spec.DeviceFlow`.
Polling honours ``authorization_pending`` (wait ``interval``) and
``slow_down`` (wait 5 s longer from then on), and stops at ``expires_in``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from crossroads.auth import oauth, tokens
from crossroads.auth.discovery import discover_endpoints
from crossroads.auth.flows import expiry_fields, safe_id, token_digest
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.pkce import Pkce, new_state
from crossroads.auth.spec import DeviceLogin, LoginResult, OAuthEntry
from crossroads.auth.table import OAuthTable

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StandardDeviceFlow:
    pkce: bool = False  # send a PKCE challenge with the device request, the verifier with each poll
    keep: tuple[str, ...] = ()  # token-reply fields kept on the record

    def headers(self, options: dict[str, Any]) -> dict[str, str]:
        """Extra headers for the device and token requests."""
        return {}

    def record_fields(self, login: DeviceLogin) -> dict[str, Any]:
        """Extra record fields from the login (e.g. a device id it registered)."""
        return {}

    def pending(self, code: str, status: int) -> bool:
        return code == "authorization_pending"

    async def start(self, entry: OAuthEntry, options: dict[str, Any]) -> DeviceLogin:
        conf = entry.settings
        device_url, token_url = ((await discover_endpoints(entry)) if conf.discovery_url
                                 else (conf.device_url, conf.token_url))
        if not device_url:
            raise LoginError(f"{entry.type} has no device login; use the browser login")
        params: dict[str, Any] = {"client_id": conf.client_id}
        if conf.scopes:
            params["scope"] = " ".join(conf.scopes)
        pkce = Pkce() if self.pkce else None
        if pkce is not None:
            params.update(code_challenge=pkce.challenge, code_challenge_method="S256")
        headers = self.headers(options)
        try:
            reply = await oauth.post(device_url, params, headers=headers)
        except OAuthError as exc:
            raise LoginError(f"starting the {entry.type} device login failed: {exc}") from None
        try:
            return DeviceLogin(entry, self, str(reply["device_code"]), str(reply["user_code"]),
                               str(reply.get("verification_uri") or reply.get("verification_url") or ""),
                               token_url, float(reply.get("interval") or 5),
                               time.time() + float(reply.get("expires_in") or 900),
                               str(reply.get("verification_uri_complete") or ""), pkce, headers, options)
        except (KeyError, TypeError, ValueError):
            raise LoginError(f"the {entry.type} device endpoint sent an unexpected reply") from None

    async def poll_once(self, login: DeviceLogin) -> dict[str, Any]:
        params: dict[str, Any] = {"grant_type": DEVICE_GRANT, "device_code": login.device_code,
                                  "client_id": login.settings.client_id}
        if login.pkce is not None:
            params["code_verifier"] = login.pkce.verifier
        return await oauth.post(login.token_url, params, headers=login.headers)

    async def finish(self, login: DeviceLogin, reply: dict[str, Any]) -> list[LoginResult]:
        data: dict[str, Any] = {"type": login.type, "access_token": reply["access_token"],
                                "refresh_token": reply.get("refresh_token", ""),
                                "last_refresh": tokens.format_time(time.time()), **expiry_fields(reply)}
        data.update({key: reply[key] for key in self.keep if reply.get(key)})
        data.update(self.record_fields(login))
        claims = tokens.jwt_claims(str(reply.get("id_token") or reply["access_token"]))
        email = str(claims.get("email") or login.options.get("email") or "")
        data["email"] = email
        return [LoginResult(safe_id(login.type, email or token_digest(data)), data)]


async def start(table: OAuthTable, kind: str, options: dict[str, Any] | None = None) -> DeviceLogin:
    """Start the device login of auth type ``kind``: the user code and where to enter it."""
    entry = table.entry(kind)
    flow = entry.spec.device
    if flow is None:
        raise LoginError(f"{kind} has no device login; use the browser login")
    return await flow.start(entry, dict(options or {}))


async def poll(login: DeviceLogin, sleep: Sleep = asyncio.sleep) -> list[LoginResult]:
    """Wait for the user to approve; returns the records to store."""
    interval = login.interval
    while True:
        if login.expires_at and time.time() > login.expires_at:
            raise LoginError("the device code expired before it was approved; start the login again")
        await sleep(interval)
        try:
            reply = await login.flow.poll_once(login)
        except OAuthError as exc:
            if login.flow.pending(exc.code, exc.status):
                continue
            if exc.code == "slow_down":
                interval += 5
                continue
            if exc.code in ("access_denied", "expired_token"):
                raise LoginError(f"the device login was {'denied' if exc.code == 'access_denied' else 'expired'}"
                                 "; start it again") from None
            raise LoginError(f"the device login failed: {exc}") from None
        return await login.flow.finish(login, reply)


Save = Callable[[list[LoginResult]], Awaitable[list[str]]]


class PendingDeviceLogins:
    """Device logins started from the management API: each is polled in the
    background until approved, denied or expired, then saved; its outcome is
    looked up by the ``state`` handed out at the start (as browser logins)."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[list[str]]] = {}

    async def start(self, table: OAuthTable, kind: str, save: Save, options: dict[str, Any] | None = None,
                    sleep: Sleep = asyncio.sleep) -> tuple[str, DeviceLogin]:
        login = await start(table, kind, options)
        state = new_state()

        async def run() -> list[str]:
            return await save(await poll(login, sleep))

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

    def cancel(self, state: str) -> bool:
        """Stop polling one login (False: none was being polled)."""
        task = self._tasks.get(state)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
