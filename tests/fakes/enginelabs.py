"""A fake of EngineLabs' agent API (api.enginelabs.ai), which cto.new's web
app talks to:

- ``WS /engine-agent/chat-histories/{id}/buffer/stream?token={user id}``:
  the chat's buffer stream, opened before the message is sent;
- ``POST /engine-agent/chat`` with ``Authorization: Bearer <Clerk JWT>``,
  ``Origin: https://cto.new``, ``Referer: https://cto.new/{id}`` and
  ``{prompt, chatHistoryId, adapterName}``: accepted (200), then the answer
  arrives on the chat's stream as ``{"type": "update", "buffer": "<json>"}``
  messages whose buffer is ``{"type": "chat"|"thinking", "chat": {"content"}}``
  (the text so far when ``snapshots`` is set, else each new piece), ending
  with ``{"type": "state", "state": {"inProgress": false}}``.

A scenario's ``cut_after`` closes the stream after that many messages,
``chunk_delay`` paces them (a long one stalls the stream), and an error is
the POST's HTTP status.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from .clerk import ORIGIN, verify
from .common import FakeError, FakeServer, Scenario, json_response, pause, split_text

ADAPTERS = ("ClaudeSonnet4_5", "GPT5")


class FakeEngineLabs(FakeServer):
    kind = "enginelabs"

    def __init__(self, *, snapshots: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshots = snapshots
        self.sockets: dict[str, tuple[str, web.WebSocketResponse]] = {}
        self.prompts: list[str] = []
        self.chats: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/engine-agent/chat-histories/{chat}/buffer/stream", self._stream)
        app.router.add_post("/engine-agent/chat", self._chat)

    def error_response(self, error: FakeError) -> web.Response:
        headers = {"Retry-After": f"{error.retry_after:g}"} if error.retry_after is not None else None
        return json_response({"message": error.message}, status=error.status, headers=headers)

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets[request.match_info["chat"]] = (request.query.get("token", ""), socket)
        async for message in socket:  # the client sends nothing; this waits for the close
            if message.type == WSMsgType.ERROR:
                break
        return socket

    async def _chat(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        claims = verify(authorization[7:]) if authorization.startswith("Bearer ") else None
        if claims is None:
            return self.error_response(FakeError(401, "Unauthorized: invalid or expired token"))
        body = await request.json()
        chat = body.get("chatHistoryId") if isinstance(body, dict) else None
        if request.headers.get("Origin") != ORIGIN or request.headers.get("Referer") != f"{ORIGIN}/{chat}":
            return self.error_response(FakeError(403, "Forbidden origin"))
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return self.error_response(FakeError(400, "prompt is required"))
        if body.get("adapterName") not in ADAPTERS:
            return self.error_response(FakeError(400, f"unknown adapter {body.get('adapterName')!r}"))
        opened = self.sockets.get(str(chat))
        if opened is None or opened[0] != claims["sub"]:
            return self.error_response(FakeError(409, "no buffer stream is open for this chat"))
        scenario, failure = await self.scripted()
        if failure is not None:
            return failure
        self.prompts.append(body["prompt"])
        self.chats.append(str(chat))
        task = asyncio.create_task(self._answer(opened[1], body["prompt"], scenario))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return json_response({"ok": True, "chatHistoryId": chat})

    def _messages(self, prompt: str, scenario: Scenario | None) -> list[dict[str, Any]]:
        last = prompt.rsplit("user:\n", 1)[-1]
        if scenario is not None and scenario.sets_content():
            text, thinking = scenario.text or "", scenario.thinking
        else:
            text, thinking = _reply(prompt, last), f"Thinking about: {last[:80]}"
        out = []
        for kind, whole in (("thinking", thinking or ""), ("chat", text)):
            so_far = ""
            for piece in split_text(whole):
                so_far += piece
                content = so_far if self.snapshots else piece
                buffer = orjson.dumps({"type": kind, "chat": {"content": content}}).decode()
                out.append({"type": "update", "buffer": buffer})
        out.append({"type": "state", "state": {"inProgress": False}})
        return [{"type": "state", "state": {"inProgress": True}}, *out]

    async def _answer(self, socket: web.WebSocketResponse, prompt: str, scenario: Scenario | None) -> None:
        cut = scenario.cut_after if scenario is not None else None
        for number, message in enumerate(self._messages(prompt, scenario)):
            if cut is not None and number >= cut:
                break
            await pause(scenario.chunk_delay if scenario is not None else 0.0)
            if socket.closed:
                return
            await socket.send_str(orjson.dumps(message).decode())
        await socket.close()


def _reply(prompt: str, last: str) -> str:
    """A model following the prompt: an emulated tool call when asked, the tool's result when shown."""
    if "<tool_result" in last:
        return "Tool result received: " + last.split(">", 1)[1].split("</tool_result>", 1)[0]
    if "CALL_TOOL" in last and "<tool_call>" in prompt and "\n- " in prompt:
        name = prompt.split("\n- ", 1)[1].split(":", 1)[0]
        call = orjson.dumps({"name": name, "arguments": {"city": "x"}}).decode()
        return f"<tool_call>{call}</tool_call>"
    return f"Hello from cto.new. You said: {last.strip()[:200]}"
