"""A fake web-chat service with a non-JSON exchange, for providers that run
their own exchange (``Provider.exchange``).

Its protocol is shaped like the web-session services (Gemini web and the
like): a form-encoded POST whose ``f.req`` field holds a JSON array
``[prompt, model]``, answered with an anti-XSSI prefix line and then
length-prefixed frames (a decimal length line, then that many bytes of JSON)::

    )]}'
    27
    ["text", "Hello from the "]
    ...
    ["done", {"in": 12, "out": 5}]

Errors before the first frame are HTTP errors (429 with Retry-After, 401
with a bad cookie); a scenario may cut the reply after some frames.
"""

from __future__ import annotations

import urllib.parse

import orjson
from aiohttp import web

from tests.fakes.common import FakeError, FakeServer, pause

PREFIX = b")]}'\n"
COOKIE = "__Secure-1PSID"


def frame(payload: object) -> bytes:
    data = orjson.dumps(payload)
    return str(len(data)).encode() + b"\n" + data


class FakeFramed(FakeServer):
    kind = "framed"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/chat", self.chat)

    def error_response(self, error: FakeError) -> web.Response:
        headers = {"retry-after": str(int(error.retry_after))} if error.retry_after is not None else {}
        return web.Response(status=error.status, text=error.message or "error", headers=headers)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE, "")
        if cookie not in self.api_keys:
            return web.Response(status=401, text="sign in again")
        if request.content_type != "application/x-www-form-urlencoded":
            return web.Response(status=400, text="form body expected")
        form = urllib.parse.parse_qs((await request.read()).decode())
        try:
            prompt, model = orjson.loads(form["f.req"][0])
        except (KeyError, ValueError, TypeError):
            return web.Response(status=400, text="f.req must be a JSON array [prompt, model]")
        if not isinstance(prompt, str) or not isinstance(model, str):
            return web.Response(status=400, text="f.req must hold a prompt and a model name")
        scenario, failure = await self.scripted()
        if failure is not None:
            return failure
        words = (scenario.text if scenario is not None and scenario.text else f"echo: {prompt}").split(" ")
        frames = [frame(["text", word + (" " if i < len(words) - 1 else "")]) for i, word in enumerate(words)]
        frames.append(frame(["done", {"in": len(prompt.split()), "out": len(words)}]))
        cut_after = scenario.cut_after if scenario is not None else None
        response = web.StreamResponse(headers={"content-type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(PREFIX)
        for number, data in enumerate(frames):
            if cut_after is not None and number >= cut_after:
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(data + b"\n")
            await pause(scenario.chunk_delay if scenario is not None else 0.0)
        await response.write_eof()
        return response
