"""Answers on their way to the client, once an account has answered.

A stream opens only when its first event is not an error (else the attempt
fails and the pipeline moves on to the next account); from then on it is
relayed as it arrives: passed through with only the model name edited, or
translated event by event. A stream that breaks after reaching the client
ends with an error event in the client's framing, naming the request, and
cools its account. Every stream is accounted exactly once, when it ends.

This is the hot path: per upstream read, one write and no work beyond
what the answer needs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson

from crossroads import ir, usage
from crossroads.assemble import Assembler
from crossroads.dialects.base import Dialect, StreamDecoder
from crossroads.http import StreamReply
from crossroads.pipeline.request import Inbound, Served
from crossroads.pipeline.upstream_errors import cooling_off, stream_failure
from crossroads.providers.base import Account
from crossroads.resume import Resume, decoded, first_events
from crossroads.runtime import Runtime
from crossroads.transport import Answer, SSEParser, iter_sse_batches

log = logging.getLogger("crossroads.pipeline")


_REPORTS_USAGE = (ir.Finish, ir.Start, ir.UsageEvent)
Settle = Callable[[Inbound, Served, ir.Usage | None], None]  # the pipeline's accounting of what a reply spent


class Relay:
    """Relays the streams of one pipeline; holds no request's state."""

    def __init__(self, runtime: Runtime, settle: Settle) -> None:
        self.runtime = runtime
        self.health = runtime.health
        self.settle = settle

    async def pass_stream(self, response: Answer, inbound: Inbound, served: Served,
                          drop_usage_chunks: bool, upstream: Dialect) -> StreamReply:
        """A stream in the client's own dialect, passed through."""
        account = served.account
        chunks = response.content.iter_any()
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            response.close()
            raise ir.Error(502, "server_error", f"upstream {account.label} sent an empty stream") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise stream_failure(exc, account) from None
        inbound.record.first_upstream_byte()
        if b"error" in first[:512]:
            error = _leading_error(upstream, first)
            if error is not None:
                response.close()
                raise error  # nothing reached the client yet: fail over
        return StreamReply(self._pass_chunks(response, chunks, first, inbound, served, drop_usage_chunks, upstream),
                           content_type=inbound.dialect.stream_content_type)

    async def _pass_chunks(self, response: Answer, chunks: AsyncIterator[bytes], first: bytes,
                           inbound: Inbound, served: Served, drop_usage_chunks: bool,
                           upstream: Dialect) -> AsyncIterator[bytes]:
        markers = inbound.dialect.stream_terminators
        meter = usage.StreamUsage(inbound.dialect, drop_usage_chunks)
        framer = inbound.dialect.passthrough_framer()
        rename = model_renamer(served.upstream_model, served.model)
        # look for the terminator as events pass (a final event can be long: a Responses
        # response.completed echoes every tool of the request); the meter hands on whole
        # events, so a marker is never split between two of its outputs
        seen_end = False
        complete = False
        redact = self.runtime.redaction.redactor.bytes  # an error event may echo what the upstream was sent

        def passed(data: bytes) -> bytes:
            if rename:  # whole events only (the meter's output), so a name is never split across reads
                data = rename(data)
            if b"error" in data:
                data = redact(data)
            return framer.feed(data) if framer else data

        try:
            out = meter.feed(first)
            seen_end = any(m in out for m in markers)
            yield passed(out)
            async for chunk in chunks:
                out = meter.feed(chunk)
                if out:
                    if not seen_end:
                        seen_end = any(m in out for m in markers)
                    yield passed(out)
            inbound.record.completed()
            out = meter.flush()
            complete = not markers or seen_end or any(m in out for m in markers)
            if not complete:
                cut = ir.Error(502, "server_error",
                               f"upstream {served.account.label} ended the stream before completion")
                self.stream_failed(served, cut)
                out += self._stream_error(upstream, inbound, cut)
            yield passed(out) + (framer.close() if framer else b"")
        except (aiohttp.ClientError, TimeoutError) as exc:
            inbound.record.completed()
            broken = stream_failure(exc, served.account)
            self.stream_failed(served, broken)
            yield passed(self._stream_error(upstream, inbound, broken)) + (framer.close() if framer else b"")
        finally:
            response.close()
            self.settle(inbound, served, meter.usage)

    async def translate_stream(self, response: Answer, inbound: Inbound, upstream: Dialect,
                               request: ir.Request | None, served: Served, resume: Resume | None) -> StreamReply:
        """A stream in another dialect, translated through the IR; with
        ``resume``, one that may move to another account mid-answer."""
        decoder = upstream.stream_decoder()
        try:
            batches, first = await first_events(response, decoder)
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise stream_failure(exc, served.account) from None
        inbound.record.first_upstream_byte()
        for event in first:
            if isinstance(event, ir.ErrorEvent):
                response.close()
                raise event.error
        if resume is not None:
            chunks = resume.chunks(decoded(response, batches, decoder, first, served.account.label),
                                   ClientEncoder(self, inbound, request, served))
        else:
            chunks = self._translated_chunks(response, batches, decoder, first, inbound, request, served)
        return StreamReply(chunks, content_type=inbound.dialect.stream_content_type)

    async def _translated_chunks(self, response: Answer,
                                 batches: AsyncIterator[list[tuple[str | None, bytes]]], decoder: StreamDecoder,
                                 first: list[ir.Event], inbound: Inbound, ir_request: ir.Request | None,
                                 served: Served) -> AsyncIterator[bytes]:
        """One write per upstream read: every event decoded from a read is
        encoded and sent together."""
        encoder = ClientEncoder(self, inbound, ir_request, served)
        try:
            yield encoder.encode(first)
            async for batch in batches:
                events: list[ir.Event] = []
                for event_name, data in batch:
                    events.extend(decoder.feed(event_name, data))
                if events:
                    yield encoder.encode(events)
            inbound.record.completed()
            yield encoder.encode(decoder.close()) + encoder.close()
        except (aiohttp.ClientError, TimeoutError) as exc:
            inbound.record.completed()
            yield encoder.fail(stream_failure(exc, served.account))
        finally:
            response.close()
            self.settle(inbound, served, encoder.spent)

    async def event_chunks(self, events: AsyncIterator[ir.Event], first: list[ir.Event], inbound: Inbound,
                           ir_request: ir.Request | None, served: Served) -> AsyncIterator[bytes]:
        """The stream of a provider that runs its upstream itself (its first
        events already read)."""
        encoder = ClientEncoder(self, inbound, ir_request, served)
        try:
            yield encoder.encode(first)
            async for event in events:
                yield encoder.encode([event])
            inbound.record.completed()
            yield encoder.close()
        except (aiohttp.ClientError, TimeoutError) as exc:
            inbound.record.completed()
            yield encoder.fail(stream_failure(exc, served.account))
        finally:
            await aclose(events)
            self.settle(inbound, served, encoder.spent)

    def stream_failed(self, served: Served, error: ir.Error) -> None:
        """A stream that broke after reaching the client still counts against
        its account: nothing can fail over now, but the next request should
        not be sent to an account that just failed. The error event the
        client gets names the request (the status line went out long ago)."""
        served.record.broke(error)
        error.message = f"{error.message} (request id {served.record.request_id})"
        if cooling_off(served.account, self.runtime.snapshot.config.disable_cooling):
            return
        outcome = served.account.provider.classify(error)
        seconds = self.health.record_failure(served.account.id, served.upstream_model, error, outcome)
        if not seconds:
            return
        log.warning("account %s failed mid-stream for %s (%s); cooling %.0fs", served.account.label,
                    served.upstream_model, error, seconds)

    def _stream_error(self, dialect: Dialect, inbound: Inbound, error: ir.Error) -> bytes:
        """An error event in the pass-through stream's own framing."""
        return dialect.stream_encoder(model=inbound.model).encode(ir.ErrorEvent(error))


class ClientEncoder:
    """IR events -> the client's stream, keeping the usage they report and
    reporting an upstream failure to health as it passes."""

    __slots__ = ("encoder", "relay", "served", "spent")

    def __init__(self, relay: Relay, inbound: Inbound, request: ir.Request | None, served: Served) -> None:
        self.relay = relay
        self.served = served
        self.encoder = inbound.dialect.stream_encoder(model=served.model, request=request)
        self.spent: ir.Usage | None = None

    def encode(self, events: list[ir.Event]) -> bytes:
        """The events of one upstream read, as one write. Text deltas of the
        same part that arrived in the same read go out as one delta: the
        client could not have seen them apart, and each delta costs an
        encoded event (most of a translated stream's work)."""
        encode = self.encoder.encode
        out = []
        held: list[ir.PartDelta] = []  # text deltas of one part, not yet encoded
        for event in events:
            if type(event) is ir.PartDelta:  # most events are
                if event.signature is None:
                    if held and held[0].index != event.index:
                        out.append(encode(_joined(held)))
                        held = []
                    held.append(event)
                    continue
            elif isinstance(event, _REPORTS_USAGE):
                if event.usage is not None:
                    self.spent = event.usage if self.spent is None else self.spent.merged(event.usage)
            elif isinstance(event, ir.ErrorEvent):  # the upstream failed (or was cut) mid-answer
                event.error.message = self.relay.runtime.redaction.redactor(event.error.message)
                self.relay.stream_failed(self.served, event.error)
            if held:
                out.append(encode(_joined(held)))
                held = []
            out.append(encode(event))
        if held:
            out.append(encode(_joined(held)))
        return b"".join(out)

    def close(self) -> bytes:
        return self.encoder.close()

    def fail(self, error: ir.Error) -> bytes:
        self.relay.stream_failed(self.served, error)
        return self.encoder.encode(ir.ErrorEvent(error)) + self.encoder.close()


def _joined(deltas: list[ir.PartDelta]) -> ir.PartDelta:
    if len(deltas) == 1:
        return deltas[0]
    return ir.PartDelta(deltas[0].index, "".join([delta.text for delta in deltas]))


async def assembled(response: Answer, upstream: Dialect, account: Account) -> ir.Response:
    """A whole reply from an upstream that only streams."""
    decoder = upstream.stream_decoder()
    assembler = Assembler()
    try:
        async for batch in iter_sse_batches(response):
            for event_name, data in batch:
                assembler.feed_all(decoder.feed(event_name, data))
        assembler.feed_all(decoder.close())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise stream_failure(exc, account) from None
    finally:
        response.close()
    if assembler.error is not None:
        raise assembler.error
    return assembler.response()


async def aclose(events: AsyncIterator[ir.Event]) -> None:
    """Releases a provider's event stream (and its connection), if it can be."""
    release = getattr(events, "aclose", None)
    if release is not None:
        await release()


@functools.lru_cache(maxsize=1024)  # one per alias in use: the function holds no request's state
def model_renamer(upstream: str, served: str) -> Callable[[bytes], bytes] | None:
    """A pass-through body or stream names the model as the upstream knows
    it; the client gets the name it asked for. Only when the two differ (an
    alias, a prefix, a fallback) is anything edited: a byte replacement of
    the JSON member, no parsing."""
    if upstream == served:
        return None
    sent, wanted = orjson.dumps(upstream), orjson.dumps(served)
    pairs = [(f'"{field}":{sep}'.encode() + sent, f'"{field}":{sep}'.encode() + wanted)
             for field in ("model", "modelVersion") for sep in ("", " ")]

    (commonest, its_rename), *others = pairs

    def rename(data: bytes) -> bytes:
        # the commonest spelling first, unconditionally (a replace that finds nothing costs what a
        # look would, and returns the same object): one replacement usually leaves nothing to do
        data = data.replace(commonest, its_rename)
        if sent in data:
            for old, new in others:
                data = data.replace(old, new)
        return data

    return rename


def _leading_error(upstream: Dialect, first: bytes) -> ir.Error | None:
    """An error event at the very start of a 200 stream (e.g. Anthropic's
    ``overloaded_error``): nothing has reached the client, so fail over."""
    decoder = upstream.stream_decoder()
    for name, data in SSEParser().feed(first):
        for event in decoder.feed(name, data):
            if isinstance(event, ir.ErrorEvent):
                return event.error
    return None
