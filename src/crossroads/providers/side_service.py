"""The common part of the providers for side services: OpenAI-compatible
programs next to Crossroads (configured by ``endpoint``), whose models are
exposed as ``<prefix><model>`` and sent as ``<model>``.

Such a provider runs its own exchange so that it can hold the service's
queue slot for the whole reply, read its quirky replies (one JSON object
where a stream was asked for, a stream cut before ``[DONE]``) and refine
them (inline reasoning, errors written as text, tool calls emulated for a
service without tools, usage it cannot count). Its health, model list, queue
and child process live on the runtime (``crossroads.services``); an
account only points at its service.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from crossroads import dialects, ir
from crossroads.assemble import events_for
from crossroads.config import Timeouts
from crossroads.providers.base import Account, AccountContext, ModelRoute, Outcome, ProviderBase, UpstreamCall
from crossroads.services import spec as specs
from crossroads.services.book import SERVICE_DOWN, Service, SideServices
from crossroads.services.gate import QUEUE_FULL, QUEUE_TIMEOUT
from crossroads.services.refine import Refiner
from crossroads.services.tools import emulate, wants_tools
from crossroads.transport import Transport, iter_sse_batches

CHAT = dialects.get("openai-chat")
_OWN_ERRORS = (SERVICE_DOWN, QUEUE_FULL, QUEUE_TIMEOUT)  # about the service's state, not an account's


class SideServiceProvider(ProviderBase):
    config_key: ClassVar[str]
    dialect: ClassVar[str] = "openai-chat"
    default_base_url: ClassVar[str] = "http://127.0.0.1"
    owns_exchange: ClassVar[bool] = True
    config_mapping: ClassVar[bool] = True  # ``ai-studio-proxy: {enabled, endpoint}`` as the design writes it
    service: ClassVar[str]  # what people call the service
    defaults: ClassVar[specs.Defaults]
    chat_path: ClassVar[str] = "/v1/chat/completions"

    # ------------------------------------------------------------------ config

    def entries(self, entries: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], specs.Defaults]]:
        """(name, entry, defaults) per configured service; one mapping by default."""
        return [(self.config_key if len(entries) == 1 else f"{self.config_key}[{i}]", entry, self.defaults)
                for i, entry in enumerate(entries)]

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        services = ctx.services if ctx.services is not None else SideServices(Transport(Timeouts()))
        accounts = []
        for name, entry, defaults in self.entries(entries):
            if not specs.enabled(entry):
                continue
            spec = specs.parse(entry, name, defaults, self.service)
            accounts.append(self.account(spec, services.handle(spec)))
        return accounts

    def account(self, spec: specs.ServiceSpec, service: Service) -> Account:
        digest = hashlib.sha256(spec.endpoint.encode()).hexdigest()[:12]
        listed = not service.down
        return Account(id=f"{spec.name}#{digest}", provider=self, secret=spec.api_key or "",
                       base_url=spec.endpoint, label=spec.name, headers=dict(spec.headers),
                       proxy_url=spec.proxy_url, timeouts=spec.timeouts, params={"service": service},
                       routes={spec.prefix + m: ModelRoute(m, spec.prefix + m, listed) for m in service.models})

    def classify(self, error: ir.Error) -> Outcome:
        if error.code in _OWN_ERRORS:  # the service's own state decides when it is back, not a cooldown
            return Outcome(retry=True, scope="none")
        return super().classify(error)

    async def call(self, account: Account, model: str, stream: bool, client_headers: Mapping[str, str],
                   dialect: str) -> UpstreamCall:
        raise NotImplementedError("side services run their own exchange")

    # ------------------------------------------------------------------ hooks

    def credential_headers(self, spec: specs.ServiceSpec) -> dict[str, str]:
        return {"authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}

    def shape(self, request: ir.Request, body: dict[str, Any]) -> dict[str, Any]:
        """Body edits the service needs."""
        return body

    # ------------------------------------------------------------------ the exchange

    async def exchange(self, account: Account, request: ir.Request, client_headers: Mapping[str, str],
                       transport: Transport) -> AsyncIterator[ir.Event]:
        service: Service = account.params["service"]
        spec = service.spec
        service.check_up()
        if spec.tools == "reject" and wants_tools(request):
            raise ir.Error(400, "invalid_request",
                           f"model {spec.prefix}{request.model} cannot call tools: {spec.label} has no tool "
                           "calling (its entry says 'tools: reject')", param="tools", code="tools_not_supported")
        tool_names: set[str] | None = None
        if spec.tools == "emulated":
            request, tool_names = emulate(request)
        body = orjson.dumps(self.shape(request, CHAT.render_request(request)))
        headers = {"content-type": "application/json", "accept": "text/event-stream",
                   **self.credential_headers(spec), **account.headers}
        async with service.gate.slot():
            try:
                response = await transport.post(spec.endpoint + self.chat_path, body, headers, spec.proxy_url,
                                                spec.timeouts)
            except aiohttp.ClientConnectionError as exc:
                service.suspect()
                raise ir.Error(502, "server_error", f"cannot reach {spec.label} ({type(exc).__name__})") from None
            except TimeoutError:
                raise ir.Error(504, "timeout", f"{spec.label} did not answer in time") from None
            try:
                if response.status >= 400:
                    raise await self._error(response, service)
                refiner = Refiner(spec.quirks, tool_names)
                async for event in self._events(response, spec):
                    for out in refiner.feed(event):
                        yield out
                        if isinstance(out, ir.ErrorEvent):
                            return
            finally:
                response.close()

    async def _error(self, response: aiohttp.ClientResponse, service: Service) -> ir.Error:
        data = await response.read()
        error = CHAT.parse_error(response.status, data)
        retry_after = response.headers.get("retry-after")
        if retry_after and error.retry_after is None and retry_after.isdigit():
            error.retry_after = float(retry_after)
        if response.status in (502, 503):
            service.suspect()
        error.message = f"{service.spec.label}: {error.message}"
        return error

    async def _events(self, response: aiohttp.ClientResponse, spec: specs.ServiceSpec) -> AsyncIterator[ir.Event]:
        if "text/event-stream" not in response.headers.get("content-type", ""):
            # asked for a stream, sent one JSON object (a completion, or one chunk standing for the stream)
            try:
                payload = orjson.loads(await response.read())
                reply = CHAT.parse_response(_as_completion(payload))
            except (orjson.JSONDecodeError, ir.Error, TypeError, AttributeError):
                yield ir.ErrorEvent(ir.Error(502, "server_error", f"{spec.label} sent an unreadable reply"))
                return
            for event in events_for(reply):
                yield event
            return
        decoder = CHAT.stream_decoder()
        done = False
        finishes: list[ir.Event] = []  # a stream is complete only with its [DONE]
        async for batch in iter_sse_batches(response):
            for name, data in batch:
                done = done or data.strip() == b"[DONE]"
                for event in decoder.feed(name, data):
                    if isinstance(event, ir.Finish):
                        finishes.append(event)
                    else:
                        yield event
                    if isinstance(event, ir.ErrorEvent):
                        return
        if not done:
            yield ir.ErrorEvent(ir.Error(502, "server_error",
                                         f"{spec.label} ended its stream without [DONE] (the reply was cut)"))
            return
        for event in (*finishes, *decoder.close()):
            yield event


def _as_completion(payload: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object sent instead of a stream, read as the
    completion it stands for."""
    if payload.get("object") != "chat.completion.chunk":
        return payload
    choices = [{"index": c.get("index", 0), "message": {"role": "assistant", **(c.get("delta") or {})},
                "finish_reason": c.get("finish_reason") or "stop"}
               for c in payload.get("choices") or [] if isinstance(c, dict)]
    return {**payload, "object": "chat.completion", "choices": choices}
