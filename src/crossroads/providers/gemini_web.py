"""Gemini web sessions (auth-file type ``gemini-web``): the Gemini app
(gemini.google.com) with a signed-in browser's cookies, no API key.

The credential is ``__Secure-1PSID`` and ``__Secure-1PSIDTS``
(``crossroads login gemini-web --cookie "__Secure-1PSID=...; __Secure-1PSIDTS=..."``,
or ``--browser firefox`` to read them from a browser profile).
Google expires ``__Secure-1PSIDTS`` within hours, so the refresher rotates it
(``accounts.google.com/RotateCookies``) about every ten minutes and stores the
new value before it is used: a rotated cookie survives a restart. The same
refresh reads the app page's tokens (``SNlM0e`` as the form's ``at``,
``cfb2h`` as the build label, ``FdrFJe`` as the session id).

A request is the app's ``StreamGenerate`` call: a form with ``at`` and
``f.req`` (the prompt in a JSON array inside a JSON array), the model chosen
by the ``x-goog-ext-525001261-jspb`` header as the web app does. The answer is
``)]}'`` followed by length-prefixed JSON frames, each holding the candidate's
text (and thoughts) so far. Error codes in a frame are mapped: usage limit
(1037) cools the model until the limit resets, a blocked IP (1060) takes the
account out with the reason visible, dead cookies need a new login.

Why not the gemini-webapi library: its endpoints are constants of the
library (it cannot be pointed at anything but Google, so it cannot be tested
against a fake), it pins its own HTTP stack (curl_cffi) and pydantic, and it
rediscovers model ids per account at start. Crossroads needs only the three
calls above, written here against the documented shapes.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from crossroads import ir
from crossroads.auth.flows import safe_id
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.spec import LoginResult, OAuthEntry, OAuthSettings, OAuthSpec
from crossroads.auth.tokens import TokenGrant, format_time
from crossroads.credentials.base import Record
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, Outcome, ProviderBase, UpstreamCall, classify
from crossroads.services.flatten import turns
from crossroads.services.refine import Quirks, Refiner
from crossroads.services.tools import emulate
from crossroads.transport import Transport

PSID, PSIDTS = "__Secure-1PSID", "__Secure-1PSIDTS"
ROTATE_EVERY = 600.0  # seconds a page token and a 1PSIDTS are used before the next rotation
MODEL_HEADER = "x-goog-ext-525001261-jspb"
# exposed name -> (model id, capacity tier: 1 basic, 4 plus, 2 advanced); a record's "models" replaces them
MODELS: dict[str, tuple[str, int]] = {
    "gemini-web-pro": ("9d8ca3786ebdfbea", 1),
    "gemini-web-flash": ("fbb127bbb056c959", 1),
    "gemini-web-flash-lite": ("cf41b0e0dd7d53e5", 1),
}
USAGE_LIMIT, IP_BLOCKED, TEMPORARY, MODEL_INCONSISTENT, MODEL_HEADER_INVALID = 1037, 1060, 1013, 1050, 1052
USAGE_LIMIT_COOLDOWN = 3600.0  # the web app does not say when its limit resets
IP_BLOCKED_COOLDOWN = 6 * 3600.0
_PAGE_TOKENS = {"at": "SNlM0e", "bl": "cfb2h", "fsid": "FdrFJe", "email": "oPEP7c"}
_TIMEOUT = aiohttp.ClientTimeout(total=30)


def cookie_header(data: Mapping[str, Any]) -> str:
    return f"{PSID}={data.get('psid', '')}; {PSIDTS}={data.get('psidts', '')}"


def parse_cookie(text: str) -> dict[str, str]:
    pairs = (part.strip().split("=", 1) for part in text.replace("\n", ";").split(";") if "=" in part)
    return {name.strip(): value.strip() for name, value in pairs}


async def page_tokens(base_url: str, cookie: str) -> dict[str, str]:
    """The app page's tokens; OAuthError ``invalid_grant`` when the page is
    not signed in (the cookies are dead)."""
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.get(
                f"{base_url}/app", headers={"cookie": cookie}, allow_redirects=True) as response:
            page = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OAuthError("unreachable", f"Gemini web: {type(exc).__name__}", 503) from None
    if status >= 500:
        raise OAuthError("unreachable", f"Gemini web answered {status}", status)
    found = {key: m.group(1) for key, name in _PAGE_TOKENS.items()
             if (m := re.search(rf'"{name}"\s*:\s*"(.*?)"', page))}
    if not found.get("at"):
        raise OAuthError("invalid_grant", "the Gemini cookies are not signed in any more (log in again)")
    return found


async def rotate(accounts_url: str, cookie: str) -> str | None:
    """A new ``__Secure-1PSIDTS`` (None when Google kept the current one)."""
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.post(
                f"{accounts_url}/RotateCookies", data='[000,"-0000000000000000000"]',
                headers={"content-type": "application/json", "origin": "https://accounts.google.com",
                         "cookie": cookie}) as response:
            status = response.status
            rotated = response.cookies.get(PSIDTS)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OAuthError("unreachable", f"RotateCookies: {type(exc).__name__}", 503) from None
    if status == 401:
        raise OAuthError("invalid_grant", "Google refused to rotate the cookies: they are dead (log in again)",
                         401)
    if status >= 400:
        raise OAuthError("http_error", f"RotateCookies answered {status}", status)
    return rotated.value if rotated is not None and rotated.value else None


class RotateAndRead:
    """The refresh: rotate ``__Secure-1PSIDTS`` (stored first), then read the page tokens."""

    def can_refresh(self, data: Mapping[str, Any]) -> bool:
        return bool(data.get("psid"))

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        rotated = await rotate(token_url, cookie_header(data))
        current = {**data, "psidts": rotated or data.get("psidts", "")}
        found = await page_tokens(entry.settings.base_url, cookie_header(current))
        return TokenGrant(access_token=found["at"], expires_in=ROTATE_EVERY,
                          extra={"psidts": current["psidts"], "bl": found.get("bl", ""),
                                 "fsid": found.get("fsid", "")})


class CookieLogin:
    option: ClassVar[str] = "cookie"

    async def run(self, entry: OAuthEntry, options: Mapping[str, Any]) -> list[LoginResult]:
        cookies = parse_cookie(str(options.get("cookie") or ""))
        if not cookies.get(PSID) or not cookies.get(PSIDTS):
            raise LoginError(f"paste both {PSID} and {PSIDTS} from a browser signed in to gemini.google.com, "
                             f'e.g. --cookie "{PSID}=...; {PSIDTS}=..."')
        data: dict[str, Any] = {"type": "gemini-web", "psid": cookies[PSID], "psidts": cookies[PSIDTS]}
        try:
            found = await page_tokens(entry.settings.base_url, cookie_header(data))
        except OAuthError as exc:
            raise LoginError(f"Gemini web refused the cookies: {exc}") from None
        data.update(access_token=found["at"], bl=found.get("bl", ""), fsid=found.get("fsid", ""),
                    email=found.get("email", ""), expired=format_time(time.time() + ROTATE_EVERY))
        return [LoginResult(safe_id("gemini-web", data["email"] or cookies[PSID][-8:]), data)]


class BrowserImport:
    """The two cookies read from a browser profile's cookie store (with
    browser-cookie3, the ``browser-cookies`` extra), then checked like pasted ones."""

    option: ClassVar[str] = "browser"

    async def run(self, entry: OAuthEntry, options: Mapping[str, Any]) -> list[LoginResult]:
        try:
            import browser_cookie3
        except ImportError:
            raise LoginError("reading a browser profile needs browser-cookie3: "
                             "pip install 'crossroads[browser-cookies]'") from None
        name = str(options.get("browser") or "").lower()
        loader = getattr(browser_cookie3, name, None) if name.isidentifier() else None
        if loader is None or name in ("load", "create_cookie"):
            raise LoginError(f"unknown browser {name!r}; try firefox, chrome, chromium, edge or brave")
        try:
            jar = loader(cookie_file=options.get("cookie_file"), domain_name=".google.com")
        except Exception as exc:  # the library's errors are its own (locked profile, no keyring...)
            raise LoginError(f"cannot read the {name} cookies: {exc}") from None
        found = {c.name: c.value for c in jar if c.name in (PSID, PSIDTS) and c.value}
        return await CookieLogin().run(entry, {"cookie": "; ".join(f"{k}={v}" for k, v in found.items())})


OAUTH = OAuthSpec(
    "gemini-web",
    OAuthSettings("gemini-web", token_url="https://accounts.google.com", base_url="https://gemini.google.com",
                  lead=60.0),
    login_names=("gemini-web",),
    imports=(CookieLogin(), BrowserImport()),
    refresh=RotateAndRead(),
    options=frozenset({"cookie", "browser", "cookie_file"}),
)


def prompt_of(request: ir.Request) -> str:
    """The conversation as one message (a lone question goes as it is)."""
    found = turns(request)
    if len(found) == 1 and found[0][0] == "user":
        return found[0][1]
    return "\n\n".join(f"{role.capitalize()}: {text}" for role, text in found)


def request_form(at: str, prompt: str) -> tuple[bytes, str]:
    """The StreamGenerate form and the request's uuid."""
    inner: list[Any] = [None] * 81
    inner[0] = [prompt, 0, None, None, None, None, 0]
    inner[1] = ["en"]
    inner[2] = ["", "", "", None, None, None, None, None, None, ""]
    inner[6] = [1]
    inner[7] = 1  # stream
    tag = str(uuid.uuid4()).upper()
    inner[59] = tag
    f_req = json.dumps([None, json.dumps(inner, separators=(",", ":"))], separators=(",", ":"))
    return urllib.parse.urlencode({"at": at, "f.req": f_req}).encode(), tag


class FrameReader:
    """``)]}'`` then frames of ``<length>\\n<json>``: the JSON values, as
    they complete (the length is not trusted; the JSON is)."""

    def __init__(self) -> None:
        self.buffer = ""
        self.decoder = json.JSONDecoder()

    def feed(self, text: str) -> list[Any]:
        self.buffer += text
        if self.buffer.startswith(")]}'"):
            self.buffer = self.buffer[4:]
        values: list[Any] = []
        while True:
            stripped = self.buffer.lstrip()
            newline = stripped.find("\n")
            if newline < 0 or not stripped[:newline].strip().isdigit():
                return values
            try:
                value, end = self.decoder.raw_decode(stripped, newline + 1)
            except ValueError:
                return values  # the rest of the frame has not arrived
            values.append(value)
            self.buffer = stripped[end:]


def _at(data: Any, *path: int) -> Any:
    for key in path:
        if not isinstance(data, list) or not -len(data) <= key < len(data):
            return None
        data = data[key]
    return data


def gemini_error(code: int) -> ir.Error:
    if code == USAGE_LIMIT:
        return ir.Error(429, "rate_limit", "Gemini web: the account reached its usage limit (1037)",
                        retry_after=USAGE_LIMIT_COOLDOWN, code="usage_limit")
    if code == IP_BLOCKED:
        return ir.Error(403, "permission", "Gemini web: this IP address is temporarily blocked (1060)",
                        retry_after=IP_BLOCKED_COOLDOWN, code="ip_blocked")
    if code in (MODEL_INCONSISTENT, MODEL_HEADER_INVALID):
        return ir.Error(404, "not_found", f"Gemini web: this account cannot use the model ({code})",
                        code="model_unavailable")
    return ir.Error(503, "overloaded", f"Gemini web: temporary error ({code})")


class GeminiWebProvider(ProviderBase):
    billing: ClassVar[str] = "subscription"
    config_key: ClassVar[str] = "gemini-web"
    entry_keys: ClassVar[Mapping[str, Any] | None] = None  # logins are auth files, not config entries
    dialect: ClassVar[str] = "openai-chat"  # nominal: the exchange yields IR events itself
    default_base_url: ClassVar[str] = "https://gemini.google.com"
    auth_types: ClassVar[tuple[str, ...]] = ("gemini-web",)
    owns_exchange: ClassVar[bool] = True
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def catalogue(self) -> list[str]:
        return list(MODELS)

    def models_of(self, data: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
        custom = data.get("models")
        if isinstance(custom, dict) and custom:
            return {str(name): (str(spec[0]), int(spec[1])) if isinstance(spec, list) else (str(spec), 1)
                    for name, spec in custom.items()}
        return MODELS

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        if not record.data.get("psid"):
            raise ValueError("the gemini-web credential has no __Secure-1PSID (log in again)")
        return accounts.oauth_account(self, record, list(self.models_of(record.data)), ctx)

    def classify(self, error: ir.Error) -> Outcome:
        if error.code == "usage_limit":
            return Outcome(retry=True, scope="model", seconds=error.retry_after)
        if error.code == "ip_blocked":  # the whole account is out until Google lifts the block
            return Outcome(retry=True, scope="credential", seconds=error.retry_after)
        return classify(error)

    async def call(self, account: Account, model: str, stream: bool, client_headers: Mapping[str, str],
                   dialect: str) -> UpstreamCall:
        raise NotImplementedError("Gemini web runs its own exchange")

    async def exchange(self, account: Account, request: ir.Request, client_headers: Mapping[str, str],
                       transport: Transport) -> AsyncIterator[ir.Event]:
        request, tool_names = emulate(request)
        at = await accounts.bearer(account)
        data = accounts.extra(account)
        model_id, tier = self.models_of(data).get(request.model, ("", 1))
        form, tag = request_form(at, prompt_of(request))
        query = urllib.parse.urlencode({"bl": data.get("bl", ""), "f.sid": data.get("fsid", ""), "hl": "en",
                                        "_reqid": random.randint(10000, 99999), "rt": "c"})
        headers = {"content-type": "application/x-www-form-urlencoded;charset=utf-8",
                   "origin": "https://gemini.google.com", "referer": "https://gemini.google.com/",
                   "x-same-domain": "1", "cookie": cookie_header(data),
                   MODEL_HEADER: f'[1,null,null,null,"{model_id}",null,null,0,[4],null,null,{tier}]',
                   "x-goog-ext-525005358-jspb": f'["{tag}",1]'}
        url = f"{account.base_url}/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate?{query}"
        try:
            response = await transport.post(url, form, headers, account.proxy_url, account.timeouts)
        except TimeoutError:
            raise ir.Error(504, "timeout", f"{account.label}: Gemini web did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise ir.Error(502, "server_error", f"{account.label}: cannot reach Gemini web "
                                                f"({type(exc).__name__})") from None
        try:
            if response.status != 200:
                if response.status in (401, 403):
                    await accounts.refresh_after_401(account)
                raise ir.Error(response.status, ir.kind_for_status(response.status),
                               f"{account.label}: Gemini web answered {response.status}")
            refiner = Refiner(Quirks(usage_known=False, label=account.label), tool_names)
            async for event in self._read(response, refiner, request.model):
                yield event
                if isinstance(event, ir.ErrorEvent):
                    return
        finally:
            response.close()

    async def _read(self, response: aiohttp.ClientResponse, refiner: Refiner, model: str
                    ) -> AsyncIterator[ir.Event]:
        reader = FrameReader()
        seen = {"thinking": "", "text": ""}
        indices = {"thinking": 0, "text": 1}
        for event in refiner.feed(ir.Start(id=f"gemini-web-{uuid.uuid4().hex[:12]}", model=model)):
            yield event
        async for chunk in response.content.iter_any():
            for frame in reader.feed(chunk.decode(errors="replace")):
                for raw in _frame_events(frame, seen, indices):
                    for event in refiner.feed(raw):
                        yield event
                    if isinstance(raw, ir.ErrorEvent):
                        return
        for event in refiner.feed(ir.Finish("end_turn", None)):
            yield event


def _frame_events(frame: Any, seen: dict[str, str], indices: dict[str, int]) -> list[ir.Event]:
    """The new text and thoughts in one frame (each frame holds all so far)."""
    events: list[ir.Event] = []
    for part in frame if isinstance(frame, list) else []:
        code = _at(part, 5, 2, 0, 1, 0)
        if isinstance(code, int):
            return [ir.ErrorEvent(gemini_error(code))]
        body = _at(part, 2)
        if _at(part, 0) != "wrb.fr" or not isinstance(body, str):
            continue
        try:
            inner = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        candidate = _at(inner, 4, 0)
        for kind, value in (("thinking", _at(candidate, 37, 0, 0)), ("text", _at(candidate, 1, 0))):
            if not isinstance(value, str) or not value.startswith(seen[kind]) or value == seen[kind]:
                continue
            if not seen[kind]:
                part_type = ir.ThinkingPart() if kind == "thinking" else ir.TextPart("")
                events.append(ir.PartStart(indices[kind], part_type))
            events.append(ir.PartDelta(indices[kind], value[len(seen[kind]):]))
            seen[kind] = value
    return events


PROVIDER = GeminiWebProvider()
