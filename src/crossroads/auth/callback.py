"""The local redirect catcher and the parser of pasted redirects.

The browser lands on ``http://localhost:{port}{path}?code=...&state=...``;
:class:`CallbackServer` answers with a short page and hands the query to the
waiting flow. Without a browser the user pastes the redirect URL, or
``code#state`` (as a provider's code page shows it), or the bare code.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crossroads.auth.oauth import LoginError

if TYPE_CHECKING:
    from aiohttp import web

DONE_PAGE = (b"<!doctype html><title>Crossroads</title><body style='font-family:sans-serif'>"
             b"<h2>Login complete</h2><p>You can close this window and return to the terminal.</p>")
FAILED_PAGE = (b"<!doctype html><title>Crossroads</title><body style='font-family:sans-serif'>"
               b"<h2>Login failed</h2><p>Return to the terminal for details.</p>")


@dataclass(frozen=True, slots=True)
class Redirect:
    code: str
    state: str | None
    error: str | None = None


def parse_redirect(text: str) -> Redirect:
    """A redirect URL, a query string, ``code#state`` or a bare code."""
    text = text.strip()
    if not text:
        raise LoginError("nothing was pasted: paste the full redirect URL (or the code shown)")
    if "?" in text or text.startswith(("code=", "error=")) or "&state=" in text:
        query = text.split("?", 1)[1] if "?" in text else text
        params = dict(urllib.parse.parse_qsl(query.split("#", 1)[0]))
        if params.get("error"):
            return Redirect("", params.get("state"), f"{params['error']}: {params.get('error_description', '')}")
        if not params.get("code"):
            raise LoginError("the pasted URL carries no 'code' parameter")
        return Redirect(params["code"], params.get("state"))
    code, _, state = text.partition("#")
    return Redirect(code, state or None)


CALLBACK_HOST_ENV = "CROSSROADS_CALLBACK_HOST"  # where the login redirect is listened for


class CallbackServer:
    """Listens on 127.0.0.1:``port`` for one redirect to ``path``."""

    def __init__(self, port: int, path: str) -> None:
        self.port = port
        self.path = path
        self._result: asyncio.Future[Redirect] | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> CallbackServer:
        # aiohttp's server half (2 MB resident) is loaded by the first login, not by every server
        from aiohttp import web

        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # in a container the published port must reach it: the image sets 0.0.0.0 (see Dockerfile)
        site = web.TCPSite(self._runner, os.environ.get(CALLBACK_HOST_ENV) or "127.0.0.1", self.port)
        try:
            await site.start()
        except OSError as exc:
            await self.close()
            raise LoginError(f"cannot listen on localhost:{self.port} for the login redirect ({exc.strerror}); "
                             "free the port, pass --port, or use --no-browser") from None
        if self.port == 0 and site._server is not None:  # tests: any free port
            sockets = getattr(site._server, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        params = request.query
        result = self._result
        if result is None or result.done():
            return web.Response(status=409, text="this login was already completed")
        if params.get("error"):
            result.set_result(Redirect("", params.get("state"),
                                       f"{params['error']}: {params.get('error_description', '')}"))
            return web.Response(body=FAILED_PAGE, content_type="text/html", status=400)
        if not params.get("code"):
            return web.Response(status=400, text="missing code")
        result.set_result(Redirect(params["code"], params.get("state")))
        return web.Response(body=DONE_PAGE, content_type="text/html")

    async def wait(self, timeout: float = 300.0) -> Redirect:
        assert self._result is not None, "start() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise LoginError(f"no login redirect arrived within {timeout:.0f}s") from None

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
