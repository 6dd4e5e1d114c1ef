"""A fake of the Gemini web app (gemini.google.com) and of Google's cookie
rotation (accounts.google.com), the calls a web-session client makes:

- ``GET /app`` with ``__Secure-1PSID`` and ``__Secure-1PSIDTS``: the app page,
  whose ``WIZ_global_data`` holds ``SNlM0e`` (the form token), ``cfb2h`` (the
  build label), ``FdrFJe`` (the session id) and ``oPEP7c`` (the email). With
  unknown or stale cookies the page is the signed-out one, without ``SNlM0e``.
- ``POST /RotateCookies`` with body ``[000,"-0000000000000000000"]``: a new
  ``__Secure-1PSIDTS`` in ``Set-Cookie`` (the previous one stays valid for a
  while, the one before is dead); a 401 for a dead ``__Secure-1PSID``.
- ``POST /_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate``
  with ``bl``, ``f.sid``, ``_reqid``, ``rt=c``, ``X-Same-Domain: 1``, a model
  header naming a known model id, and a form ``at`` + ``f.req``: ``)]}'`` and
  length-prefixed frames ``[["wrb.fr", null, "<inner json>"]]`` whose
  candidate holds the text so far at ``[1][0]`` and the thoughts so far at
  ``[37][0][0]``. A scripted error whose ``type`` is a Gemini error code
  (``"1037"`` usage limit, ``"1060"`` IP blocked, ...) comes back as a frame
  with the code at ``[5][2][0][1][0]``.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from typing import Any

from aiohttp import web

from .common import FakeError, FakeServer, Scenario, pause, split_text

MODEL_IDS = {"9d8ca3786ebdfbea": "pro", "fbb127bbb056c959": "flash", "cf41b0e0dd7d53e5": "flash-lite"}
BUILD_LABEL = "boq_assistant-bard-web-server_20261201.08_p0"
SESSION_ID = "-4711471147114711"
GENERATE = "/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate"


class FakeGeminiWeb(FakeServer):
    """``api_keys`` are the known ``__Secure-1PSID`` values; each starts with
    ``__Secure-1PSIDTS`` = ``ts-<psid>-0``."""

    kind = "gemini-web"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generation = {psid: 0 for psid in self.api_keys}  # the 1PSIDTS generation of each account
        self.dead: set[str] = set()
        self.rotations = 0
        self.prompts: list[str] = []
        self.models: list[str] = []
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self.at_tokens: dict[str, str] = {}

    @staticmethod
    def psidts(psid: str, generation: int) -> str:
        return f"ts-{psid}-{generation}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/app", self._app)
        app.router.add_post("/RotateCookies", self._rotate)
        app.router.add_post(GENERATE, self._generate)

    def error_response(self, error: FakeError) -> web.Response:
        return web.Response(status=error.status, text=error.message)

    def _signed_in(self, request: web.Request) -> str | None:
        psid = request.cookies.get("__Secure-1PSID", "")
        if psid not in self.generation or psid in self.dead:
            return None
        current = self.generation[psid]
        ts = request.cookies.get("__Secure-1PSIDTS", "")
        return psid if ts in (self.psidts(psid, current), self.psidts(psid, current - 1)) else None

    async def _app(self, request: web.Request) -> web.Response:
        psid = self._signed_in(request)
        if psid is None:
            return web.Response(text="<html><script>window.WIZ_global_data = {\"qwAQke\":\"BardChatUi\"};"
                                     "</script>Sign in</html>", content_type="text/html")
        with self._lock:
            token = f"at-{psid}-{next(self._tokens)}"
            self.at_tokens[psid] = token
        data = {"SNlM0e": token, "cfb2h": BUILD_LABEL, "FdrFJe": SESSION_ID, "oPEP7c": f"{psid}@gmail.com"}
        page_data = json.dumps(data, separators=(",", ":"))  # the page's own compact JSON
        return web.Response(text=f"<html><script>window.WIZ_global_data = {page_data};</script></html>",
                            content_type="text/html")

    async def _rotate(self, request: web.Request) -> web.Response:
        psid = request.cookies.get("__Secure-1PSID", "")
        if psid not in self.generation or psid in self.dead or self._signed_in(request) is None:
            return web.Response(status=401, text="Unauthorized")
        if await request.text() != '[000,"-0000000000000000000"]':
            return web.Response(status=400, text="bad rotation body")
        self.rotations += 1
        self.generation[psid] += 1
        response = web.Response(text=")]}'\n[]")
        response.set_cookie("__Secure-1PSIDTS", self.psidts(psid, self.generation[psid]), secure=True)
        return response

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        psid = self._signed_in(request)
        if psid is None:
            return web.Response(status=401, text="Unauthorized")
        query = request.query
        if query.get("bl") != BUILD_LABEL or query.get("f.sid") != SESSION_ID or query.get("rt") != "c" \
                or not query.get("_reqid", "").isdigit() or request.headers.get("X-Same-Domain") != "1":
            return web.Response(status=400, text="bad request parameters")
        form = urllib.parse.parse_qs((await request.read()).decode())
        if form.get("at", [""])[0] != self.at_tokens.get(psid):
            return web.Response(status=400, text="bad at token")
        try:
            outer = json.loads(form["f.req"][0])
            inner = json.loads(outer[1])
            prompt = inner[0][0]
            header = json.loads(request.headers["x-goog-ext-525001261-jspb"])
        except (KeyError, IndexError, TypeError, ValueError):
            return web.Response(status=400, text="f.req and the model header are required")
        if header[4] not in MODEL_IDS:
            return self._frames(request, [_error_frame(1052)])
        self.prompts.append(prompt)
        self.models.append(MODEL_IDS[header[4]])
        scenario, failure = await self.scripted_frames()
        if failure is not None:
            return await self._stream(request, [failure], None)
        return await self._stream(request, self._answer(prompt, scenario), scenario)

    async def scripted_frames(self) -> tuple[Scenario | None, list[Any] | None]:
        scenario = self.next_scenario()
        if scenario is None:
            return None, None
        await pause(scenario.delay)
        if scenario.error is not None and scenario.error.type and scenario.error.type.isdigit():
            return scenario, _error_frame(int(scenario.error.type))
        return scenario, None

    def _answer(self, prompt: str, scenario: Scenario | None) -> list[Any]:
        last = prompt.rsplit("User: ", 1)[-1]
        if scenario is not None and scenario.sets_content():
            text, thoughts = scenario.text or "", scenario.thinking
        elif "<tool_result" in last:
            text, thoughts = "Tool result received: " + last.split(">", 1)[1].split("</tool_result>")[0], None
        elif "CALL_TOOL" in last and "<tool_call>" in prompt and "\n- " in prompt:
            name = prompt.split("\n- ", 1)[1].split(":", 1)[0]
            text, thoughts = f'<tool_call>{{"name": "{name}", "arguments": {{"city": "x"}}}}</tool_call>', None
        else:
            text, thoughts = f"Hello from Gemini web. You said: {last[:200]}", f"Thinking about: {last[:80]}"
        frames = []
        thought_so_far = ""
        for piece in split_text(thoughts or ""):
            thought_so_far += piece
            frames.append(_answer_frame("", thought_so_far))
        text_so_far = ""
        for piece in split_text(text):
            text_so_far += piece
            frames.append(_answer_frame(text_so_far, thought_so_far or None))
        return frames

    def _frames(self, request: web.Request, frames: list[Any]) -> web.Response:
        return web.Response(text=")]}'\n\n" + "".join(_framed(f) for f in frames))

    async def _stream(self, request: web.Request, frames: list[Any], scenario: Scenario | None) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/json; charset=utf-8"})
        await response.prepare(request)
        await response.write(b")]}'\n\n")
        cut = scenario.cut_after if scenario is not None else None
        for number, frame in enumerate(frames):
            if cut is not None and number >= cut:
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write(_framed(frame).encode())
            await pause(scenario.chunk_delay if scenario is not None else 0.0)
        await response.write_eof()
        return response


def _framed(frame: Any) -> str:
    text = json.dumps(frame)
    return f"{len(text)}\n{text}\n"


def _answer_frame(text: str, thoughts: str | None) -> list[Any]:
    candidate: list[Any] = [None] * 38
    candidate[0] = "rc_fake"
    candidate[1] = [text]
    if thoughts is not None:
        candidate[37] = [[thoughts]]
    inner = [None, ["c_fake", "r_fake"], None, None, [candidate]]
    return [["wrb.fr", None, json.dumps(inner)]]


def _error_frame(code: int) -> list[Any]:
    return [["wrb.fr", None, None, None, None, [4, None, [["type.googleapis.com/assistant.boq.bard.application"
                                                         ".BardErrorInfo", [code]]]]]]
