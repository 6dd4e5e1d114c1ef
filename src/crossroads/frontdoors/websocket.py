"""WebSocket front doors (the Responses API over WebSocket, used by Codex)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossroads.http import Receive, Scope, Send

if TYPE_CHECKING:
    from crossroads.server import App


async def serve(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1003})
