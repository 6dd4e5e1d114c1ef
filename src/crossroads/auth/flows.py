"""Browser (authorization-code + PKCE) logins, independent of the CLI.

A login is two calls: :func:`start` returns a :class:`BrowserLogin` whose
``url`` the user opens; :func:`complete` takes the redirect (caught on the
local callback port, or pasted) and returns the auth-file records to store.
The CLI and the management API both drive these; :class:`PendingLogins`
keeps logins in progress by ``state`` and refuses replayed or unknown states.

The provider's :class:`~crossroads.auth.spec.BrowserFlow` supplies the
authorize and exchange parameters and turns the token reply into records;
:class:`PkceBrowserFlow` is the standard one providers adapt.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from dataclasses import replace
from typing import Any, ClassVar

from crossroads.auth import oauth, tokens
from crossroads.auth.callback import Redirect
from crossroads.auth.oauth import LoginError
from crossroads.auth.pkce import Pkce, new_state
from crossroads.auth.spec import BrowserLogin, LoginResult
from crossroads.auth.table import OAuthTable

# settings.extra key: the provider's own page showing the code to paste (no local callback)
PASTE_REDIRECT = "paste-redirect-uri"


def safe_id(*parts: str) -> str:
    text = "-".join(p for p in parts if p)
    return "".join(c if c.isalnum() or c in "@._-+" else "_" for c in text)[:180]


def token_digest(data: dict[str, Any]) -> str:
    """A short, stable name for an account whose provider told us no email:
    two such logins never share a record (and so never overwrite each other)."""
    secret = str(data.get("refresh_token") or data.get("access_token") or data)
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def expiry_fields(reply: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    lifetime = reply.get("expires_in")
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
        return {"expired": tokens.format_time(now + float(lifetime))}
    exp = tokens.jwt_claims(str(reply.get("access_token", ""))).get("exp")
    return {"expired": tokens.format_time(float(exp))} if isinstance(exp, int | float) else {}


class PkceBrowserFlow:
    """The standard authorization-code + PKCE (S256) parameters; a provider
    subclasses it for its extra parameters and its records (``finish``)."""

    basic_auth: ClassVar[bool] = False

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {"client_id": login.settings.client_id, "redirect_uri": login.redirect_uri,
                "response_type": "code", "scope": " ".join(login.settings.scopes), "state": login.state,
                "code_challenge": login.pkce.challenge, "code_challenge_method": "S256"}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        return {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "client_id": login.settings.client_id, "code_verifier": login.pkce.verifier}

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        raise NotImplementedError(f"{type(self).__name__} must turn the token reply into records")


def browser_names(table: OAuthTable) -> list[str]:
    return sorted(name for spec in table.specs.values() if spec.browser is not None for name in spec.login_names)


def start(table: OAuthTable, kind: str, *, loopback: bool = True, port: int | None = None,
          options: dict[str, Any] | None = None) -> BrowserLogin:
    """A new login for auth type ``kind``: the URL to open and the state/PKCE
    to check the redirect with. ``loopback=False`` is the paste mode
    (providers with a code page use it)."""
    flow = table.spec(kind).browser
    if flow is None:
        raise LoginError(f"no browser login for {kind!r}; browser logins: {', '.join(browser_names(table))}")
    conf = table.settings(kind)
    if port is not None:
        conf = replace(conf, callback_port=port)
    if conf.redirect_uri:
        redirect = conf.redirect_uri
    elif not loopback and conf.extra.get(PASTE_REDIRECT):
        redirect = conf.extra[PASTE_REDIRECT]
    else:
        redirect = conf.loopback_redirect
    login = BrowserLogin(kind, conf, flow, redirect, Pkce(), new_state(), options=dict(options or {}))
    login.url = f"{conf.authorize_url}?{urllib.parse.urlencode(flow.authorize_params(login))}"
    return login


def check_redirect(login: BrowserLogin, redirect: Redirect) -> None:
    if login.completed:
        raise LoginError("this login was already completed; a replayed redirect is refused — "
                         "start a new login")
    if redirect.error:
        raise LoginError(f"the provider refused the login: {redirect.error}")
    if redirect.state is None:
        raise LoginError("the pasted code carries no state, so it cannot be checked: paste the full "
                         "redirect URL (or 'code#state' as shown)")
    if redirect.state != login.state:
        raise LoginError("state mismatch: this redirect belongs to another login attempt (or was tampered "
                         "with); start the login again")


async def complete(login: BrowserLogin, redirect: Redirect) -> list[LoginResult]:
    """Verify the redirect and exchange its code for tokens."""
    check_redirect(login, redirect)
    login.completed = True  # before the exchange: the same redirect never counts twice
    flow = login.flow
    conf = login.settings
    params = flow.exchange_params(login, redirect.code)
    if conf.client_secret and "client_secret" not in params:
        params["client_secret"] = conf.client_secret
    basic = (conf.client_id, conf.client_secret) if flow.basic_auth else None
    try:
        reply = await oauth.post(conf.token_url, params, encoding=conf.encoding, basic_auth=basic)
    except oauth.OAuthError as exc:
        raise LoginError(f"exchanging the code failed: {exc}") from None
    if not isinstance(reply.get("access_token"), str):
        raise LoginError("the token endpoint returned no access token")
    return await flow.finish(login, reply)


class PendingLogins:
    """Logins in progress, by state (for the management API): a state is
    accepted once; unknown and replayed states are refused clearly."""

    def __init__(self, ttl: float = 900.0) -> None:
        self.ttl = ttl
        self._pending: dict[str, BrowserLogin] = {}
        self._finished: dict[str, float] = {}

    def add(self, login: BrowserLogin) -> BrowserLogin:
        self._expire()
        self._pending[login.state] = login
        return login

    def take(self, state: str | None) -> BrowserLogin:
        self._expire()
        if state and state in self._finished:
            raise LoginError("this login was already completed; a replayed redirect is refused")
        login = self._pending.pop(state or "", None)
        if login is None:
            raise LoginError("unknown or expired login state: start the login again")
        self._finished[login.state] = time.time()
        return login

    async def complete(self, redirect: Redirect) -> list[LoginResult]:
        return await complete(self.take(redirect.state), redirect)

    def cancel(self, state: str) -> bool:
        """Forget a login still waiting for its redirect (False: none was)."""
        return self._pending.pop(state, None) is not None

    def _expire(self) -> None:
        cutoff = time.time() - self.ttl
        for state in [s for s, login in self._pending.items() if login.started_at < cutoff]:
            del self._pending[state]
        for state in [s for s, at in self._finished.items() if at < cutoff]:
            del self._finished[state]


def pasted_token_record(kind: str, token: str, email: str = "") -> LoginResult:
    """An existing access token (e.g. ``sk-ant-oat01-...``) stored as it is:
    no refresh token, no known expiry — used until the upstream refuses it."""
    token = token.strip()
    if not token:
        raise LoginError("no token given")
    data = {"type": kind, "access_token": token, "email": email, "token_kind": "pasted",
            "last_refresh": tokens.format_time(time.time())}
    digest = hashlib.sha256(token.encode()).hexdigest()[:8]  # names the file without revealing the token
    return LoginResult(safe_id(kind, "token", email or digest), data)
