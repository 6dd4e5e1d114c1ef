"""cto.new (EngineLabs) web sessions, natively (auth-file type ``ctonew``):
no side service needed.

The credential is the cookie string of a signed-in cto.new browser (its
``__client`` cookie from clerk.cto.new; ``crossroads login ctonew --cookie``).
Per request the exchange needs a Clerk session JWT, which lives about 60 s:
the refresher mints it from the cookie (the client lookup, then the session's
token) and keeps it in memory, one mint at a time, shortly before it expires.

The exchange: open the chat's buffer WebSocket, POST the prompt to
``/engine-agent/chat`` with the JWT, then read ``update`` messages (a
``chat`` or ``thinking`` buffer, sent as a snapshot of the text so far or as
a delta; both are merged) until a ``state`` message says the turn is no
longer in progress. Thinking becomes reasoning; the history is flattened into
one prompt (text only); tools are emulated in the prompt; usage is unknown.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from crossroads import ir
from crossroads.auth import oauth
from crossroads.auth.flows import safe_id
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.spec import LoginResult, OAuthEntry, OAuthSettings, OAuthSpec
from crossroads.auth.tokens import TokenGrant
from crossroads.credentials.base import Record
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.services.flatten import turns
from crossroads.services.refine import Quirks, Refiner
from crossroads.services.tools import emulate
from crossroads.transport import Transport

ADAPTERS = ["ClaudeSonnet4_5", "GPT5"]  # what cto.new offers today; a record's "models" replaces them
CLERK_API_VERSION = "2025-04-10"
JWT_LEAD = 15.0  # a Clerk token lives ~60 s: mint a new one when less than this is left
CONNECT_GRACE = 10.0


def jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def unpack_cookie(cookie: str) -> str:
    """ctonew-proxy's packing (``.....`` for ``; ``) accepted as pasted."""
    return cookie.strip().replace(".....", "; ")


async def active_session(clerk: str, origin: str, cookie: str) -> dict[str, Any]:
    """The signed-in Clerk session the cookie belongs to; OAuthError
    ``invalid_grant`` when there is none (the cookie is dead)."""
    try:
        reply = await oauth.get_json(f"{clerk}/v1/client", {"cookie": cookie, "origin": origin,
                                                            "accept": "application/json"})
    except OAuthError as exc:
        if exc.status in (401, 403):
            raise OAuthError("invalid_grant", "cto.new refused the cookie", exc.status) from None
        raise
    client = reply.get("response")
    sessions = client.get("sessions") if isinstance(client, dict) else None
    active = [s for s in sessions or [] if isinstance(s, dict) and s.get("id") and s.get("status", "active")
              == "active"]
    if not active:
        raise OAuthError("invalid_grant", "the cto.new cookie has no signed-in session (log in again)")
    return active[0]


class ClerkToken:
    """A session JWT minted from the stored cookie (kept in memory only)."""

    def can_refresh(self, data: Mapping[str, Any]) -> bool:
        return bool(data.get("cookie"))

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        cookie, origin = str(data.get("cookie") or ""), entry.settings.extra["origin"]
        session = await active_session(token_url, origin, cookie)
        url = f"{token_url}/v1/client/sessions/{session['id']}/tokens?__clerk_api_version={CLERK_API_VERSION}"
        try:
            reply = await oauth.post(url, {}, headers={"cookie": cookie, "origin": origin, "referer": f"{origin}/"})
        except OAuthError as exc:
            if exc.status in (401, 403, 404):
                raise OAuthError("invalid_grant", f"Clerk refused a token for the session ({exc})") from None
            raise
        jwt = reply.get("jwt")
        if not isinstance(jwt, str) or not jwt:
            raise OAuthError("bad_response", "Clerk sent no jwt")
        expiry = jwt_claims(jwt).get("exp")
        lifetime = float(expiry) - time.time() if isinstance(expiry, int | float) else 60.0
        return TokenGrant(access_token=jwt, expires_in=max(1.0, lifetime))


class CookieLogin:
    option: ClassVar[str] = "cookie"

    async def run(self, entry: OAuthEntry, options: Mapping[str, Any]) -> list[LoginResult]:
        cookie = unpack_cookie(str(options.get("cookie") or ""))
        if "__client=" not in cookie:
            raise LoginError("the cto.new cookie must contain __client=... (the clerk.cto.new cookie of a "
                             "signed-in browser; __session alone expires within a minute)")
        try:
            session = await active_session(entry.settings.token_url, entry.settings.extra["origin"], cookie)
        except OAuthError as exc:
            raise LoginError(f"cto.new refused the cookie: {exc}") from None
        found = session.get("user")
        user: dict[str, Any] = found if isinstance(found, dict) else {}
        emails = user.get("email_addresses") or []
        email = next((str(e["email_address"]) for e in emails if isinstance(e, dict) and e.get("email_address")),
                     "")
        data: dict[str, Any] = {"type": "ctonew", "cookie": cookie, "email": email,
                                "user_id": str(user.get("id") or "")}
        return [LoginResult(safe_id("ctonew", email or str(user.get("id") or "cookie")), data)]


OAUTH = OAuthSpec(
    "ctonew",
    OAuthSettings("ctonew", token_url="https://clerk.cto.new", base_url="https://api.enginelabs.ai",
                  lead=JWT_LEAD, extra={"origin": "https://cto.new"}),
    login_names=("ctonew",),
    imports=(CookieLogin(),),
    refresh=ClerkToken(),
    options=frozenset({"cookie"}),
    memory_only=True,
)


class BufferMerger:
    """Buffers arrive as the text so far or as the next piece: the new text either way."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def new_text(self, kind: str, content: str) -> str:
        before = self.seen.get(kind, "")
        if before and content.startswith(before):
            self.seen[kind] = content
            return content[len(before):]
        self.seen[kind] = before + content
        return content


def prompt_of(request: ir.Request) -> str:
    """The conversation as one prompt, the way the web app takes it."""
    return "\n\n".join(f"{role}:\n{text}" for role, text in turns(request))


class CtonewProvider(ProviderBase):
    billing: ClassVar[str] = "unknown"
    config_key: ClassVar[str] = "ctonew"
    entry_keys: ClassVar[Mapping[str, Any] | None] = None  # logins are auth files, not config entries
    dialect: ClassVar[str] = "openai-chat"  # nominal: the exchange yields IR events itself
    default_base_url: ClassVar[str] = "https://api.enginelabs.ai"
    auth_types: ClassVar[tuple[str, ...]] = ("ctonew",)
    owns_exchange: ClassVar[bool] = True
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def catalogue(self) -> list[str]:
        return list(ADAPTERS)

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        if not record.data.get("cookie"):
            raise ValueError("the ctonew credential has no cookie (log in again)")
        models = record.data.get("models")
        adapters = [str(m) for m in models] if isinstance(models, list) and models else ADAPTERS
        account = accounts.oauth_account(self, record, adapters, ctx)
        account.params["origin"] = ctx.oauth.settings("ctonew").extra["origin"]
        return account

    async def call(self, account: Account, model: str, stream: bool, client_headers: Mapping[str, str],
                   dialect: str) -> UpstreamCall:
        raise NotImplementedError("cto.new runs its own exchange")

    async def exchange(self, account: Account, request: ir.Request, client_headers: Mapping[str, str],
                       transport: Transport) -> AsyncIterator[ir.Event]:
        request, tool_names = emulate(request)
        jwt = await accounts.bearer(account)
        chat_id = str(uuid.uuid4())
        origin = str(account.params.get("origin") or "https://cto.new")
        timeouts = account.timeouts or transport.timeouts
        socket_url = (account.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
                      + f"/engine-agent/chat-histories/{chat_id}/buffer/stream?token={jwt_claims(jwt).get('sub', '')}")
        try:
            async with asyncio.timeout(timeouts.connect + CONNECT_GRACE):
                socket = await transport.session.ws_connect(socket_url, headers={"origin": origin},
                                                            proxy=_http_proxy(account.proxy_url or transport.proxy_url))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ir.Error(502, "server_error", f"{account.label}: cannot open the cto.new stream "
                                                f"({type(exc).__name__})") from None
        try:
            await self._send(account, transport, jwt, chat_id, origin, prompt_of(request), request.model)
            refiner = Refiner(Quirks(usage_known=False, label=account.label), tool_names)
            async for event in self._read(socket, refiner, chat_id, request.model, timeouts.idle, account.label):
                yield event
                if isinstance(event, ir.ErrorEvent):
                    return
        finally:
            await socket.close()

    async def _send(self, account: Account, transport: Transport, jwt: str, chat_id: str, origin: str,
                    prompt: str, adapter: str) -> None:
        body = orjson.dumps({"prompt": prompt, "chatHistoryId": chat_id, "adapterName": adapter})
        headers = {"content-type": "application/json", "accept": "application/json",
                   "authorization": f"Bearer {jwt}", "origin": origin, "referer": f"{origin}/{chat_id}"}
        try:
            response = await transport.post(f"{account.base_url}/engine-agent/chat", body, headers,
                                            account.proxy_url, account.timeouts)
        except TimeoutError:
            raise ir.Error(504, "timeout", f"{account.label}: cto.new did not take the message in time") from None
        except aiohttp.ClientError as exc:
            raise ir.Error(502, "server_error", f"{account.label}: cannot reach cto.new "
                                                f"({type(exc).__name__})") from None
        async with response:
            if response.status < 400:
                return
            text = (await response.read()).decode(errors="replace")[:300]
            retry_after = response.headers.get("retry-after")
            if response.status == 401:
                await accounts.refresh_after_401(account)  # the next attempt gets a fresh token
            raise ir.Error(response.status, ir.kind_for_status(response.status),
                           f"{account.label}: cto.new refused the message: {text or response.reason}",
                           retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)

    async def _read(self, socket: aiohttp.ClientWebSocketResponse, refiner: Refiner, chat_id: str, model: str,
                    idle: float, label: str) -> AsyncIterator[ir.Event]:
        merger = BufferMerger()
        indices = {"thinking": 0, "chat": 1}
        opened: set[str] = set()
        for event in refiner.feed(ir.Start(id=f"ctonew-{chat_id}", model=model)):
            yield event
        while True:
            try:
                message = await socket.receive(timeout=idle)
            except TimeoutError:
                yield ir.ErrorEvent(ir.Error(504, "timeout", f"{label}: cto.new sent nothing for {idle:g}s"))
                return
            if message.type != aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                                    aiohttp.WSMsgType.ERROR):
                    yield ir.ErrorEvent(ir.Error(502, "server_error",
                                                 f"{label}: cto.new closed the stream before the turn ended"))
                    return
                continue
            try:
                payload = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                continue
            for raw in _events_of(payload, merger, indices, opened):
                for event in refiner.feed(raw):
                    yield event
                if isinstance(raw, ir.Finish | ir.ErrorEvent):
                    return


def _events_of(payload: Any, merger: BufferMerger, indices: dict[str, int], opened: set[str]) -> list[ir.Event]:
    """IR events for one WebSocket message (a Finish when the turn is over)."""
    if not isinstance(payload, dict):
        return []
    kind = payload.get("type")
    if kind == "state":
        state = payload.get("state")
        if isinstance(state, dict) and state.get("inProgress") is False:
            return [*(ir.PartStop(indices[k]) for k in sorted(opened)), ir.Finish("end_turn", None)]
        return []
    if kind == "error":
        message = payload.get("message") or payload.get("error") or "cto.new reported an error"
        return [ir.ErrorEvent(ir.Error(502, "server_error", f"cto.new: {message}"))]
    if kind != "update":
        return []
    try:
        buffer = orjson.loads(payload.get("buffer") or "")
    except (orjson.JSONDecodeError, TypeError):
        return []
    part = buffer.get("type") if isinstance(buffer, dict) else None
    chat = buffer.get("chat") if isinstance(buffer, dict) else None
    content = chat.get("content") if isinstance(chat, dict) else None
    if part not in indices or not isinstance(content, str):
        return []
    text = merger.new_text(part, content)
    events: list[ir.Event] = []
    if part not in opened:
        opened.add(part)
        events.append(ir.PartStart(indices[part], ir.ThinkingPart() if part == "thinking" else ir.TextPart("")))
    if text:
        events.append(ir.PartDelta(indices[part], text))
    return events


def _http_proxy(proxy: str | None) -> str | None:
    return proxy if proxy and proxy.startswith(("http://", "https://")) else None


PROVIDER = CtonewProvider()
