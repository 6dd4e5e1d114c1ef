"""A loopback webhook receiver: records every JSON body POSTed to any path
(``/json``, ``/slack``, ``/discord``...), as Slack's and Discord's incoming
webhooks would receive them, and checks their documented shapes."""

from __future__ import annotations

import threading
import time
from typing import Any

from aiohttp import web

from .common import FakeServer


class FakeWebhooks(FakeServer):
    kind = "webhook"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: list[tuple[str, dict[str, Any], dict[str, str]]] = []  # (path, body, headers)
        self._received_lock = threading.Lock()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{hook}", self._hook)

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid JSON")
        path = request.path
        # Slack needs "text" (or blocks); Discord needs "content" (or embeds), 2000 characters at most
        if path == "/slack" and not isinstance(body.get("text"), str):
            return web.Response(status=400, text="missing_text_or_fallback_or_attachments")
        if path == "/discord" and (not isinstance(body.get("content"), str) or len(body["content"]) > 2000):
            return web.json_response({"message": "Cannot send an empty message", "code": 50006}, status=400)
        with self._received_lock:
            self.received.append((path, body, dict(request.headers)))
        return web.Response(status=204 if path == "/discord" else 200, text="" if path == "/discord" else "ok")

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._received_lock:
            return [body for p, body, _ in self.received if p == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.bodies(path))} bodies, expected {count}: {self.received}")
            time.sleep(0.05)
        return self.bodies(path)
