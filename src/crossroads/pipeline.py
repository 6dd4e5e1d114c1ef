"""The request's path: pick an account, call upstream, translate back.

Same dialect in and out: the body and the stream pass through with only the
model name edited. Otherwise the request goes through the IR once, and the
stream is translated event by event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from crossroads import dialects, ir
from crossroads.assemble import Assembler
from crossroads.config import Config
from crossroads.dialects.base import Dialect
from crossroads.http import Reply, StreamReply
from crossroads.images import ImageFetcher
from crossroads.providers.base import Account, retryable
from crossroads.routing.health import Health
from crossroads.routing.registry import Candidate, Registry
from crossroads.routing.selection import RoundRobin
from crossroads.transport import Transport, iter_sse

log = logging.getLogger("crossroads.pipeline")

# What the end of a complete stream contains, per dialect; a pass-through
# stream that ends without it was cut and gets an error event appended.
STREAM_TERMINATORS: dict[str, tuple[bytes, ...]] = {
    "openai-chat": (b"[DONE]",),
    "anthropic": (b"message_stop",),
    "openai-responses": (b"response.completed", b"response.incomplete", b"response.failed"),
    "gemini": (b"finishReason", b"finish_reason"),
}

TAIL_BYTES = 4096  # the last event of a stream fits in this

DIALECTS_NEEDING_INLINE_IMAGES = frozenset({"gemini"})


@dataclass(slots=True)
class Inbound:
    dialect: Dialect
    body: dict[str, Any]
    raw: bytes
    model: str
    stream: bool
    headers: Mapping[str, str]
    sse: bool = True  # Gemini: alt=sse vs JSON-array streaming


class Pipeline:
    def __init__(self, config: Config, registry: Registry, transport: Transport) -> None:
        self.config = config
        self.registry = registry
        self.transport = transport
        self.health = Health()
        self.selector = RoundRobin(self.health, fill_first=config.routing_strategy == "fill-first")
        self.images = ImageFetcher(transport, config.image_fetch_max_bytes)

    async def handle(self, inbound: Inbound) -> Reply | StreamReply:
        pool = self.registry.pool(inbound.model)
        if not pool:
            raise ir.Error(404, "not_found",
                           f"model {inbound.model!r} is not served by any configured account "
                           "(GET /v1/models lists the models available)", param="model",
                           code="model_not_found")
        ready, soonest = self.selector.available(inbound.model, pool)
        if not ready:
            raise self._all_cooling(inbound.model, soonest)
        limit = self.config.max_retry_credentials or len(ready)
        ir_request: ir.Request | None = None
        last_error: ir.Error | None = None
        for cand in ready[:limit]:
            provider = cand.account.provider
            upstream_dialect = dialects.get(provider.dialect)
            # upstream streams are always SSE, so Gemini's JSON-array streaming is re-encoded
            passthrough = upstream_dialect.name == inbound.dialect.name and inbound.sse
            upstream_stream = provider.upstream_stream(inbound.stream)
            if passthrough:
                body = self._passthrough_body(inbound, cand)
            else:
                if ir_request is None:
                    ir_request = inbound.dialect.parse_request(inbound.body, model=inbound.model,
                                                               stream=inbound.stream)
                body = await self._translated_body(ir_request, cand, upstream_dialect, upstream_stream)
            try:
                result = await self._attempt(inbound, cand, upstream_dialect, body, passthrough, ir_request,
                                             upstream_stream)
            except ir.Error as error:
                if not retryable(error):
                    raise
                seconds = self.health.record_failure(cand.account.id, cand.route.upstream, error)
                log.warning("account %s failed for %s (%s); cooling %.0fs", cand.account.label,
                            cand.route.upstream, error, seconds)
                last_error = error
                continue
            self.health.record_success(cand.account.id, cand.route.upstream)
            return result
        assert last_error is not None
        raise _client_facing(last_error, inbound.model)

    # ------------------------------------------------------------------ bodies

    def _passthrough_body(self, inbound: Inbound, cand: Candidate) -> bytes:
        body = dict(inbound.body)  # shallow: providers edit top-level keys only
        changed = False
        if inbound.dialect.name != "gemini" and cand.route.upstream != inbound.model:
            body["model"] = cand.route.upstream  # Gemini carries the model in the URL
            changed = True
        adapted = cand.account.provider.adapt_body(cand.account, body)
        if adapted is not None:
            body, changed = adapted, True
        return orjson.dumps(body) if changed else inbound.raw

    async def _translated_body(self, request: ir.Request, cand: Candidate, upstream: Dialect,
                               upstream_stream: bool) -> bytes:
        request = dataclasses.replace(request, model=cand.route.upstream, stream=upstream_stream)
        if upstream.name in DIALECTS_NEEDING_INLINE_IMAGES:
            await self.images.inline(request)
        body = upstream.render_request(request)
        adapted = cand.account.provider.adapt_body(cand.account, body)
        return orjson.dumps(body if adapted is None else adapted)

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, inbound: Inbound, cand: Candidate, upstream: Dialect, body: bytes,
                       passthrough: bool, ir_request: ir.Request | None,
                       upstream_stream: bool) -> Reply | StreamReply:
        account = cand.account
        call = await account.provider.call(account, cand.route.upstream, upstream_stream, inbound.headers)
        try:
            response = await self.transport.post(call.url, body, call.headers, account.proxy_url)
        except TimeoutError:
            raise ir.Error(504, "timeout", f"upstream {account.label} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise ir.Error(502, "server_error",
                           f"upstream {account.label} unreachable: {type(exc).__name__}") from None
        if response.status >= 400:
            raise await self._upstream_error(response, upstream, account)
        if inbound.stream:
            if passthrough:
                return StreamReply(self._pass_stream(response, inbound, account))
            return StreamReply(self._translate_stream(response, inbound, upstream, ir_request, account),
                               content_type=b"text/event-stream" if inbound.sse else b"application/json")
        if upstream_stream:
            parsed = await self._assemble(response, upstream, account)
            return Reply(200, orjson.dumps(inbound.dialect.render_response(parsed)))
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raise ir.Error(502, "server_error",
                           f"upstream {account.label} closed the connection mid-response") from None
        finally:
            response.release()
        if passthrough:
            return Reply(200, data)
        try:
            parsed = upstream.parse_response(orjson.loads(data))
        except (orjson.JSONDecodeError, ir.Error) as exc:
            raise ir.Error(502, "server_error", f"upstream {account.label} sent an unreadable reply") from exc
        return Reply(200, orjson.dumps(inbound.dialect.render_response(parsed)))

    async def _assemble(self, response: aiohttp.ClientResponse, upstream: Dialect,
                        account: Account) -> ir.Response:
        """A whole reply from an upstream that only streams."""
        decoder = upstream.stream_decoder()
        assembler = Assembler()
        try:
            async for event_name, data in iter_sse(response):
                assembler.feed_all(decoder.feed(event_name, data))
            assembler.feed_all(decoder.close())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _stream_failure(exc, account) from None
        finally:
            response.close()
        if assembler.error is not None:
            raise assembler.error
        return assembler.response()

    async def _upstream_error(self, response: aiohttp.ClientResponse, upstream: Dialect,
                              account: Account) -> ir.Error:
        try:
            data = await response.read()
        except (TimeoutError, aiohttp.ClientError):
            data = b""
        finally:
            response.release()
        error = upstream.parse_error(response.status, data)
        retry_after = response.headers.get("retry-after")
        if retry_after and error.retry_after is None:
            error.retry_after = _parse_retry_after(retry_after)
        return error

    # ------------------------------------------------------------------ streams

    async def _pass_stream(self, response: aiohttp.ClientResponse, inbound: Inbound,
                           account: Account) -> AsyncIterator[bytes]:
        markers = STREAM_TERMINATORS.get(inbound.dialect.name, ())
        tail = b""
        try:
            async for chunk in response.content.iter_any():
                tail = (tail + chunk)[-TAIL_BYTES:]
                yield chunk
            if markers and not any(m in tail for m in markers):
                yield self._stream_error(inbound, ir.Error(
                    502, "server_error", f"upstream {account.label} ended the stream before completion"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            yield self._stream_error(inbound, _stream_failure(exc, account))
        finally:
            response.close()

    async def _translate_stream(self, response: aiohttp.ClientResponse, inbound: Inbound,
                                upstream: Dialect, ir_request: ir.Request | None,
                                account: Account) -> AsyncIterator[bytes]:
        decoder = upstream.stream_decoder()
        encoder = inbound.dialect.stream_encoder(model=inbound.model, request=ir_request, sse=inbound.sse)
        try:
            async for event_name, data in iter_sse(response):
                for event in decoder.feed(event_name, data):
                    out = encoder.encode(event)
                    if out:
                        yield out
            for event in decoder.close():
                out = encoder.encode(event)
                if out:
                    yield out
        except (TimeoutError, aiohttp.ClientError) as exc:
            yield encoder.encode(ir.ErrorEvent(_stream_failure(exc, account)))
        finally:
            response.close()
        yield encoder.close()

    def _stream_error(self, inbound: Inbound, error: ir.Error) -> bytes:
        encoder = inbound.dialect.stream_encoder(model=inbound.model, sse=inbound.sse)
        return encoder.encode(ir.ErrorEvent(error))

    def _all_cooling(self, model: str, soonest: float | None) -> ir.Error:
        wait = max(0.0, (soonest or time.monotonic()) - time.monotonic())
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + wait))
        return ir.Error(429, "rate_limit",
                        f"all accounts for {model} are cooling down until {until} (in {wait:.0f}s)",
                        retry_after=max(1.0, round(wait)))


def _stream_failure(exc: BaseException, account: Account) -> ir.Error:
    if isinstance(exc, asyncio.TimeoutError):
        return ir.Error(504, "timeout", f"upstream {account.label} stream stalled")
    return ir.Error(502, "server_error", f"upstream {account.label} stream broke: {type(exc).__name__}")


def _client_facing(error: ir.Error, model: str) -> ir.Error:
    """An upstream credential problem is not the client's: never answer 401/403."""
    if error.status in (401, 402, 403):
        return ir.Error(503, "overloaded",
                        f"no account could serve {model}: upstream refused the credentials "
                        f"({error.status}: {error.message})")
    return error


def _parse_retry_after(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
