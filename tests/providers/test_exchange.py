"""A provider that runs its own exchange (``Provider.exchange``): a form-encoded
POST answered with length-prefixed frames, the shape of the web-session
services. The provider lives here in the test tree and is handed to the
server like any registered one; the pipeline's failover, health, accounting
and client encoding must work around it unchanged."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import anthropic
import openai
import orjson
import pytest
import uvicorn

from crossroads import config, ir
from crossroads.providers import all_providers
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import simple_accounts
from crossroads.server import App
from crossroads.transport import Transport
from tests.fakes.common import Scenario
from tests.fakes.framed import COOKIE, PREFIX, FakeFramed
from tests.harness import free_port

MANAGEMENT_KEY = "mgmt"


class FramedProvider(ProviderBase):
    """`framed-web` entries: a cookie, a base URL and the models it serves."""

    config_key: ClassVar[str] = "framed-web"
    dialect: ClassVar[str] = "openai-chat"  # nominal: the exchange yields IR events itself
    default_base_url: ClassVar[str] = "http://127.0.0.1:9"
    owns_exchange: ClassVar[bool] = True

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        return simple_accounts(self, entries)

    async def call(self, account: Account, model: str, stream: bool, client_headers: Mapping[str, str],
                   dialect: str) -> UpstreamCall:
        raise AssertionError("an exchange provider is never asked for a plain call")

    async def exchange(self, account: Account, request: ir.Request, client_headers: Mapping[str, str],
                       transport: Transport) -> AsyncIterator[ir.Event]:
        prompt = " ".join(part.text for message in request.messages for part in message.parts
                          if isinstance(part, ir.TextPart))
        form = urllib.parse.urlencode({"f.req": orjson.dumps([prompt, request.model]).decode()}).encode()
        response = await transport.post(f"{account.base_url}/chat", form, {
            "content-type": "application/x-www-form-urlencoded", "cookie": f"{COOKIE}={account.secret}"})
        try:
            if response.status >= 400:
                retry_after = response.headers.get("retry-after")
                raise ir.Error(response.status, ir.kind_for_status(response.status), await response.text(),
                               retry_after=float(retry_after) if retry_after else None)
            if await response.content.readexactly(len(PREFIX)) != PREFIX:
                raise ir.Error(502, "server_error", "the web service answered without its prefix")
            yield ir.Start(id="framed-1", model=request.model)
            yield ir.PartStart(0, ir.TextPart(""))
            while True:
                length = await response.content.readline()
                if not length:
                    yield ir.ErrorEvent(ir.Error(502, "server_error", f"{account.label} ended mid-answer"))
                    return
                kind, value = orjson.loads(await response.content.readexactly(int(length)))
                await response.content.readline()
                if kind == "text":
                    yield ir.PartDelta(0, value)
                elif kind == "done":
                    yield ir.PartStop(0)
                    yield ir.Finish("end_turn", ir.Usage(input_tokens=value["in"], output_tokens=value["out"]))
                    return
        finally:
            response.close()


@pytest.fixture
def framed() -> Iterator[FakeFramed]:
    with FakeFramed(api_keys=("cookie-a", "cookie-b")) as fake:
        yield fake


class ServedApp:
    def __init__(self, app: App) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the router did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def router(fake: FakeFramed, tmp_path: Path, cookies: list[str]) -> App:
    cfg = config.parse(orjson.dumps({
        "auth-dir": str(tmp_path), "api-keys": ["client-key"], "request-retry": 0,
        "remote-management": {"secret-key": MANAGEMENT_KEY},
        "framed-web": [{"api-key": cookie, "base-url": fake.base_url, "models": ["web-model"]} for cookie in cookies],
    }).decode())
    return App(cfg, providers=[*all_providers(), FramedProvider()])


def test_exchange_serves_every_client_dialect(framed: FakeFramed, tmp_path: Path) -> None:
    with ServedApp(router(framed, tmp_path, ["cookie-a"])) as url:
        chat = openai.OpenAI(base_url=f"{url}/v1", api_key="client-key")
        reply = chat.chat.completions.create(model="web-model", messages=[{"role": "user", "content": "hi there"}])
        assert reply.choices[0].message.content == "echo: hi there"
        assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3)
        streamed = chat.chat.completions.create(model="web-model", stream=True,
                                                messages=[{"role": "user", "content": "stream me"}])
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "echo: stream me"
        claude = anthropic.Anthropic(base_url=url, api_key="client-key")
        with claude.messages.stream(model="web-model", max_tokens=50,
                                    messages=[{"role": "user", "content": "from anthropic"}]) as stream:
            assert stream.get_final_text() == "echo: from anthropic"
    form = urllib.parse.parse_qs(framed.requests[0].raw.decode())
    assert orjson.loads(form["f.req"][0]) == ["hi there", "web-model"]
    assert framed.requests[0].headers["cookie"] == f"{COOKIE}=cookie-a"


def test_exchange_fails_over_before_its_first_event(framed: FakeFramed, tmp_path: Path) -> None:
    framed.push(Scenario.fail(429, "slow down", retry_after=120))
    with ServedApp(router(framed, tmp_path, ["cookie-a", "cookie-b"])) as url:
        chat = openai.OpenAI(base_url=f"{url}/v1", api_key="client-key")
        reply = chat.chat.completions.create(model="web-model", messages=[{"role": "user", "content": "x"}])
        assert reply.choices[0].message.content == "echo: x"
        cooling = asyncio.run(_cooldowns(url))
    assert len(framed.requests) == 2
    assert [row["label"] for row in cooling] == ["framed-web[0]"]
    assert 100 < cooling[0]["seconds_left"] <= 120


def test_exchange_cut_mid_answer_ends_with_an_error_and_cools_the_account(framed: FakeFramed,
                                                                          tmp_path: Path) -> None:
    framed.push(Scenario(text="one two three four", cut_after=2))
    with ServedApp(router(framed, tmp_path, ["cookie-a"])) as url:
        chat = openai.OpenAI(base_url=f"{url}/v1", api_key="client-key")
        received = ""
        with pytest.raises(openai.APIError):
            for chunk in chat.chat.completions.create(model="web-model", stream=True,
                                                      messages=[{"role": "user", "content": "x"}]):
                received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        assert received == "one two "
        cooling = asyncio.run(_cooldowns(url))
    assert [(row["label"], row["model"]) for row in cooling] == [("framed-web[0]", "web-model")]


async def _cooldowns(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(
            f"{url}/v0/management/cooldowns", headers={"X-Management-Key": MANAGEMENT_KEY}) as response:
        assert response.status == 200
        return list((await response.json())["cooldowns"])
