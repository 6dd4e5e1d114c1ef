"""The request's path: pick an account, call upstream, translate back.

Same dialect in and out: the body and the stream pass through with only the
model name edited. Otherwise the request goes through the IR once, and the
stream is translated event by event.

Failover: retryable errors (quota, auth, overload, outages, timeouts) move on
to the next account of the pool; streams fail over until their first event
reaches the client (with ``stream-resume``, mid-answer too: see resume.py).
When every account is cooling down, the pipeline waits for the soonest one
if that is within ``max-retry-interval``, else it answers 429 with
``Retry-After``. A model whose whole pool is unavailable falls back to
the next model of its ``fallbacks`` chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from crossroads import cost, dialects, ir, passthrough, payload, usage
from crossroads.assemble import Assembler
from crossroads.dialects.base import Dialect, StreamDecoder
from crossroads.dialects.kit import durations
from crossroads.http import Reply, StreamReply
from crossroads.providers import error_rules
from crossroads.providers.base import REQUEST_RATE_LIMIT, Account, ModelRoute, Outcome, Provider
from crossroads.providers.subscription_catalogue import Catalogue, ModelInfo
from crossroads.record import RequestRecord
from crossroads.resume import Resume, broken, decoded, first_events
from crossroads.routing import suffix
from crossroads.routing.registry import Candidate, Pool
from crossroads.routing.sticky import session_key
from crossroads.runtime import Runtime
from crossroads.snapshot import Snapshot
from crossroads.transport import SSEParser, iter_sse_batches

log = logging.getLogger("crossroads.pipeline")

MARKER_EDGE = 32  # longer than any stream terminator marker
# the event loop's clock has millisecond steps: a sleep until a cooldown ends can wake a hair before
# it has, which would make the next round find nothing to try
WAKE_MARGIN = 0.01
# what every upstream request carries; a provider's own headers and then the entry's configured ones win
_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
_STREAM_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


@dataclass(slots=True)
class Inbound:
    dialect: Dialect
    body: dict[str, Any]
    raw: bytes
    model: str
    stream: bool
    headers: Mapping[str, str]
    client_key: str | None = None
    record: RequestRecord = dataclasses.field(default_factory=RequestRecord.detached)  # what the request did


@dataclass(slots=True)
class _Progress:
    """What one request learned while trying accounts."""

    snapshot: Snapshot
    ir_request: ir.Request | None = None
    suffix_reasoning: ir.Reasoning | None = None  # from the model name; forces translation
    last_error: ir.Error | None = None
    last_account: str | None = None  # the label of the account that gave last_error
    upstream_headers: Any = None  # the answering upstream's response headers (passthrough-headers)
    soonest: float | None = None  # monotonic time the first cooling account recovers
    served_pools: int = 0
    attempts: list[str] = dataclasses.field(default_factory=list)  # "account: outcome", for the final error
    # an account that answered 500: not cooled until another account shows the request was fine
    suspect: tuple[Candidate, ir.Error, Outcome] | None = None
    pool: Pool | None = None  # the pool being served, and the conversation's session (stream resume)
    session: str | None = None


@dataclass(slots=True)
class _Served:
    account: Account
    model: str  # client-facing name of the model that answered
    upstream_model: str  # the name the account knows it by (health is kept per upstream model)
    record: RequestRecord


class Pipeline:
    """Stateless itself: the long-lived parts are the runtime's, and each
    request reads the config snapshot that was current when it arrived."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.transport = runtime.transport
        self.health = runtime.health
        self.affinity = runtime.affinity
        self.ledger = runtime.ledger
        self.limiter = runtime.limiter
        self.selector = runtime.selector
        self.images = runtime.images

    # ------------------------------------------------------------------ entry

    async def handle(self, inbound: Inbound) -> Reply | StreamReply:
        snapshot = self.runtime.snapshot
        if inbound.model not in snapshot.registry and await self.runtime.services.discover(inbound.model):
            snapshot = self.runtime.snapshot  # a side service listed the model just now
        progress = _Progress(snapshot)
        registry, config = snapshot.registry, snapshot.config
        inbound.record.asked(inbound.dialect.name, inbound.model, inbound.stream)
        named = suffix.resolve(inbound.model, registry.__contains__)
        if named.reasoning is not None:  # model(high), model-thinking-8192, ...
            inbound.model = named.model
            progress.suffix_reasoning = named.reasoning
        await self.limiter.acquire(inbound.client_key, inbound.model)
        for model in (inbound.model, *config.fallbacks.get(inbound.model, ())):
            pool = registry.pool(model)
            if pool is None:
                continue
            progress.served_pools += 1
            session = None
            if config.session_affinity and len(pool) > 1:  # one account: nothing to stick to
                session = session_key(inbound.headers, inbound.body)
                if session is not None:
                    await self.affinity.recall(model, session)
            result = await self._serve_pool(inbound, model, pool, session, progress)
            if result is not None:
                return result
        if not progress.served_pools:
            raise ir.Error(404, "not_found",
                           f"model {inbound.model!r} is not served by any configured account "
                           "(GET /v1/models lists the models available)", param="model",
                           code="model_not_found")
        raise self._final_error(inbound.model, progress)

    async def _serve_pool(self, inbound: Inbound, model: str, pool: Pool, session: str | None,
                          progress: _Progress) -> Reply | StreamReply | None:
        """Rounds over the pool's available accounts. Between rounds only a
        rate limit that lifts within ``max-retry-interval`` is waited for; an
        account cooling after an outage, a refused connection or a failed
        stream is never waited on, but when it is all the pool has and this
        request has tried nothing yet, the one that recovers first is tried
        once anyway rather than refusing the request outright."""
        config = progress.snapshot.config
        progress.pool, progress.session = pool, session
        pinned = self.limiter.pinned(inbound.client_key)
        allowed = pinned.may_use if pinned is not None else None
        own_retries = any(c.account.request_retry is not None for c in pool.candidates)
        rounds = max(_retries(c.account.request_retry, config.request_retry) for c in pool.candidates) \
            if own_retries else max(0, config.request_retry)
        for round_number in range(rounds + 1):
            if round_number and own_retries:  # as CLIProxyAPI: round r admits accounts whose request-retry >= r
                pool = _admitted(pool, round_number, config.request_retry)
            tried = 0
            for cand in self.selector.candidates(pool, session, allowed):
                if config.max_retry_credentials and tried >= config.max_retry_credentials:
                    break
                tried += 1
                result = await self._try(inbound, model, cand, session, progress)
                if result is not None:
                    return result
            if not tried and not progress.attempts and allowed is None:
                probe = self.selector.soonest_transient(pool)
                if probe is not None:
                    result = await self._try(inbound, model, probe, session, progress)
                    if result is not None:
                        return result
            upcoming = _admitted(pool, round_number + 1, config.request_retry) if own_retries else pool
            soonest = self.selector.soonest_recovery(upcoming, allowed)
            if soonest is None:
                return None
            if progress.soonest is None or soonest < progress.soonest:
                progress.soonest = soonest
            wait = soonest - time.monotonic()
            if round_number >= rounds or wait > config.max_retry_interval:
                return None
            log.info("all accounts for %s rate-limited; waiting %.1fs for the first to recover", model, wait)
            await asyncio.sleep(max(0.0, wait) + WAKE_MARGIN)
        return None

    async def _try(self, inbound: Inbound, model: str, cand: Candidate, session: str | None,
                   progress: _Progress) -> Reply | StreamReply | None:
        """One account: its answer, or None after recording why it failed."""
        try:
            result = await self._attempt(inbound, model, cand, progress)
        except ir.Error as error:
            inbound.record.failed_attempt(cand.account, error)
            outcome = cand.account.provider.classify(error)
            if cand.account.error_rules:  # the config's request-scoped-errors come first
                outcome = error_rules.decide(cand.account.error_rules, error, outcome)
            if not outcome.retry:
                if outcome.scope != "none":  # stop-and-cooldown
                    self._cool(cand, error, outcome)
                raise
            progress.attempts.append(f"{cand.account.label}: {error.status} {error.message[:120]}")
            progress.last_error = error
            progress.last_account = cand.account.label
            if error.status != 500:
                self._cool(cand, error, outcome)
            elif progress.suspect is None:
                progress.suspect = (cand, error, outcome)  # its account's fault or the request's: the next says
            elif progress.suspect[0].account.id == cand.account.id:
                self._cool(cand, error, outcome)  # the same account twice: it is the account
                progress.suspect = None
            else:
                raise _request_fault(error, progress) from None
            return None
        if progress.suspect is not None:  # another account managed: the 500 was its account's fault
            self._cool(*progress.suspect)
            progress.suspect = None
        self.health.record_success(cand.account.id, cand.route.upstream)
        if progress.upstream_headers is not None and progress.snapshot.config.passthrough_headers:
            result.headers.extend(passthrough.forwardable(progress.upstream_headers.items()))
        inbound.record.served(cand.account, model)
        if session is not None:
            self.affinity.remember(model, session, cand.account.id)
        return result

    def _cool(self, cand: Candidate, error: ir.Error, outcome: Outcome) -> None:
        if _cooling_off(cand.account, self.runtime.snapshot.config.disable_cooling):
            return
        seconds = self.health.record_failure(cand.account.id, cand.route.upstream, error, outcome)
        log.warning("account %s failed for %s (%s); cooling %.0fs", cand.account.label,
                    cand.route.upstream, error, seconds)

    def _final_error(self, model: str, progress: _Progress) -> ir.Error:
        error = progress.last_error
        if progress.soonest is not None and (error is None or error.status == 429):
            wait = max(0.0, progress.soonest - time.monotonic())
            until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
            cause = f" (tried {'; '.join(progress.attempts)})" if progress.attempts else ""
            return ir.Error(429, "rate_limit",
                            f"all accounts for {model} are cooling down until {until}{cause}",
                            retry_after=max(1.0, wait), code="all_accounts_cooling")
        if error is None:
            return ir.Error(503, "overloaded", f"no account is available for {model}", code="no_available_account")
        final = _client_facing(error, model, progress.last_account)
        if len(progress.attempts) > 1:
            final.message = f"{final.message} (tried {'; '.join(progress.attempts)})"
        return final

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, inbound: Inbound, model: str, cand: Candidate,
                       progress: _Progress) -> Reply | StreamReply:
        account = cand.account
        provider = account.provider
        progress.upstream_headers = None
        if provider.owns_exchange:
            return await self._exchange(inbound, model, cand, progress, provider)
        upstream = dialects.get(provider.speaks(inbound.dialect.name))
        # the same dialect: the reply passes through (re-framed when the client wants another framing)
        # (not with stream resume: the router must know the text so far)
        passthrough = upstream.name == inbound.dialect.name and not (
            inbound.stream and progress.snapshot.config.stream_resume)
        upstream_stream = provider.upstream_stream(inbound.stream)
        if passthrough and progress.suffix_reasoning is None and cand.route.levels is None:
            with client_data:
                body, drop_usage_chunks = self._passthrough_body(inbound, cand, upstream_stream, provider,
                                                                 progress.snapshot.config.payload)
        else:
            if progress.ir_request is None:
                progress.ir_request = _parse_client(inbound)
            # a reasoning suffix (or the model's configured thinking levels) on the same dialect: the body
            # is re-rendered in its own dialect (a lossless round trip), the reply still passes through
            with client_data:
                body = await self._translated_body(progress.ir_request, cand, upstream, upstream_stream,
                                                   progress.suffix_reasoning, provider, progress.snapshot, inbound,
                                                   inline_images=not passthrough)
            drop_usage_chunks = passthrough and upstream_stream and not progress.ir_request.include_usage
        response = await self._send(inbound, cand, upstream, body, upstream_stream, provider)
        progress.upstream_headers = response.headers
        served = _Served(account, model, cand.route.upstream, inbound.record)
        if inbound.stream:
            if passthrough:
                return await self._pass_stream(response, inbound, served, drop_usage_chunks, upstream)
            return await self._translate_stream(response, inbound, upstream, progress, served)
        if upstream_stream:
            parsed = await self._assemble(response, upstream, account)
            self._account(inbound, served, parsed.usage)
            return Reply(200, orjson.dumps(self._render_response(inbound, parsed, model)))
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raise ir.Error(502, "server_error",
                           f"upstream {account.label} closed the connection mid-response") from None
        finally:
            response.release()
        if passthrough:
            self._account(inbound, served, usage.from_body(upstream, data))
            rename = _model_renamer(cand.route.upstream, model)
            return Reply(200, rename(data) if rename else data)
        try:
            parsed = upstream.parse_response(orjson.loads(data))
        except (orjson.JSONDecodeError, ir.Error) as exc:
            raise ir.Error(502, "server_error", f"upstream {account.label} sent an unreadable reply") from exc
        self._account(inbound, served, parsed.usage)
        return Reply(200, orjson.dumps(self._render_response(inbound, parsed, model)))

    async def _exchange(self, inbound: Inbound, model: str, cand: Candidate, progress: _Progress,
                        provider: Provider) -> Reply | StreamReply:
        """A provider that runs its upstream itself (a WebSocket, a web
        protocol) yields IR events; failover, health, accounting and the
        client's encoding stay the pipeline's."""
        if progress.ir_request is None:
            progress.ir_request = _parse_client(inbound)
        request = _fitted(progress.ir_request, cand, True, progress.suffix_reasoning, progress.snapshot.catalogue)
        events = provider.exchange(cand.account, request, inbound.headers, self.transport).__aiter__()
        served = _Served(cand.account, model, cand.route.upstream, inbound.record)
        first: list[ir.Event] = []
        try:
            async for event in events:  # the first event that means something decides failover
                if isinstance(event, ir.ErrorEvent):
                    raise event.error
                first.append(event)
                if not isinstance(event, ir.Start):
                    break
            inbound.record.first_upstream_byte()
        except BaseException as exc:
            await _close(events)  # the provider's connection is released before failing over
            if isinstance(exc, aiohttp.ClientError | TimeoutError):
                raise _stream_failure(exc, cand.account) from None
            raise
        if inbound.stream:
            return StreamReply(self._event_chunks(events, first, inbound, progress.ir_request, served),
                               content_type=inbound.dialect.stream_content_type)
        assembler = Assembler()
        assembler.feed_all(first)
        try:
            async for event in events:
                assembler.feed(event)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _stream_failure(exc, cand.account) from None
        finally:
            await _close(events)
        if assembler.error is not None:
            raise assembler.error
        parsed = assembler.response()
        self._account(inbound, served, parsed.usage)
        return Reply(200, orjson.dumps(self._render_response(inbound, parsed, model)))

    async def _event_chunks(self, events: AsyncIterator[ir.Event], first: list[ir.Event], inbound: Inbound,
                            ir_request: ir.Request | None, served: _Served) -> AsyncIterator[bytes]:
        encoder = _ClientEncoder(self, inbound, ir_request, served)
        try:
            yield encoder.encode(first)
            async for event in events:
                yield encoder.encode([event])
            inbound.record.completed()
            yield encoder.close()
        except (aiohttp.ClientError, TimeoutError) as exc:
            inbound.record.completed()
            yield encoder.fail(_stream_failure(exc, served.account))
        finally:
            await _close(events)
            self._account(inbound, served, encoder.spent)

    def _render_response(self, inbound: Inbound, parsed: ir.Response, model: str) -> dict[str, Any]:
        parsed.model = model  # the name the client asked for (a fallback's when one answered)
        return inbound.dialect.render_response(parsed)

    async def _send(self, inbound: Inbound, cand: Candidate, upstream: Dialect, body: bytes,
                    upstream_stream: bool, provider: Provider) -> aiohttp.ClientResponse:
        account = cand.account
        if provider.requests_per_credential:
            self._hold_back(account, provider.requests_per_credential)
        for attempt in range(2):
            call = await provider.call(account, cand.route.upstream, upstream_stream, inbound.headers,
                                       upstream.name)
            headers = {**(_STREAM_HEADERS if upstream_stream else _JSON_HEADERS),
                       "x-request-id": inbound.record.request_id, **call.headers, **account.headers}
            for name, source in account.copied_headers.items():  # "$NAME": the client's own header
                value = inbound.headers.get(source)
                if value:
                    headers[name] = value
            urls = (call.url, *call.fallback_urls)
            for number, url in enumerate(urls):
                last_url = number == len(urls) - 1
                inbound.record.upstream(url, headers, body)
                try:
                    response = await self.transport.post(url, body, headers, account.proxy_url,
                                                         account.timeouts)
                except TimeoutError:
                    if last_url:
                        raise ir.Error(504, "timeout", f"upstream {account.label} did not answer in time") from None
                    continue
                except aiohttp.ClientError as exc:
                    if last_url:
                        raise ir.Error(502, "server_error",
                                       f"upstream {account.label} unreachable: {type(exc).__name__}") from None
                    continue
                windows = provider.headroom(response.headers)  # every answer, a 429's included
                if windows:
                    self.health.observe(account.id, windows)
                if response.status < 400:
                    return response
                if not last_url and (response.status == 429 or response.status >= 500):
                    response.release()
                    continue  # the same endpoint elsewhere may work
                error = await self._upstream_error(response, upstream, account, bool(windows))
                if response.status == 401 and attempt == 0 and await provider.on_unauthorized(account):
                    break  # the credential was refreshed: one more try on this account
                raise error
        raise ir.Error(502, "server_error", f"upstream {account.label} refused the refreshed credential")

    def _hold_back(self, account: Account, limit: int) -> None:
        """The upstream's own per-credential limit: refuse before sending, and
        cool every model of the credential until a slot frees."""
        credential = account.credential.id if account.credential is not None else account.id
        wait = self.runtime.request_windows.take(credential, limit)
        if wait > 0:
            raise ir.Error(429, "rate_limit", f"{account.label} reached its upstream's limit of {limit} "
                                              f"requests per minute; cooling down for {wait:.0f}s",
                           retry_after=max(1.0, wait), code="credential_request_limit")

    # ------------------------------------------------------------------ bodies

    def _passthrough_body(self, inbound: Inbound, cand: Candidate, upstream_stream: bool, provider: Provider,
                          rules: payload.Rules) -> tuple[bytes, bool]:
        body = dict(inbound.body)  # shallow: providers edit top-level keys only
        model = cand.route.upstream if cand.route.upstream != inbound.model else None
        changed, drop_usage_chunks = inbound.dialect.passthrough_edits(body, model, upstream_stream)
        if rules.rules:  # the config's payload rules
            edited = rules.apply(body, (cand.route.upstream, inbound.model), inbound.dialect.name,
                                 inbound.dialect.name, inbound.headers)
            if edited is not None:
                body, changed = edited, True
        adapted = provider.adapt_body(cand.account, body)
        if adapted is not None:
            body, changed = adapted, True
        return (orjson.dumps(body) if changed else inbound.raw), drop_usage_chunks

    async def _translated_body(self, request: ir.Request, cand: Candidate, upstream: Dialect,
                               upstream_stream: bool, suffix_reasoning: ir.Reasoning | None,
                               provider: Provider, snapshot: Snapshot, inbound: Inbound,
                               inline_images: bool = True) -> bytes:
        request = _fitted(request, cand, upstream_stream, suffix_reasoning, snapshot.catalogue)
        if upstream.needs_inline_images and inline_images:
            await self.images.inline(request)
        body = upstream.render_request(request)
        rules = snapshot.config.payload
        if rules.rules:  # the config's payload rules, on the body as the upstream reads it
            body = rules.apply(body, (cand.route.upstream, inbound.model), upstream.name, inbound.dialect.name,
                               inbound.headers) or body
        adapted = provider.adapt_body(cand.account, body)
        return orjson.dumps(body if adapted is None else adapted)

    async def _upstream_error(self, response: aiohttp.ClientResponse, upstream: Dialect,
                              account: Account, signalled: bool = False) -> ir.Error:
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            data = b""
        finally:
            response.release()
        windows = account.provider.error_windows(response.status, data)
        if windows:  # a quota error that names its reset: skipped until then, on every replica
            self.health.observe(account.id, windows)
        readable = _is_error_document(data)
        error = upstream.parse_error(response.status, data if readable else b"")
        if not readable:  # raw text (an HTML page, a proxy's echo of our headers) is never relayed
            error.message = f"the upstream answered HTTP {response.status}"
        error.message = self.runtime.redaction.redactor(error.message)
        retry_after = response.headers.get("retry-after")
        if retry_after and error.retry_after is None:
            error.retry_after = durations.retry_after_header(retry_after)
        if response.status == 429 and account.provider.signals_every_answer and not signalled and not windows \
                and error.retry_after is None and not error.code:
            error.code = REQUEST_RATE_LIMIT  # no window ran out: a burst, or this request's size
        return error

    # ------------------------------------------------------------------ accounting

    def _account(self, inbound: Inbound, served: _Served, spent: ir.Usage | None) -> None:
        self.ledger.record(inbound.client_key, served.account.id, served.model, spent)
        provider = served.account.provider
        label = cost.label(provider.billing, self.health.quotas.get(served.account.id) if self.health.quotas
                           else None)
        usd = None
        if label == "per-token":
            price = cost.price_of(served.upstream_model, self.runtime.config.prices, provider.list_prices)
            usd = cost.dollars(price, spent)
        inbound.record.spent(spent, label, usd)
        if provider.prompt_cache and spent is not None and spent.cache_read_tokens is not None:
            watch = self.runtime.cachewatch
            turn = watch.begin(inbound.headers, inbound.body)
            if turn is not None:
                inbound.record.cache = watch.explain(turn, served.account.id, spent)
        self.limiter.settle(inbound.client_key, spent)

    # ------------------------------------------------------------------ streams

    async def _assemble(self, response: aiohttp.ClientResponse, upstream: Dialect,
                        account: Account) -> ir.Response:
        """A whole reply from an upstream that only streams."""
        decoder = upstream.stream_decoder()
        assembler = Assembler()
        try:
            async for batch in iter_sse_batches(response):
                for event_name, data in batch:
                    assembler.feed_all(decoder.feed(event_name, data))
            assembler.feed_all(decoder.close())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _stream_failure(exc, account) from None
        finally:
            response.close()
        if assembler.error is not None:
            raise assembler.error
        return assembler.response()

    async def _pass_stream(self, response: aiohttp.ClientResponse, inbound: Inbound, served: _Served,
                           drop_usage_chunks: bool, upstream: Dialect) -> StreamReply:
        account = served.account
        chunks = response.content.iter_any()
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            response.close()
            raise ir.Error(502, "server_error", f"upstream {account.label} sent an empty stream") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise _stream_failure(exc, account) from None
        inbound.record.first_upstream_byte()
        if b"error" in first[:512]:
            error = _leading_error(upstream, first)
            if error is not None:
                response.close()
                raise error  # nothing reached the client yet: fail over
        return StreamReply(self._pass_chunks(response, chunks, first, inbound, served, drop_usage_chunks, upstream),
                           content_type=inbound.dialect.stream_content_type)

    async def _pass_chunks(self, response: aiohttp.ClientResponse, chunks: AsyncIterator[bytes], first: bytes,
                           inbound: Inbound, served: _Served, drop_usage_chunks: bool,
                           upstream: Dialect) -> AsyncIterator[bytes]:
        markers = inbound.dialect.stream_terminators
        meter = usage.StreamUsage(inbound.dialect, drop_usage_chunks)
        framer = inbound.dialect.passthrough_framer()
        rename = _model_renamer(served.upstream_model, served.model)
        # look for the terminator as chunks pass (a final event can be long: a Responses
        # response.completed echoes every tool of the request); ``edge`` catches one split
        # across two chunks
        seen_end = any(m in first for m in markers)
        edge = first[-MARKER_EDGE:]
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
            yield passed(out)
            async for chunk in chunks:
                if not seen_end:
                    window = edge + chunk
                    seen_end = any(m in window for m in markers)
                    edge = window[-MARKER_EDGE:]
                out = meter.feed(chunk)
                if out:
                    yield passed(out)
            inbound.record.completed()
            out = meter.flush()
            complete = not markers or seen_end
            if not complete:
                cut = ir.Error(502, "server_error",
                               f"upstream {served.account.label} ended the stream before completion")
                self._stream_failed(served, cut)
                out += self._stream_error(upstream, inbound, cut)
            yield passed(out) + (framer.close() if framer else b"")
        except (aiohttp.ClientError, TimeoutError) as exc:
            inbound.record.completed()
            broken = _stream_failure(exc, served.account)
            self._stream_failed(served, broken)
            yield passed(self._stream_error(upstream, inbound, broken)) + (framer.close() if framer else b"")
        finally:
            response.close()
            self._account(inbound, served, meter.usage)

    async def _translate_stream(self, response: aiohttp.ClientResponse, inbound: Inbound, upstream: Dialect,
                                progress: _Progress, served: _Served) -> StreamReply:
        decoder = upstream.stream_decoder()
        try:
            batches, first = await first_events(response, decoder)
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise _stream_failure(exc, served.account) from None
        inbound.record.first_upstream_byte()
        for event in first:
            if isinstance(event, ir.ErrorEvent):
                response.close()
                raise event.error
        if progress.snapshot.config.stream_resume:
            chunks = Resume(self, inbound, progress, served).chunks(
                decoded(response, batches, decoder, first, served.account.label),
                _ClientEncoder(self, inbound, progress.ir_request, served))
        else:
            chunks = self._translated_chunks(response, batches, decoder, first, inbound, progress.ir_request, served)
        return StreamReply(chunks, content_type=inbound.dialect.stream_content_type)

    async def _translated_chunks(self, response: aiohttp.ClientResponse,
                                 batches: AsyncIterator[list[tuple[str | None, bytes]]], decoder: StreamDecoder,
                                 first: list[ir.Event], inbound: Inbound, ir_request: ir.Request | None,
                                 served: _Served) -> AsyncIterator[bytes]:
        """One write per upstream read: every event decoded from a read is
        encoded and sent together."""
        encoder = _ClientEncoder(self, inbound, ir_request, served)
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
            yield encoder.fail(_stream_failure(exc, served.account))
        finally:
            response.close()
            self._account(inbound, served, encoder.spent)

    def _stream_failed(self, served: _Served, error: ir.Error) -> None:
        """A stream that broke after reaching the client still counts against
        its account: nothing can fail over now, but the next request should
        not be sent to an account that just failed. The error event the
        client gets names the request (the status line went out long ago)."""
        served.record.broke(error)
        error.message = f"{error.message} (request id {served.record.request_id})"
        if _cooling_off(served.account, self.runtime.snapshot.config.disable_cooling):
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


class _ClientEncoder:
    """IR events -> the client's stream, keeping the usage they report and
    reporting an upstream failure to health as it passes."""

    __slots__ = ("encoder", "pipeline", "served", "spent")

    def __init__(self, pipeline: Pipeline, inbound: Inbound, request: ir.Request | None, served: _Served) -> None:
        self.pipeline = pipeline
        self.served = served
        self.encoder = inbound.dialect.stream_encoder(model=served.model, request=request)
        self.spent: ir.Usage | None = None

    def encode(self, events: list[ir.Event]) -> bytes:
        out = []
        for event in events:
            if isinstance(event, ir.Finish | ir.Start | ir.UsageEvent):
                if event.usage is not None:
                    self.spent = event.usage if self.spent is None else self.spent.merged(event.usage)
            elif isinstance(event, ir.ErrorEvent):  # the upstream failed (or was cut) mid-answer
                event.error.message = self.pipeline.runtime.redaction.redactor(event.error.message)
                self.pipeline._stream_failed(self.served, event.error)
            out.append(self.encoder.encode(event))
        return b"".join(out)

    def close(self) -> bytes:
        return self.encoder.close()

    def fail(self, error: ir.Error) -> bytes:
        self.pipeline._stream_failed(self.served, error)
        return self.encoder.encode(ir.ErrorEvent(error)) + self.encoder.close()


async def _close(events: AsyncIterator[ir.Event]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _fitted(request: ir.Request, cand: Candidate, upstream_stream: bool, suffix_reasoning: ir.Reasoning | None,
            catalogue: Catalogue) -> ir.Request:
    """The request as this account's model gets it: its name, and one
    canonical reasoning setting fitted to what the model supports."""
    info = catalogue.lookup(cand.route.upstream)
    if cand.route.levels is not None:  # the config's thinking levels for this model
        info = _with_levels(info, cand.route)
    thinking = suffix.fit(suffix.merged(request.reasoning, suffix_reasoning), info)
    if thinking is not None and thinking.include_thoughts is None:
        # the client asked for reasoning; have it come back (Responses summaries, Gemini thoughts)
        thinking = dataclasses.replace(thinking, include_thoughts=True)
    return dataclasses.replace(request, model=cand.route.upstream, stream=upstream_stream,
                               include_usage=True if upstream_stream else request.include_usage,
                               reasoning=thinking)


_CLIENT_DATA_FAULTS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError,
                       orjson.JSONEncodeError)


def _parse_client(inbound: Inbound) -> ir.Request:
    """The client's request in the IR; a value the dialect cannot read is the
    client's 400, whatever exception it raised."""
    with client_data:
        return inbound.dialect.parse_request(inbound.body, model=inbound.model, stream=inbound.stream)


class _ClientData:
    """``with client_data:`` around work on the client's own data: its faults
    (nesting beyond what JSON encoders take, integers beyond 64 bits,
    unhashable schema values, types that do not fit) become a 400 naming the
    problem, never a 500. (A class, not a generator: it sits on the hot path.)"""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, ir.Error) or not isinstance(exc, _CLIENT_DATA_FAULTS):
            return
        if isinstance(exc, RecursionError | orjson.JSONEncodeError):
            message = ("the request is nested too deeply or holds a value that cannot be forwarded (JSON "
                       "nesting is limited to 250 levels and integers to 64 bits)")
        else:
            message = f"the request could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        log.info("request refused as malformed: %s: %s", type(exc).__name__, str(exc)[:200])
        raise ir.bad_request(message) from None


client_data = _ClientData()


def _is_error_document(data: bytes) -> bool:
    """A JSON error in one of the shapes the dialects know (``{"error": ...}``,
    Gemini's list of them, or a bare ``message``/``detail``)."""
    try:
        payload = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return False
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return False
    return isinstance(payload.get("error"), dict | str) or isinstance(payload.get("message"), str) \
        or isinstance(payload.get("detail"), str)


def _leading_error(upstream: Dialect, first: bytes) -> ir.Error | None:
    """An error event at the very start of a 200 stream (e.g. Anthropic's
    ``overloaded_error``): nothing has reached the client, so fail over."""
    decoder = upstream.stream_decoder()
    for name, data in SSEParser().feed(first):
        for event in decoder.feed(name, data):
            if isinstance(event, ir.ErrorEvent):
                return event.error
    return None


def _stream_failure(exc: BaseException, account: Account) -> ir.Error:
    return broken(exc, account.label)


def _request_fault(error: ir.Error, progress: _Progress) -> ir.Error:
    """Two accounts failed on the same request with a bare 500: the request
    is the likely cause, so no account is cooled and no more are tried."""
    return ir.Error(502, "server_error", "two upstream accounts failed on this request with HTTP 500, so the "
                                         "request itself is the likely cause; it was not tried further "
                                         f"(tried {'; '.join(progress.attempts)})", code="upstream_rejected_request")


def _client_facing(error: ir.Error, model: str, account: str | None) -> ir.Error:
    """An upstream credential problem is not the client's: never answer
    401/403 (the client's own key was fine), but say what happened: a 502
    whose code names refused upstream credentials, not an overload."""
    if error.status in (401, 402, 403):
        return ir.Error(502, "server_error",
                        f"the upstream refused the credentials of account {account or '?'} for {model} "
                        f"({error.status}: {error.message})", code="upstream_credentials_refused")
    return error


def _model_renamer(upstream: str, served: str) -> Callable[[bytes], bytes] | None:
    """A pass-through body or stream names the model as the upstream knows
    it; the client gets the name it asked for. Only when the two differ (an
    alias, a prefix, a fallback) is anything edited: a byte replacement of
    the JSON member, no parsing."""
    if upstream == served:
        return None
    sent, wanted = orjson.dumps(upstream), orjson.dumps(served)
    pairs = [(f'"{field}":{sep}'.encode() + sent, f'"{field}":{sep}'.encode() + wanted)
             for field in ("model", "modelVersion") for sep in ("", " ")]

    def rename(data: bytes) -> bytes:
        if sent not in data:
            return data
        for old, new in pairs:
            data = data.replace(old, new)
        return data

    return rename


def _with_levels(info: ModelInfo | None, route: ModelRoute) -> ModelInfo:
    """The model as the config describes it: reasoning by these levels only
    ("none" among them: it may be switched off; none at all: no reasoning)."""
    levels = route.levels or ()
    named = tuple(level for level in levels if level not in ("none", "auto"))
    base = info or ModelInfo(route.upstream, route.context or 128_000, 8_192)
    return dataclasses.replace(base, reasoning="level" if named else "none", levels=named,
                               can_disable="none" in levels)


def _retries(own: int | None, default: int) -> int:
    return max(0, default if own is None else own)


def _admitted(pool: Pool, round_number: int, default: int) -> Pool:
    tiers = [[c for c in tier if _retries(c.account.request_retry, default) >= round_number] for tier in pool.tiers]
    return Pool(pool.model, [tier for tier in tiers if tier])


def _cooling_off(account: Account, default: bool) -> bool:
    """``disable-cooling``: the entry's own value, else the config's."""
    return default if account.disable_cooling is None else account.disable_cooling
