"""The request's story, top to bottom: ``handle`` walks the model and its
fallbacks, ``_serve_pool`` runs rounds over a pool's accounts, ``_try``
judges one account's failure (cool it, move on, or give up), ``_attempt``
builds the upstream body and sends it (``_exchange`` for providers that run
their upstream themselves) and hands the answer to the relay. What a
served request spent is accounted here too (see the package docstring for
failover)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import aiohttp
import orjson

from crossroads import cost, dialects, ir, passthrough, payload, usage
from crossroads.assemble import Assembler
from crossroads.dialects.base import Dialect
from crossroads.http import Reply, StreamReply
from crossroads.pipeline.client_data import client_data, parse_client
from crossroads.pipeline.relay import Relay, aclose, assembled, model_renamer
from crossroads.pipeline.request import Inbound, Progress, Served
from crossroads.pipeline.upstream_errors import (
    client_facing,
    cooling_off,
    request_fault,
    stream_failure,
    upstream_error,
)
from crossroads.providers import error_rules
from crossroads.providers.base import Account, ModelRoute, Outcome, Provider
from crossroads.providers.subscription_catalogue import Catalogue, ModelInfo
from crossroads.resume import Resume
from crossroads.routing import suffix
from crossroads.routing.registry import Candidate, Pool
from crossroads.routing.sticky import session_key
from crossroads.runtime import Runtime
from crossroads.snapshot import Snapshot
from crossroads.transport import Answer

log = logging.getLogger("crossroads.pipeline")

# the event loop's clock has millisecond steps: a sleep until a cooldown ends can wake a hair before
# it has, which would make the next round find nothing to try
WAKE_MARGIN = 0.01
# what every upstream request carries; a provider's own headers and then the entry's configured ones win
_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
_STREAM_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


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
        self.relay = Relay(runtime, self.record_spend)  # answers on their way to the client

    # ------------------------------------------------------------------ entry

    async def handle(self, inbound: Inbound) -> Reply | StreamReply:
        snapshot = self.runtime.snapshot
        if inbound.model not in snapshot.registry and await self.runtime.services.discover(inbound.model):
            snapshot = self.runtime.snapshot  # a side service listed the model just now
        progress = Progress(snapshot)
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
                          progress: Progress) -> Reply | StreamReply | None:
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
                   progress: Progress) -> Reply | StreamReply | None:
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
                raise request_fault(progress.attempts) from None
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
        if cooling_off(cand.account, self.runtime.snapshot.config.disable_cooling):
            return
        seconds = self.health.record_failure(cand.account.id, cand.route.upstream, error, outcome)
        log.warning("account %s failed for %s (%s); cooling %.0fs", cand.account.label,
                    cand.route.upstream, error, seconds)

    def _final_error(self, model: str, progress: Progress) -> ir.Error:
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
        final = client_facing(error, model, progress.last_account)
        if len(progress.attempts) > 1:
            final.message = f"{final.message} (tried {'; '.join(progress.attempts)})"
        return final

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, inbound: Inbound, model: str, cand: Candidate,
                       progress: Progress) -> Reply | StreamReply:
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
                progress.ir_request = parse_client(inbound)
            # a reasoning suffix (or the model's configured thinking levels) on the same dialect: the body
            # is re-rendered in its own dialect (a lossless round trip), the reply still passes through
            with client_data:
                body = await self.translated_body(progress.ir_request, cand, upstream, upstream_stream,
                                                   progress.suffix_reasoning, provider, progress.snapshot, inbound,
                                                   inline_images=not passthrough)
            drop_usage_chunks = passthrough and upstream_stream and not progress.ir_request.include_usage
        response = await self.send_upstream(inbound, cand, upstream, body, upstream_stream, provider)
        progress.upstream_headers = response.headers
        served = Served(account, model, cand.route.upstream, inbound.record)
        if inbound.stream:
            if passthrough:
                return await self.relay.pass_stream(response, inbound, served, drop_usage_chunks, upstream)
            # a stream that may move to another account mid-answer needs the pipeline to send its continuation
            resume = Resume(self, inbound, progress, served) if progress.snapshot.config.stream_resume else None
            return await self.relay.translate_stream(response, inbound, upstream, progress.ir_request, served,
                                                     resume)
        if upstream_stream:
            parsed = await assembled(response, upstream, account)
            self.record_spend(inbound, served, parsed.usage)
            return Reply(200, orjson.dumps(self._render_response(inbound, parsed, model)))
        try:
            data = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raise ir.Error(502, "server_error",
                           f"upstream {account.label} closed the connection mid-response") from None
        finally:
            response.release()
        if passthrough:
            self.record_spend(inbound, served, usage.from_body(upstream, data))
            rename = model_renamer(cand.route.upstream, model)
            return Reply(200, rename(data) if rename else data)
        try:
            parsed = upstream.parse_response(orjson.loads(data))
        except (orjson.JSONDecodeError, ir.Error) as exc:
            raise ir.Error(502, "server_error", f"upstream {account.label} sent an unreadable reply") from exc
        self.record_spend(inbound, served, parsed.usage)
        return Reply(200, orjson.dumps(self._render_response(inbound, parsed, model)))

    async def _exchange(self, inbound: Inbound, model: str, cand: Candidate, progress: Progress,
                        provider: Provider) -> Reply | StreamReply:
        """A provider that runs its upstream itself (a WebSocket, a web
        protocol) yields IR events; failover, health, accounting and the
        client's encoding stay the pipeline's."""
        if progress.ir_request is None:
            progress.ir_request = parse_client(inbound)
        request = _fitted(progress.ir_request, cand, True, progress.suffix_reasoning, progress.snapshot.catalogue)
        events = provider.exchange(cand.account, request, inbound.headers, self.transport).__aiter__()
        served = Served(cand.account, model, cand.route.upstream, inbound.record)
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
            await aclose(events)  # the provider's connection is released before failing over
            if isinstance(exc, aiohttp.ClientError | TimeoutError):
                raise stream_failure(exc, cand.account) from None
            raise
        if inbound.stream:
            return StreamReply(self.relay.event_chunks(events, first, inbound, progress.ir_request, served),
                               content_type=inbound.dialect.stream_content_type)
        assembler = Assembler()
        assembler.feed_all(first)
        try:
            async for event in events:
                assembler.feed(event)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise stream_failure(exc, cand.account) from None
        finally:
            await aclose(events)
        if assembler.error is not None:
            raise assembler.error
        parsed = assembler.response()
        self.record_spend(inbound, served, parsed.usage)
        return Reply(200, orjson.dumps(self._render_response(inbound, parsed, model)))

    def _render_response(self, inbound: Inbound, parsed: ir.Response, model: str) -> dict[str, Any]:
        parsed.model = model  # the name the client asked for (a fallback's when one answered)
        return inbound.dialect.render_response(parsed)

    async def send_upstream(self, inbound: Inbound, cand: Candidate, upstream: Dialect, body: bytes,
                    upstream_stream: bool, provider: Provider) -> Answer:
        """One attempt's request to its account (a resumed stream's next leg sends through it too)."""
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
                    response = await self.transport.call(url, body, headers, account.proxy_url,
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
                error = await upstream_error(response, upstream, account, self.health, self.runtime.redaction,
                                            bool(windows))
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

    async def translated_body(self, request: ir.Request, cand: Candidate, upstream: Dialect,
                               upstream_stream: bool, suffix_reasoning: ir.Reasoning | None,
                               provider: Provider, snapshot: Snapshot, inbound: Inbound,
                               inline_images: bool = True) -> bytes:
        """The IR request as this candidate's upstream reads it: fitted, rendered, edited by the payload rules."""
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

    # ------------------------------------------------------------------ accounting

    def record_spend(self, inbound: Inbound, served: Served, spent: ir.Usage | None) -> None:
        """What an answer spent: in the client's ledger and the request record, priced where it is per token."""
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
    fitted = request.copy()
    fitted.model = cand.route.upstream
    fitted.stream = upstream_stream
    if upstream_stream:
        fitted.include_usage = True
    fitted.reasoning = thinking
    return fitted


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

