"""Browser (authorization-code + PKCE) logins, independent of the CLI.

A login is two calls: :func:`start` returns a :class:`BrowserLogin` whose
``url`` the user opens; :func:`complete` takes the redirect (caught on the
local callback port, or pasted) and returns the auth-file records to store.
The CLI and the management API both drive these; :class:`PendingLogins`
keeps logins in progress by ``state`` and refuses replayed or unknown states.

Each provider is a :class:`Flow`: the authorize parameters, the code
exchange, and how the token reply becomes records.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from crossroads.auth import oauth, settings, tokens
from crossroads.auth.callback import Redirect
from crossroads.auth.grants import codex_identity
from crossroads.auth.oauth import LoginError
from crossroads.auth.pkce import Pkce, new_state
from crossroads.auth.settings import OAuthSettings

SETUP_TOKEN_LIFETIME = 365 * 24 * 3600
CLAUDE_CODE_PAGE = "paste-redirect-uri"


@dataclass(slots=True)
class LoginResult:
    record_id: str
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.data.get("email") or self.record_id)


@dataclass(slots=True)
class BrowserLogin:
    type: str
    settings: OAuthSettings
    redirect_uri: str
    pkce: Pkce
    state: str
    url: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    completed: bool = False
    started_at: float = field(default_factory=time.time)


class Flow(Protocol):
    type: ClassVar[str]

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]: ...

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]: ...

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]: ...


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


class ClaudeFlow:
    type: ClassVar[str] = "claude"

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        scopes = ("user:inference",) if login.options.get("setup_token") else login.settings.scopes
        return {"code": "true", "client_id": login.settings.client_id, "response_type": "code",
                "redirect_uri": login.redirect_uri, "scope": " ".join(scopes),
                "code_challenge": login.pkce.challenge, "code_challenge_method": "S256", "state": login.state}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        params: dict[str, Any] = {"grant_type": "authorization_code", "code": code, "state": login.state,
                                  "client_id": login.settings.client_id, "redirect_uri": login.redirect_uri,
                                  "code_verifier": login.pkce.verifier}
        if login.options.get("setup_token"):
            params["expires_in"] = SETUP_TOKEN_LIFETIME
        return params

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        account = reply.get("account")
        account = account if isinstance(account, dict) else {}
        email = str(account.get("email_address") or login.options.get("email") or "")
        data: dict[str, Any] = {"type": "claude", "access_token": reply["access_token"], "email": email,
                                "last_refresh": tokens.format_time(time.time()), **expiry_fields(reply)}
        if login.options.get("setup_token"):
            data["token_kind"] = "setup-token"  # inference-only, no refresh token
            return [LoginResult(safe_id("claude", "setup", email or "token"), data)]
        if reply.get("refresh_token"):
            data["refresh_token"] = reply["refresh_token"]
        return [LoginResult(safe_id("claude", email or token_digest(data)), data)]


class CodexFlow:
    type: ClassVar[str] = "codex"

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {"response_type": "code", "client_id": login.settings.client_id,
                "redirect_uri": login.redirect_uri, "scope": " ".join(login.settings.scopes),
                "code_challenge": login.pkce.challenge, "code_challenge_method": "S256",
                "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true",
                "state": login.state, "originator": "codex_cli_rs"}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        return {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "client_id": login.settings.client_id, "code_verifier": login.pkce.verifier}

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        return [codex_result(reply)]


def codex_result(reply: dict[str, Any]) -> LoginResult:
    id_token = str(reply.get("id_token") or "")
    identity = codex_identity(id_token)
    if not identity.get("account_id"):
        raise LoginError("the ChatGPT id token carries no account id; is this a ChatGPT account?")
    data: dict[str, Any] = {"type": "codex", "id_token": id_token, "access_token": reply["access_token"],
                            "refresh_token": reply.get("refresh_token", ""),
                            "last_refresh": tokens.format_time(time.time()), **identity, **expiry_fields(reply)}
    return LoginResult(safe_id("codex", str(identity.get("email", "")), str(identity.get("plan_type", ""))), data)


class GoogleFlow:
    """Gemini CLI and Antigravity: Google OAuth (offline access), then the
    Cloud Code project(s) — one record per project."""

    type: ClassVar[str] = "gemini"

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {"client_id": login.settings.client_id, "redirect_uri": login.redirect_uri,
                "response_type": "code", "scope": " ".join(login.settings.scopes), "access_type": "offline",
                "prompt": "consent", "state": login.state, "code_challenge": login.pkce.challenge,
                "code_challenge_method": "S256"}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        return {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "client_id": login.settings.client_id, "code_verifier": login.pkce.verifier}

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        from crossroads.auth.codeassist import discover_project

        conf = login.settings
        token = str(reply["access_token"])
        email = ""
        if conf.extra.get("userinfo-url"):
            try:
                info = await oauth.get_json(conf.extra["userinfo-url"], {"authorization": f"Bearer {token}"})
                email = str(info.get("email") or "")
            except oauth.OAuthError:
                email = ""
        wanted = list(login.options.get("project_ids") or []) or [None]
        results = []
        for project_wanted in wanted:
            project = await discover_project(conf.base_url, token, project_wanted,
                                             float(login.options.get("poll_seconds", 2.0)),
                                             conf.extra.get("user-agent", ""))
            results.append(google_result(self.type, reply, email, project, auto=project_wanted is None))
        return results


def google_result(kind: str, reply: dict[str, Any], email: str, project: str, auto: bool) -> LoginResult:
    now = time.time()
    expiry = expiry_fields(reply, now).get("expired", "")
    if kind == "gemini":
        data: dict[str, Any] = {
            "type": "gemini", "email": email, "project_id": project, "auto": auto, "checked": True,
            "token": {"access_token": reply["access_token"], "refresh_token": reply.get("refresh_token", ""),
                      "token_type": "Bearer", "expiry": expiry}}
        return LoginResult(safe_id("gemini", email, project), data)
    lifetime = reply.get("expires_in") if isinstance(reply.get("expires_in"), int | float) else 3599
    data = {"type": kind, "email": email, "project_id": project, "access_token": reply["access_token"],
            "refresh_token": reply.get("refresh_token", ""), "expires_in": lifetime,
            "timestamp": int(now * 1000), "expired": expiry}
    return LoginResult(safe_id(kind, email or project), data)


class AntigravityFlow(GoogleFlow):
    type: ClassVar[str] = "antigravity"


class IflowFlow:
    """iFlow: authorization code (client secret, no PKCE on iFlow's side),
    then the user info call that carries the account's API key."""

    type: ClassVar[str] = "iflow"

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {"loginMethod": "phone", "type": "phone", "redirect": login.redirect_uri,
                "state": login.state, "client_id": login.settings.client_id}

    def exchange_params(self, login: BrowserLogin, code: str) -> dict[str, Any]:
        return {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "client_id": login.settings.client_id}

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        url = login.settings.extra["userinfo-url"]
        query = urllib.parse.urlencode({"accessToken": reply["access_token"]})
        try:
            info = await oauth.get_json(f"{url}?{query}", {"accept": "application/json"})
        except oauth.OAuthError as exc:
            raise LoginError(f"iFlow user info failed: {exc}") from None
        user = info.get("data") if isinstance(info.get("data"), dict) else {}
        api_key = str((user or {}).get("apiKey") or "")
        if not api_key:
            raise LoginError("iFlow returned no API key for this account")
        email = str((user or {}).get("email") or (user or {}).get("phone") or "")
        data: dict[str, Any] = {"type": "iflow", "access_token": reply["access_token"],
                                "refresh_token": reply.get("refresh_token", ""), "api_key": api_key,
                                "email": email, "last_refresh": tokens.format_time(time.time()),
                                **expiry_fields(reply)}
        return [LoginResult(safe_id("iflow", email or token_digest(data)), data)]


FLOWS: dict[str, Flow] = {"claude": ClaudeFlow(), "codex": CodexFlow(), "gemini": GoogleFlow(),
                          "antigravity": AntigravityFlow(), "iflow": IflowFlow()}


def register(flow: Flow) -> None:
    FLOWS[flow.type] = flow


def start(kind: str, *, loopback: bool = True, port: int | None = None,
          options: dict[str, Any] | None = None) -> BrowserLogin:
    """A new login: the URL to open and the state/PKCE to check the redirect with.
    ``loopback=False`` is the paste mode (providers with a code page use it)."""
    flow = FLOWS.get(kind)
    if flow is None:
        raise LoginError(f"no browser login for {kind!r}; browser logins: {', '.join(sorted(FLOWS))}")
    conf = settings.get(kind)
    if port is not None:
        conf = OAuthSettings(**{**_fields(conf), "callback_port": port})
    if conf.redirect_uri:
        redirect = conf.redirect_uri
    elif not loopback and conf.extra.get(CLAUDE_CODE_PAGE):
        redirect = conf.extra[CLAUDE_CODE_PAGE]
    else:
        redirect = conf.loopback_redirect
    login = BrowserLogin(kind, conf, redirect, Pkce(), new_state(), options=dict(options or {}))
    login.url = f"{conf.authorize_url}?{urllib.parse.urlencode(flow.authorize_params(login))}"
    return login


def _fields(conf: OAuthSettings) -> dict[str, Any]:
    return {name: getattr(conf, name) for name in conf.__dataclass_fields__}


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
    flow = FLOWS[login.type]
    conf = login.settings
    params = flow.exchange_params(login, redirect.code)
    if conf.client_secret and "client_secret" not in params:
        params["client_secret"] = conf.client_secret
    basic = (conf.client_id, conf.client_secret) if login.type == "iflow" else None  # iFlow wants Basic auth
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
