"""State shared by several replicas through Redis.

Layout under ``PREFIX`` (default ``crossroads``):

- ``PREFIX:cd:ACCOUNT\\x1fMODEL`` — a cooldown (JSON), expiring when it ends;
  every change is also published on ``PREFIX:events`` so each replica keeps a
  local copy and selection reads only that copy.
- ``PREFIX:q:ACCOUNT`` — the account's quota windows (a hash: window key ->
  JSON); changes are batched like usage, written and published on
  ``PREFIX:events``, so every replica routes on the same picture. A window
  whose number moved by less than a point is not republished within
  ``QUOTA_REPUBLISH_SECONDS``.
- ``PREFIX:aff:MODEL\\x1fSESSION`` — the account a conversation sticks to (TTL).
- ``PREFIX:rl:KEYHASH:{req,tok}`` — sliding one-minute logs (sorted sets) and
  ``PREFIX:budget:KEYHASH:PERIODSTART`` — tokens used this period; checked and
  counted by one Lua script, so replicas cannot overshoot a limit together.
- ``PREFIX:usage:{by_key,by_account,by_model}`` — hashes of ``NAME\\x1fFIELD``
  counters (HINCRBY), written in batches in the background.
- ``PREFIX:cursor:NAME`` — INCR counters.

Client keys never appear in Redis: rate windows are named by a hash of the
key and usage by its masked form.

When Redis cannot be reached the replica logs it once, carries on with
in-process state (``MemoryState``) and reconnects in the background; usage
counted meanwhile is written once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
import uuid
from collections.abc import Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crossroads import quota
from crossroads.state.base import USAGE_TABLES, Cooldown, Limits, Refusal, StateUnavailable, UsageTables
from crossroads.state.memory import WINDOW, MemoryState

log = logging.getLogger("crossroads.state")

SEP = "\x1f"
REQUEST_BUDGET = 0.25  # seconds a request may wait on Redis before using local state
RECONNECT_SECONDS = 1.0
USAGE_FLUSH_SECONDS = 0.05  # usage reaches Redis (and the shared report) this long after a request
FAILURES = (RedisError, OSError, TimeoutError)
QUOTA_REPUBLISH_SECONDS = 30.0
QUOTA_KEEP_SECONDS = 8 * 86400  # longer than the longest window that is reset weekly

# KEYS: request log, token log, budget counter. ARGV: rpm, tpm, budget (-1 = none), member.
# Returns nil when admitted (and counts the request), else {limit, seconds}.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local span = tonumber(ARGV[5])
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    if #oldest == 0 then return {'rpm', tostring(span)} end
    return {'rpm', tostring(tonumber(oldest[2]) + span - now)}
  end
end
if tpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - span)
  local events = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local total = 0
  for i = 1, #events, 2 do
    total = total + tonumber(string.match(events[i], ':(%d+)$'))
  end
  if total >= tpm then
    if #events == 0 then return {'tpm', tostring(span)} end
    return {'tpm', tostring(tonumber(events[2]) + span - now)}
  end
end
if budget >= 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= budget then
  return {'budget', '0'}
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(span) + 1)
end
return nil
"""

# KEYS: token log, budget counter. ARGV: tokens, member, budget expiry (epoch s, -1 = no budget), span.
SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[2] .. ':' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])) + 1)
if tonumber(ARGV[3]) >= 0 then
  redis.call('INCRBY', KEYS[2], ARGV[1])
  redis.call('EXPIREAT', KEYS[2], ARGV[3])
end
return 1
"""


class RedisState:
    shared = True

    def __init__(self, url: str, prefix: str = "crossroads", *, window: float = WINDOW) -> None:
        self.url = url
        self.prefix = prefix
        self.replica_number = 0
        self._window = window
        self._local = MemoryState()
        self.cooldowns = self._local.cooldowns
        self._origin = uuid.uuid4().hex[:12]
        self._members = itertools.count()
        self._redis = aioredis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2.0)
        self._reserve = self._redis.register_script(RESERVE)
        self._settle = self._redis.register_script(SETTLE)
        self._channel = f"{prefix}:events"
        self._up = False
        self._outage_logged = False
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending_usage: dict[tuple[str, str], dict[str, int]] = {}
        self.quotas = self._local.quotas
        self.planned = self._local.planned
        self._pending_quota: dict[str, dict[str, quota.Window]] = {}
        self._flush_scheduled = False
        self._synced = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._up

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect, and know the current cooldowns before the first request."""
        try:
            await asyncio.wait_for(self._redis.ping(), 2.0)
            self.replica_number = int(await self._redis.incr(self._key("cursor", "replicas")))
        except FAILURES as exc:
            self._went_down(exc)
            self._listener = asyncio.get_running_loop().create_task(self._listen())
            return
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), 2.0)

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *FAILURES):
                await self._listener
        if self._up:
            with contextlib.suppress(*FAILURES):
                await asyncio.wait_for(self._flush_usage(), 2.0)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(*FAILURES):
            await self._redis.aclose()

    def _went_down(self, exc: BaseException) -> None:
        was_up, self._up = self._up, False
        if was_up or not self._outage_logged:
            self._outage_logged = True
            log.warning("state: Redis at %s unreachable (%s); using in-process state until it is back",
                        _safe_url(self.url), type(exc).__name__ if not str(exc) else exc)

    def _came_up(self) -> None:
        if not self._up and self._outage_logged:
            log.info("state: Redis at %s is reachable again; sharing state", _safe_url(self.url))
        self._outage_logged = False
        self._up = True

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (a sync test): local state only
            work.close()
            return
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, Any]) -> None:
        if not self._up:
            work.close()
            return
        try:
            await work
        except FAILURES as exc:
            self._went_down(exc)

    async def _listen(self) -> None:
        """Follow other replicas' cooldown changes; reconnect after an outage."""
        while not self._closed:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                await self._load_cooldowns()  # after subscribing, so no change falls in between
                await self._load_quotas()
                self._came_up()
                await self._resync()
                self._synced.set()
                while not self._closed:
                    message = await pubsub.get_message(timeout=RECONNECT_SECONDS)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
                    elif not self._up:  # a command failed while the subscription lived on
                        await self._redis.ping()
                        self._came_up()
                        await self._resync()
            except FAILURES as exc:
                self._went_down(exc)
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                with contextlib.suppress(*FAILURES):
                    await pubsub.aclose()

    async def _resync(self) -> None:
        """After an outage: publish the cooldowns learnt meanwhile, write the usage counted meanwhile."""
        now = time.monotonic()
        for (account, model), cooldown in list(self.cooldowns.items()):
            if cooldown.until > now:
                await self._publish_put(account, model, cooldown, only_if_new=True)
        for account, windows in list(self.quotas.items()):
            self._pending_quota.setdefault(account, {}).update(windows)
        await self._flush_usage()

    # ---------------------------------------------------------------- cooldowns

    def put_cooldown(self, account: str, model: str, cooldown: Cooldown) -> None:
        self._local.put_cooldown(account, model, cooldown)
        self._background(self._guarded(self._publish_put(account, model, cooldown)))

    def drop_cooldown(self, account: str, model: str) -> None:
        if (account, model) not in self.cooldowns:
            return
        self._local.drop_cooldown(account, model)
        self._background(self._guarded(self._publish_drop(account, model)))

    def drop_all_cooldowns(self) -> None:
        self._local.drop_all_cooldowns()
        self._background(self._guarded(self._publish_clear()))

    async def _publish_put(self, account: str, model: str, cooldown: Cooldown, only_if_new: bool = False) -> None:
        until = time.time() + (cooldown.until - time.monotonic())
        value = orjson.dumps({"a": account, "m": model, "u": until, "r": cooldown.reason, "s": cooldown.strikes})
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._key("cd", account + SEP + model), value, pxat=max(1, int(until * 1000)), nx=only_if_new)
        pipe.publish(self._channel, orjson.dumps({"o": self._origin, "op": "put", "v": orjson.Fragment(value)}))
        await pipe.execute()

    async def _publish_drop(self, account: str, model: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._key("cd", account + SEP + model))
        pipe.publish(self._channel, orjson.dumps({"o": self._origin, "op": "drop", "a": account, "m": model}))
        await pipe.execute()

    async def _publish_clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._key("cd", "*"), count=500)]
        pipe = self._redis.pipeline(transaction=False)
        if keys:
            pipe.unlink(*keys)
        pipe.publish(self._channel, orjson.dumps({"o": self._origin, "op": "clear"}))
        await pipe.execute()

    async def _load_cooldowns(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._key("cd", "*"), count=500)]
        for start in range(0, len(keys), 500):
            for value in await self._redis.mget(keys[start:start + 500]):
                if value is not None:
                    self._put_from_wire(orjson.loads(value))

    # ---------------------------------------------------------------- quota windows

    def put_quota(self, account: str, windows: list[quota.Window]) -> None:
        known = self.quotas.get(account, {})
        changed = [w for w in windows if _worth_publishing(known.get(w.key), w)]
        self._local.put_quota(account, windows)
        if not changed:
            return
        self._pending_quota.setdefault(account, {}).update({w.key: w for w in changed})
        if not self._flush_scheduled and self._up:
            self._flush_scheduled = True
            self._background(self._guarded(self._flush_usage_soon()))

    async def _load_quotas(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._key("q", "*"), count=500)]
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        head = len(self._key("q", ""))
        for key, reply in zip(keys, await pipe.execute() if keys else [], strict=True):
            account = key.decode()[head:]
            windows = [quota.from_wire(orjson.loads(v)) for v in reply.values()]
            self._local.put_quota(account, [w for w in windows if w is not None])

    def _apply(self, data: bytes) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict) or event.get("o") == self._origin:
            return
        op = event.get("op")
        if op == "put" and isinstance(event.get("v"), dict):
            self._put_from_wire(event["v"])
        elif op == "drop":
            self._local.drop_cooldown(str(event.get("a")), str(event.get("m")))
        elif op == "clear":
            self._local.drop_all_cooldowns()
        elif op == "quota" and isinstance(event.get("w"), dict):
            for account, values in event["w"].items():
                windows = [quota.from_wire(v) for v in values] if isinstance(values, list) else []
                self._local.put_quota(str(account), [w for w in windows if w is not None])

    def _put_from_wire(self, value: dict[str, Any]) -> None:
        until = float(value["u"]) - time.time() + time.monotonic()
        self._local.put_cooldown(str(value["a"]), str(value["m"]),
                                 Cooldown(until, str(value.get("r", "")), int(value.get("s", 1))))

    # ---------------------------------------------------------------- affinity

    async def get_affinity(self, model: str, session: str) -> str | None:
        if not self._up:
            return None  # the Affinity object's own memory answers
        try:
            value = await asyncio.wait_for(self._redis.get(self._key("aff", model + SEP + session)),
                                           REQUEST_BUDGET)
        except FAILURES as exc:
            self._went_down(exc)
            return None
        return value.decode() if isinstance(value, bytes) else value

    def set_affinity(self, model: str, session: str, account: str, ttl: float) -> None:
        self._background(self._guarded(self._write_affinity(model, session, account, ttl)))

    async def _write_affinity(self, model: str, session: str, account: str, ttl: float) -> None:
        await self._redis.set(self._key("aff", model + SEP + session), account, px=max(1, int(ttl * 1000)))

    # ---------------------------------------------------------------- rate windows and budgets

    def _window_keys(self, key: str, limits: Limits) -> list[str]:
        digest = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
        return [self._key("rl", digest, "req"), self._key("rl", digest, "tok"),
                self._key("budget", digest, str(int(limits.period_start)))]

    def _member(self) -> str:
        return f"{self._origin}.{next(self._members)}"

    async def reserve(self, key: str, limits: Limits) -> Refusal | None:
        if not self._up:
            return self._local.reserve_now(key, limits)
        args: list[str | int | float] = [_limit(limits.rpm), _limit(limits.tpm), _limit(limits.budget_tokens), self._member(),
                self._window]
        try:
            verdict = await asyncio.wait_for(self._reserve(self._window_keys(key, limits), args), REQUEST_BUDGET)
        except FAILURES as exc:
            self._went_down(exc)
            return self._local.reserve_now(key, limits)
        if verdict is None:
            return None
        limit, seconds = (v.decode() if isinstance(v, bytes) else str(v) for v in verdict)
        if limit == "budget":
            return Refusal(limit, limits.period_end - time.time())
        return Refusal(limit, float(seconds))

    def settle(self, key: str, tokens: int, limits: Limits) -> None:
        if not self._up:
            self._local.settle(key, tokens, limits)
            return
        keys = self._window_keys(key, limits)
        expiry = int(limits.period_end) + 3600 if limits.budget_tokens is not None else -1
        self._background(self._guarded(self._settle(keys[1:], [tokens, self._member(), expiry, self._window])))

    # ---------------------------------------------------------------- usage

    def add_usage(self, client_key: str, account: str, model: str, counts: Mapping[str, int]) -> None:
        pending = self._pending_usage
        for table, name in (("by_key", client_key), ("by_account", account), ("by_model", model)):
            row = pending.get((table, name))
            if row is None:
                row = pending[(table, name)] = {}
            for field, amount in counts.items():
                if amount:
                    row[field] = row.get(field, 0) + amount
        if not self._flush_scheduled and self._up:
            self._flush_scheduled = True
            self._background(self._guarded(self._flush_usage_soon()))

    async def _flush_usage_soon(self) -> None:
        # a short wait gathers many requests into one write: per interval the cost is
        # the number of distinct (key, account, model) rows, not the number of requests
        await asyncio.sleep(USAGE_FLUSH_SECONDS)
        await self._flush_usage()

    async def _flush_usage(self) -> None:
        """One pipelined write for everything counted since the last flush."""
        self._flush_scheduled = False
        batch, self._pending_usage = self._pending_usage, {}
        windows, self._pending_quota = self._pending_quota, {}
        if not batch and not windows:
            return
        pipe = self._redis.pipeline(transaction=False)
        for (table, name), row in batch.items():
            for field, amount in row.items():
                pipe.hincrby(self._key("usage", table), name + SEP + field, amount)
        if windows:
            wire = {account: [w.wire() for w in items.values()] for account, items in windows.items()}
            for account, values in wire.items():
                key = self._key("q", account)
                pipe.hset(key, mapping={v["k"] + (":" + v["f"] if v["f"] else ""): orjson.dumps(v)
                                        for v in values})
                pipe.expire(key, QUOTA_KEEP_SECONDS)
            pipe.publish(self._channel, orjson.dumps({"o": self._origin, "op": "quota", "w": wire}))
        try:
            await pipe.execute()
        except FAILURES:
            _merge(self._pending_usage, batch)  # written after the reconnect
            for account, items in windows.items():
                self._pending_quota.setdefault(account, {}).update(items)
            raise

    async def usage(self) -> UsageTables:
        """Totals of all replicas, this one's unwritten counts included."""
        if not self._up:
            raise StateUnavailable(f"Redis at {_safe_url(self.url)} is unreachable")
        pipe = self._redis.pipeline(transaction=False)
        for table in USAGE_TABLES:
            pipe.hgetall(self._key("usage", table))
        try:
            replies = await asyncio.wait_for(pipe.execute(), 2.0)
        except FAILURES as exc:
            self._went_down(exc)
            raise StateUnavailable(f"Redis at {_safe_url(self.url)} is unreachable") from None
        tables: UsageTables = {table: {} for table in USAGE_TABLES}
        for table, reply in zip(USAGE_TABLES, replies, strict=True):
            for raw_field, raw_value in reply.items():
                name, _, field = raw_field.decode().rpartition(SEP)
                tables[table].setdefault(name, {})[field] = int(raw_value)
        for (table, name), row in self._pending_usage.items():
            _merge_row(tables[table].setdefault(name, {}), row)
        return tables

    # ---------------------------------------------------------------- cursors

    async def next_cursor(self, name: str) -> int:
        if self._up:
            try:
                return int(await asyncio.wait_for(self._redis.incr(self._key("cursor", name)), REQUEST_BUDGET))
            except FAILURES as exc:
                self._went_down(exc)
        return await self._local.next_cursor(name)


def _worth_publishing(known: quota.Window | None, new: quota.Window) -> bool:
    return (known is None or abs(known.used - new.used) >= 0.01
            or abs((known.resets_at or 0.0) - (new.resets_at or 0.0)) > 5.0
            or new.observed_at - known.observed_at >= QUOTA_REPUBLISH_SECONDS)


def _limit(value: int | None) -> int:
    return -1 if value is None else value


def _merge(into: dict[tuple[str, str], dict[str, int]], more: dict[tuple[str, str], dict[str, int]]) -> None:
    for name, row in more.items():
        _merge_row(into.setdefault(name, {}), row)


def _merge_row(into: dict[str, int], row: Mapping[str, int]) -> None:
    for field, amount in row.items():
        into[field] = into.get(field, 0) + amount


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
