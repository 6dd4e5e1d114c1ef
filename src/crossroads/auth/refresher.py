"""The token lifecycle: fresh access tokens for stored OAuth credentials.

Guarantees:
- single flight: however many requests find a token expiring, one refresh
  call goes out per credential; the others wait for its result;
- refresh ahead: a token is refreshed once ``now >= expiry - lead`` (lead per
  provider, from the live :class:`~crossroads.auth.table.OAuthTable`); a
  background loop does it for idle accounts too;
- persist first: the rotated refresh token is written to the Store
  (atomically, merged onto any concurrent edit of the record) before the new
  access token is handed to anyone. Killed before that write, the record
  still holds the previous refresh token, which identity servers honour until
  a token from the new grant is used;
- failures back off (the still-valid token keeps serving); a dead grant
  (``invalid_grant`` ...) marks the credential ``needs_login`` in the record,
  visible to ``crossroads auth list``, instead of retrying forever.

How a type refreshes (its grant, lead, endpoints, whether its tokens are
minted in memory only) comes from its provider's OAuth spec, read from the
table of the config in force at the moment of the refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from crossroads import ir
from crossroads.auth import oauth, tokens
from crossroads.auth.discovery import discover_endpoints
from crossroads.auth.oauth import LoginError
from crossroads.auth.spec import OAuthEntry, RefreshGrant
from crossroads.auth.table import OAuthTable
from crossroads.credentials.base import Conflict, Record, Store, StoreError

log = logging.getLogger("crossroads.auth")

Status = Literal["ok", "failing", "needs_login"]
Checkpoint = Callable[[str], Awaitable[None]]

NEEDS_LOGIN = "needs_login"  # record field set when the grant is dead
LAST_ERROR = "last_refresh_error"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 300.0
MAX_MERGE_ATTEMPTS = 8
RECENT = 30.0  # a 401 right after a refresh is not cured by another one


def needs_login_message(record_id: str, kind: str) -> str:
    return (f"credential {record_id!r} needs a new login (its refresh token was revoked or expired): "
            f"run `crossroads login {kind}`")


class Credential:
    """One stored OAuth credential and its refresh state."""

    def __init__(self, owner: Refresher, record: Record) -> None:
        self.owner = owner
        self.record = record
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = str(record.data.get(LAST_ERROR) or "")
        self.status: Status = "needs_login" if record.data.get(NEEDS_LOGIN) else "ok"
        self.refresh_calls = 0  # refreshes that reached the identity server
        self.refreshed_at = -RECENT  # monotonic time of the last successful refresh
        self._memory: tokens.TokenGrant | None = None  # memory-only types (spec.memory_only)
        self._memory_expiry: float | None = None
        self._inflight: asyncio.Task[str] | None = None

    # -- reading -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def type(self) -> str:
        return self.record.type

    @property
    def data(self) -> dict[str, Any]:
        return self.record.data

    @property
    def memory_only(self) -> bool:
        return self.owner.oauth().spec(self.type).memory_only

    def can_refresh(self) -> bool:
        grant = self._grant()
        return grant is not None and grant.can_refresh(self.data)

    def _grant(self) -> RefreshGrant | None:
        return self.owner.oauth().spec(self.type).refresh

    @property
    def access_token(self) -> str:
        if self._memory is not None:
            return self._memory.access_token
        return tokens.access_token(self.record.data)

    @property
    def expires_at(self) -> float | None:
        if self.memory_only:
            return self._memory_expiry if self._memory is not None else 0.0
        return tokens.expires_at(self.record.data)

    def due(self, now: float) -> bool:
        expiry = self.expires_at
        if expiry is None:
            return False  # no expiry known (pasted or setup tokens): use until a 401
        return now >= expiry - self.owner.oauth().settings(self.type).lead

    def expired(self, now: float) -> bool:
        expiry = self.expires_at
        return expiry is not None and now >= expiry

    def adopt(self, record: Record) -> None:
        """A newer copy of the record (hot reload, another replica's refresh)."""
        if record.version and record.version < self.record.version:
            return
        self.record = record
        if not self.memory_only:
            self._memory = None
        if not record.data.get(NEEDS_LOGIN) and self.status == "needs_login":
            self.status, self.failures, self.retry_at = "ok", 0, 0.0

    # -- the public operations -----------------------------------------------------

    async def token(self) -> str:
        """A usable access token, refreshing first when it is about to expire."""
        if self.status == "needs_login":
            raise self._needs_login_error()
        now = self.owner.clock()
        if not self.due(now):
            return self.access_token
        if not self.can_refresh():
            if self.expired(now):
                raise ir.Error(401, "authentication",
                               f"credential {self.id!r} has expired and cannot be refreshed: "
                               f"run `crossroads login {self.type}`")
            return self.access_token
        if now < self.retry_at:
            return self._token_during_backoff(now)
        try:
            return await self.refresh()
        except ir.Error:
            if self.status != "needs_login" and not self.expired(self.owner.clock()):
                return self.access_token  # still valid: keep serving while refresh backs off
            raise

    async def after_unauthorized(self, used_token: str | None) -> bool:
        """The upstream refused ``used_token``: True when a different token is
        now available (refreshed here or meanwhile by another request). With
        ``None`` (token unknown) a refresh in flight or finished within
        ``RECENT`` seconds counts as the new token."""
        if used_token is None:
            task = self._inflight
            if task is not None and not task.done():
                try:
                    await asyncio.shield(task)
                except ir.Error:
                    return False
                return True
            if time.monotonic() - self.refreshed_at < RECENT:
                return True
        elif self.access_token != used_token:
            return True
        if not self.can_refresh() or self.status == "needs_login":
            return False
        if self.owner.clock() < self.retry_at:
            return False
        try:
            await self.refresh(force=True)
        except ir.Error:
            return False
        return self.access_token != used_token if used_token is not None else True

    async def refresh(self, force: bool = False) -> str:
        """Refresh now; concurrent callers share one call. Raises ir.Error."""
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not loop:
            # a task, not an inline await: a caller giving up must not abort a
            # refresh half way (the rotated token has to reach the store)
            task = loop.create_task(self._refresh(force))
            self._inflight = task
            task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[str]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: waiters may all have gone

    # -- internals ---------------------------------------------------------------------

    def _token_during_backoff(self, now: float) -> str:
        if not self.expired(now):
            return self.access_token
        wait = max(1.0, self.retry_at - now)
        raise ir.Error(503, "overloaded",
                       f"credential {self.id!r} expired and refreshing it failed ({self.last_error}); "
                       f"next attempt in {wait:.0f}s", retry_after=wait)

    def _needs_login_error(self) -> ir.Error:
        return ir.Error(401, "authentication", needs_login_message(self.id, self.type),
                        code="needs_login")

    async def _refresh(self, force: bool) -> str:
        if self.memory_only:
            return await self._mint()
        store = self.owner.store
        if store is None:
            raise ir.Error(503, "overloaded", f"credential {self.id!r} cannot be refreshed: no credential "
                                              "store is bound (the rotated token could not be saved)")
        stored = await store.get(self.id)
        if stored is None:
            self.owner.forget(self.id)  # deleted: stop refreshing it
            raise ir.Error(401, "authentication", f"credential {self.id!r} was deleted")
        if tokens.access_token(stored.data) != self.access_token:
            self.adopt(stored)  # someone else refreshed (another replica, a new login)
            if self.status == "needs_login":
                raise self._needs_login_error()
            if not force and not self.due(self.owner.clock()):
                return self.access_token
        await self.owner.checkpoint("before_request")
        self.refresh_calls += 1
        try:
            grant = await self._call_grant(stored.data)
        except oauth.OAuthError as exc:
            await self._failed(exc, stored)
            raise AssertionError("unreachable") from None
        await self.owner.checkpoint("after_response")
        data = tokens.with_grant(stored.data, grant, self.owner.clock())
        data.pop(NEEDS_LOGIN, None)
        data.pop(LAST_ERROR, None)
        self.record = await self._write(store, stored, data)
        await self.owner.checkpoint("after_persist")
        self.status, self.failures, self.retry_at, self.last_error = "ok", 0, 0.0, ""
        self.refreshed_at = time.monotonic()
        log.info("refreshed credential %s (%s)", self.id, self.type)
        self.owner.on_result("ok")
        return self.access_token

    async def _mint(self) -> str:
        self.refresh_calls += 1
        try:
            grant = await self._call_grant(self.data)
        except oauth.OAuthError as exc:
            await self._failed(exc, None)
            raise AssertionError("unreachable") from None
        self._memory = grant
        self._memory_expiry = self.owner.clock() + (grant.expires_in or 3600.0)
        self.status, self.failures, self.retry_at = "ok", 0, 0.0
        self.refreshed_at = time.monotonic()
        self.owner.on_result("ok")
        return grant.access_token

    async def _call_grant(self, data: dict[str, Any]) -> tokens.TokenGrant:
        # the table of the config in force now: an edited oauth-endpoints applies to the next refresh
        entry = self.owner.oauth().entry(self.type)
        grant = entry.spec.refresh
        if grant is None:
            raise oauth.OAuthError("invalid_grant", f"{self.type} credentials cannot be refreshed")
        return await grant.refresh(data, entry, await self.owner.token_url(entry))

    async def _write(self, store: Store, base: Record, data: dict[str, Any]) -> Record:
        """Put ``data``; if someone edited the record meanwhile, keep their edit
        and lay the new tokens over it (the new refresh token must not be lost)."""
        for _ in range(MAX_MERGE_ATTEMPTS):
            try:
                return await store.put(Record(self.id, data, base.version), expected_version=base.version)
            except Conflict:
                current = await store.get(self.id)
                if current is None:
                    raise ir.Error(401, "authentication",
                                   f"credential {self.id!r} was deleted during its refresh") from None
                data = {**current.data, **tokens.token_fields(data)}
                data.pop(NEEDS_LOGIN, None)
                base = current
            except StoreError as exc:
                raise ir.Error(503, "overloaded",
                               f"credential {self.id!r} refreshed but could not be saved: {exc}") from None
        raise ir.Error(503, "overloaded", f"credential {self.id!r}: the store kept changing during refresh")

    async def _failed(self, exc: oauth.OAuthError, stored: Record | None) -> None:
        self.last_error = str(exc)
        self.owner.on_result("needs_login" if exc.needs_login else "failed")
        if exc.needs_login:
            self.status = "needs_login"
            log.error("%s (%s)", needs_login_message(self.id, self.type), exc.code)
            if stored is not None and self.owner.store is not None:
                marked = {**stored.data, NEEDS_LOGIN: True, LAST_ERROR: self.last_error}
                with contextlib.suppress(ir.Error):
                    self.record = await self._write(self.owner.store, stored, marked)
            raise self._needs_login_error()
        self.status = "failing"
        self.failures += 1
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self.failures - 1))
        self.retry_at = self.owner.clock() + delay
        log.warning("refreshing credential %s failed (%s); retrying in %.0fs", self.id, exc, delay)
        raise ir.Error(503, "overloaded", f"credential {self.id!r} could not be refreshed: {exc}",
                       retry_after=delay)


async def _no_checkpoint(name: str) -> None:
    return None


def _ignore(result: str) -> None:
    return None


class Refresher:
    """Holds every known credential (one refresher per server runtime).

    ``oauth`` returns the OAuth table of the config in force (the server
    passes the live snapshot's), read at every use so that a reload's new
    endpoints apply and a rejected config's never do."""

    def __init__(self, store: Store | None = None, *, oauth: Callable[[], OAuthTable],
                 clock: Callable[[], float] = time.time, checkpoint: Checkpoint = _no_checkpoint) -> None:
        self.store = store
        self.oauth = oauth
        self.clock = clock
        self.checkpoint = checkpoint
        self.credentials: dict[str, Credential] = {}
        self.on_result: Callable[[str], None] = _ignore  # each refresh's result: ok, failed, needs_login
        self._discovered: dict[str, str] = {}  # discovery URL -> token endpoint

    def bind(self, store: Store) -> None:
        """Persist refreshed tokens to ``store`` (the one the records came from)."""
        self.store = store

    async def token_url(self, entry: OAuthEntry) -> str:
        """The token URL; providers that publish it only through OIDC discovery
        have it looked up once per discovery URL."""
        conf = entry.settings
        if conf.token_url or not conf.discovery_url:
            return conf.token_url
        found = self._discovered.get(conf.discovery_url)
        if found is None:
            try:
                _, found = await discover_endpoints(entry)
            except LoginError as exc:
                raise oauth.OAuthError("unreachable", str(exc), 503) from None
            self._discovered[conf.discovery_url] = found
        return found

    def credential(self, record: Record) -> Credential:
        """The live credential for a record; reloads keep the same object (and
        so its single-flight state), updated to the newer record."""
        found = self.credentials.get(record.id)
        if found is None:
            found = Credential(self, record)
            self.credentials[record.id] = found
        elif record is not found.record:
            found.adopt(record)
        return found

    def forget(self, record_id: str) -> None:
        self.credentials.pop(record_id, None)

    async def refresh_due(self) -> int:
        """Refresh every credential within its lead (skipping dead and backing-off ones)."""
        now = self.clock()
        due = [c for c in self.credentials.values()
               if c.status != "needs_login" and now >= c.retry_at and c.due(now) and c.can_refresh()]
        results = await asyncio.gather(*(c.refresh() for c in due), return_exceptions=True)
        return sum(1 for r in results if isinstance(r, str))

    async def run(self, interval: float = 15.0) -> None:
        """Background loop; cancel the task to stop it."""
        while True:
            try:
                await self.refresh_due()
            except Exception:  # one bad record must not stop the loop
                log.exception("background refresh pass failed")
            await asyncio.sleep(interval)

