"""Stream resume (opt-in, ``stream-resume: true``): a stream whose account
dies after its first event reached the client continues on the next account
of the pool (without it, only a stream that has sent nothing fails over).

The continuation request is the client's request with the text sent so far
as the assistant's partial answer: a trailing assistant message (a prefill)
where the upstream dialect continues one (``Dialect.accepts_prefill``), else
that message followed by an explicit instruction to continue. Only the
continuation reaches the client, spliced into the open text part, so the
client sees one answer. Guarantees:

* Never attempted once a tool call has started streaming (its arguments
  cannot be continued by another model call), nor when the partial answer
  carries signed, encrypted or redacted reasoning (another account cannot
  accept it); then the stream ends with an error event as without resume.
* The continuation runs without reasoning: the reasoning already happened
  and a prefilled turn cannot carry it.
* Each account is charged its own usage; the failed account is cooled as any
  mid-stream failure is.

The router must know the text so far, so with resume on a same-dialect stream
is decoded and re-encoded through the IR instead of passing through: the cost
is one parse and render of the request and a decode and encode of every
event, paid by every stream, cut or not.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp

from crossroads import dialects, ir
from crossroads.transport import Answer, iter_sse_batches

if TYPE_CHECKING:
    from crossroads.dialects.base import StreamDecoder
    from crossroads.pipeline import Inbound, Pipeline
    from crossroads.pipeline.relay import ClientEncoder
    from crossroads.pipeline.request import Progress, Served
    from crossroads.routing.registry import Candidate

log = logging.getLogger("crossroads.resume")

CONTINUE = ("Your previous answer was cut off. Continue it from exactly where it stopped: do not repeat "
            "anything already written, do not add any preamble, and do not comment on the interruption.")

Events = AsyncIterator[list[ir.Event]]


class Transcript:
    """What the client has been sent: the answer's text so far, and whether
    another account could take it over."""

    __slots__ = ("next_index", "open_text", "refusal", "text", "text_parts")

    def __init__(self) -> None:
        self.text = ""
        self.text_parts: set[int] = set()
        self.open_text: int | None = None  # the text part the client has not seen closed
        self.next_index = 0
        self.refusal: str | None = None  # why resume is not possible

    def see(self, events: list[ir.Event]) -> None:
        for event in events:
            if isinstance(event, ir.PartDelta):
                if event.index in self.text_parts:
                    self.text += event.text
                elif event.signature:
                    self.refusal = "the partial answer carries a reasoning signature"
            elif isinstance(event, ir.PartStart):
                self.next_index = max(self.next_index, event.index + 1)
                part = event.part
                if isinstance(part, ir.TextPart):
                    self.text_parts.add(event.index)
                    self.open_text = event.index
                    self.text += part.text
                elif isinstance(part, ir.ToolCallPart):
                    self.refusal = "a tool call had started streaming"
                elif part.signature or part.redacted or part.encrypted:
                    self.refusal = "the partial answer carries a reasoning signature"
            elif isinstance(event, ir.PartStop) and event.index == self.open_text:
                self.open_text = None

    @property
    def resumable(self) -> bool:
        return self.refusal is None


def continuation(request: ir.Request, text: str, prefill: bool) -> tuple[ir.Request, str]:
    """The request that continues ``text``, and the head of the continuation
    the client already has. A prefill cannot end in whitespace (Anthropic
    refuses it), so that whitespace is left for the model to write again.
    With nothing written yet, the request is simply sent again."""
    if not text:
        return request, ""
    if prefill:
        head = text.rstrip()
        added = [ir.Message("assistant", [ir.TextPart(head)])]
        overlap = text[len(head):]
    else:
        added = [ir.Message("assistant", [ir.TextPart(text)]), ir.Message("user", [ir.TextPart(CONTINUE)])]
        overlap = ""
    return dataclasses.replace(request, messages=[*request.messages, *added], reasoning=None), overlap


class Seam:
    """A continuation's events as the client's stream goes on: no second
    Start, its first text joined to the client's open text part (minus what
    the client already has), reasoning dropped once the client has seen any
    part, later parts numbered after the parts the client has seen."""

    __slots__ = ("index_map", "keep_thinking", "next_index", "open_text", "overlap")

    def __init__(self, transcript: Transcript, overlap: str) -> None:
        self.open_text = transcript.open_text
        self.next_index = transcript.next_index
        self.keep_thinking = transcript.next_index == 0
        self.overlap = overlap
        self.index_map: dict[int, int | None] = {}  # continuation part -> client part (None: dropped)

    def map(self, events: list[ir.Event]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for event in events:
            if isinstance(event, ir.Start):
                if event.usage is not None:
                    out.append(ir.UsageEvent(event.usage))
            elif isinstance(event, ir.PartStart):
                if isinstance(event.part, ir.ThinkingPart) and not self.keep_thinking:
                    self.index_map[event.index] = None
                elif isinstance(event.part, ir.TextPart) and self.open_text is not None:
                    self.index_map[event.index] = self.open_text
                    self.open_text = None  # only the first text part joins the open one
                    if event.part.text:
                        out.extend(self._text(self.index_map[event.index], event.part.text))
                else:
                    self.index_map[event.index] = self.next_index
                    out.append(dataclasses.replace(event, index=self.next_index))
                    self.next_index += 1
            elif isinstance(event, ir.PartDelta | ir.PartStop):
                index = self.index_map.get(event.index)
                if index is None:
                    continue
                if isinstance(event, ir.PartDelta):
                    out.extend(self._text(index, event.text, event.signature))
                else:
                    out.append(ir.PartStop(index))
            else:
                out.append(event)
        return out

    def _text(self, index: int | None, text: str, signature: str | None = None) -> list[ir.Event]:
        if index is None:
            return []
        if self.overlap:  # the model writes again the whitespace the prefill could not end with
            common = 0
            while common < min(len(text), len(self.overlap)) and text[common] == self.overlap[common]:
                common += 1
            self.overlap = "" if common < len(text) or common == len(self.overlap) else self.overlap[common:]
            text = text[common:]
        return [ir.PartDelta(index, text, signature)] if text or signature else []


class Resume:
    """One client stream that may move between accounts."""

    def __init__(self, pipeline: Pipeline, inbound: Inbound, progress: Progress, served: Served) -> None:
        self.pipeline = pipeline
        self.inbound = inbound
        self.progress = progress
        self.served = served
        self.tried = {served.account.id}

    async def chunks(self, events: Events, encoder: ClientEncoder) -> AsyncIterator[bytes]:
        """The client's stream: each leg's events, encoded; on a mid-answer
        failure, the next account's continuation."""
        transcript = Transcript()
        pipeline, inbound = self.pipeline, self.inbound
        try:
            while True:
                failure = None
                async for batch in events:
                    failure = next((e.error for e in batch if isinstance(e, ir.ErrorEvent)), None)
                    if failure is not None:
                        batch = [e for e in batch if not isinstance(e, ir.ErrorEvent)]
                    transcript.see(batch)
                    if batch:
                        yield encoder.encode(batch)
                    if failure is not None:
                        break
                if failure is None:
                    inbound.record.completed()
                    yield encoder.close()
                    return
                failure.message = pipeline.runtime.redaction.redactor(failure.message)
                resumed = await self._next_leg(transcript, failure, events) if transcript.resumable else None
                if resumed is None:
                    if transcript.refusal is not None:
                        log.info("stream not resumed: %s", transcript.refusal)
                    inbound.record.completed()
                    yield encoder.fail(failure)
                    return
                pipeline.record_spend(inbound, encoder.served, encoder.spent)
                encoder.served, encoder.spent, events = resumed[0], None, resumed[1]
        finally:
            await _aclose(events)
            pipeline.record_spend(inbound, encoder.served, encoder.spent)

    async def _next_leg(self, transcript: Transcript, failure: ir.Error,
                        broken: Events) -> tuple[Served, Events] | None:
        """A continuation from the next account of the pool that starts
        answering (the failed account then cooled); None when none does."""
        pipeline, inbound, progress = self.pipeline, self.inbound, self.progress
        await _aclose(broken)
        if progress.pool is None or progress.ir_request is None \
                or not self.served.account.provider.classify(failure).retry:
            return None  # (an error the upstream meant for this request would only come again)
        pinned = pipeline.limiter.pinned(inbound.client_key)  # a key pinned to some accounts stays on them
        allowed = pinned.may_use if pinned is not None else None
        for cand in pipeline.selector.candidates(progress.pool, progress.session, allowed):
            provider = cand.account.provider
            if cand.account.id in self.tried or provider.owns_exchange or not provider.upstream_stream(True):
                continue  # (a continuation is read as a stream of events)
            self.tried.add(cand.account.id)
            upstream = dialects.get(cand.account.provider.speaks(inbound.dialect.name))
            request, overlap = continuation(progress.ir_request, transcript.text, upstream.accepts_prefill)
            try:
                events = await self._open(cand, request, upstream)
            except ir.Error as error:
                inbound.record.failed_attempt(cand.account, error)
                outcome = cand.account.provider.classify(error)
                if not outcome.retry:
                    return None  # the continuation request itself was refused
                pipeline.health.record_failure(cand.account.id, cand.route.upstream, error, outcome)
                continue
            failed = self.served.account
            log.info("stream of %s resumed on %s after %s", self.served.model, cand.account.label, failure)
            inbound.record.failed_attempt(failed, failure)
            pipeline.health.record_failure(failed.id, self.served.upstream_model, failure,
                                           failed.provider.classify(failure))
            pipeline.health.record_success(cand.account.id, cand.route.upstream)
            inbound.record.served(cand.account, self.served.model)
            self.served = dataclasses.replace(self.served, account=cand.account, upstream_model=cand.route.upstream)
            return self.served, _seamed(events, Seam(transcript, overlap))
        return None

    async def _open(self, cand: Candidate, request: ir.Request, upstream: dialects.Dialect) -> Events:
        """The continuation's stream once its first event is in (an error
        before then is this account's failure, as for any attempt)."""
        pipeline, progress = self.pipeline, self.progress
        provider = cand.account.provider
        body = await pipeline.translated_body(request, cand, upstream, True, progress.suffix_reasoning,
                                               provider, progress.snapshot, self.inbound)
        response = await pipeline.send_upstream(self.inbound, cand, upstream, body, True, provider)
        decoder = upstream.stream_decoder()
        try:
            batches, first = await first_events(response, decoder)
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise broken(exc, cand.account.label) from None
        for event in first:
            if isinstance(event, ir.ErrorEvent):
                response.close()
                raise event.error
        return decoded(response, batches, decoder, first, cand.account.label)


Batches = AsyncIterator[list[tuple[str | None, bytes]]]


async def first_events(response: Answer, decoder: StreamDecoder) -> tuple[Batches, list[ir.Event]]:
    """The stream's reads, and the events up to the first that means
    something: it decides failover (a read error propagates)."""
    batches = iter_sse_batches(response)
    first: list[ir.Event] = []
    try:
        while not first:
            for name, data in await batches.__anext__():
                first.extend(decoder.feed(name, data))
    except StopAsyncIteration:
        first.extend(decoder.close())
    return batches, first


def broken(exc: BaseException, label: str) -> ir.Error:
    if isinstance(exc, TimeoutError):
        return ir.Error(504, "timeout", f"upstream {label} stream stalled")
    return ir.Error(502, "server_error", f"upstream {label} stream broke: {type(exc).__name__}")


async def decoded(response: Answer, batches: Batches, decoder: StreamDecoder, first: list[ir.Event], label: str) -> Events:
    """An upstream stream as lists of IR events, one per read; a broken or
    stalled connection ends it with an error event."""
    try:
        yield first
        async for batch in batches:
            events: list[ir.Event] = []
            for name, data in batch:
                events.extend(decoder.feed(name, data))
            if events:
                yield events
        yield decoder.close()
    except (aiohttp.ClientError, TimeoutError) as exc:
        yield [ir.ErrorEvent(broken(exc, label))]
    finally:
        response.close()


async def _seamed(events: Events, seam: Seam) -> Events:
    try:
        async for batch in events:
            yield seam.map(batch)
    finally:
        await _aclose(events)


async def _aclose(events: Events) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
