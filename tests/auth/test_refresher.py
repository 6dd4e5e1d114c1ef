"""The token lifecycle: single flight, lead, 401 retry, persist-first,
merge on conflict, backoff, dead grants."""

from __future__ import annotations

import asyncio
import time

import pytest

from crossroads import ir
from crossroads.auth import refresher as refresher_module
from crossroads.auth import tokens
from crossroads.auth.refresher import Refresher
from crossroads.auth.table import OAuthTable
from crossroads.credentials.base import Record
from tests.auth.memstore import MemoryStore
from tests.fakes.oauth import FakeIdentity


def claude_record(identity: FakeIdentity, expires_in: float, **extra: object) -> Record:
    grant = identity.issue()
    data = {"type": "claude", "email": "a@example.com", "access_token": grant.access_token,
            "refresh_token": grant.refresh_token, "expired": tokens.format_time(time.time() + expires_in),
            **extra}
    return Record("claude-a@example.com", data)


async def make(identity: FakeIdentity, oauth: OAuthTable, expires_in: float,
               **extra: object) -> tuple[MemoryStore, Refresher, Record]:
    identity.encoding = "json"  # Claude's token endpoint takes JSON
    identity.expires_in = 8 * 3600  # longer than Claude's 4h refresh lead
    store = MemoryStore(claude_record(identity, expires_in, **extra))
    record = await store.get("claude-a@example.com")
    assert record is not None
    return store, Refresher(store, oauth=lambda: oauth), record


async def test_hundred_concurrent_requests_cause_one_refresh(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.refresh_delay = 0.05  # keep the refresh in flight while the others arrive
    store, refresher, record = await make(endpoints, oauth, expires_in=60)  # inside claude's 4h lead
    credential = refresher.credential(record)
    old = credential.access_token
    results = await asyncio.gather(*(credential.token() for _ in range(100)))
    assert endpoints.refresh_calls == 1
    assert len(set(results)) == 1 and results[0] != old
    assert endpoints.use_access(results[0])
    stored = store.records[record.id].data
    assert stored["access_token"] == results[0]
    assert endpoints.refresh_token_valid(stored["refresh_token"])
    assert not endpoints.refresh_token_valid(record.data["refresh_token"])  # rotated and used


async def test_no_refresh_before_the_lead(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    _, refresher, record = await make(endpoints, oauth, expires_in=5 * 3600)  # claude lead is 4h
    credential = refresher.credential(record)
    assert await credential.token() == record.data["access_token"]
    assert endpoints.refresh_calls == 0


async def test_lead_comes_from_config(endpoints: FakeIdentity) -> None:
    from tests.auth.tables import oauth_table

    short_lead = oauth_table({"claude": {"token-url": f"{endpoints.base_url}/oauth/token",
                                         "client-id": "test-client", "refresh-lead": 10}})
    _, refresher, record = await make(endpoints, short_lead, expires_in=60)
    assert await refresher.credential(record).token() == record.data["access_token"]
    assert endpoints.refresh_calls == 0


async def test_unauthorized_refreshes_once_for_all_waiters(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.refresh_delay = 0.05
    _, refresher, record = await make(endpoints, oauth, expires_in=5 * 3600)
    credential = refresher.credential(record)
    used = await credential.token()
    answers = await asyncio.gather(*(credential.after_unauthorized(used) for _ in range(20)))
    assert all(answers)
    assert endpoints.refresh_calls == 1
    assert credential.access_token != used
    # a second 401 with the *new* token refreshes again (once)
    assert await credential.after_unauthorized(credential.access_token)
    assert endpoints.refresh_calls == 2


async def test_rotated_token_is_persisted_before_it_is_used(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    store, refresher, record = await make(endpoints, oauth, expires_in=60)
    store.fail_puts = True
    credential = refresher.credential(record)
    old = credential.access_token
    # the token is still valid, so the request is served with the old one...
    assert await credential.token() == old
    assert endpoints.refresh_calls == 1
    # ...and the new grant was never handed out nor used: the old refresh token still works
    assert credential.access_token == old
    assert endpoints.refresh_token_valid(record.data["refresh_token"])
    store.fail_puts = False
    credential.retry_at = 0
    fresh = await credential.token()
    assert fresh != old and store.records[record.id].data["access_token"] == fresh


async def test_concurrent_edit_of_the_record_is_kept(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    store, refresher, record = await make(endpoints, oauth, expires_in=60)

    async def edit_meanwhile(point: str) -> None:
        if point == "after_response":
            current = store.records[record.id]
            await store.put(Record(record.id, {**current.data, "priority": 7, "disabled": False}))

    refresher.checkpoint = edit_meanwhile
    fresh = await refresher.credential(record).token()
    stored = store.records[record.id].data
    assert stored["priority"] == 7
    assert stored["access_token"] == fresh
    assert endpoints.refresh_token_valid(stored["refresh_token"])


async def test_failure_backs_off_and_keeps_serving_valid_token(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    _, refresher, record = await make(endpoints, oauth, expires_in=60)
    endpoints.fail_refresh(500, "server_error")
    credential = refresher.credential(record)
    assert await credential.token() == record.data["access_token"]
    assert credential.status == "failing" and credential.retry_at > time.time()
    assert await credential.token() == record.data["access_token"]
    assert endpoints.refresh_calls == 1  # backing off: no second call


async def test_expired_token_during_backoff_is_a_retryable_error(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    _, refresher, record = await make(endpoints, oauth, expires_in=-5)
    endpoints.fail_refresh(503, "temporarily_unavailable")
    credential = refresher.credential(record)
    with pytest.raises(ir.Error) as first:
        await credential.token()
    assert first.value.status == 503
    with pytest.raises(ir.Error) as second:
        await credential.token()
    assert "next attempt" in second.value.message
    assert endpoints.refresh_calls == 1


async def test_invalid_grant_marks_needs_login(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    store, refresher, record = await make(endpoints, oauth, expires_in=60)
    endpoints.fail_refresh(400, "invalid_grant", "Refresh token revoked")
    credential = refresher.credential(record)
    with pytest.raises(ir.Error) as raised:
        await credential.token()
    assert raised.value.status == 401 and raised.value.code == "needs_login"
    assert "crossroads login claude" in raised.value.message
    assert record.data["refresh_token"] not in raised.value.message
    stored = store.records[record.id].data
    assert stored[refresher_module.NEEDS_LOGIN] is True
    assert stored["refresh_token"] == record.data["refresh_token"]
    with pytest.raises(ir.Error):
        await credential.token()
    assert endpoints.refresh_calls == 1
    assert await refresher.refresh_due() == 0
    # a fresh login replaces the record and the credential recovers
    grant = endpoints.issue()
    relogged = Record(record.id, {**claude_record(endpoints, 5 * 3600).data,
                                  "access_token": grant.access_token, "refresh_token": grant.refresh_token})
    credential.adopt(await store.put(relogged))
    assert await credential.token() == grant.access_token


async def test_refresh_by_another_process_is_adopted(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    store, refresher, record = await make(endpoints, oauth, expires_in=60)
    credential = refresher.credential(record)
    other = Refresher(store, oauth=refresher.oauth)
    fresh = await other.credential(record).token()
    assert endpoints.refresh_calls == 1
    assert await credential.token() == fresh
    assert endpoints.refresh_calls == 1


async def test_background_pass_refreshes_due_credentials(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    store, refresher, record = await make(endpoints, oauth, expires_in=60)
    refresher.credential(record)
    assert await refresher.refresh_due() == 1
    assert store.records[record.id].data["access_token"] != record.data["access_token"]
    assert await refresher.refresh_due() == 0


async def test_unbound_store_refuses_to_refresh(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    _, _, record = await make(endpoints, oauth, expires_in=-1)
    with pytest.raises(ir.Error) as raised:
        await Refresher(None, oauth=lambda: oauth).credential(record).token()
    assert "no credential store" in raised.value.message
    assert endpoints.refresh_calls == 0


def test_token_layouts() -> None:
    gemini = {"type": "gemini", "token": {"access_token": "a", "refresh_token": "r",
                                          "expiry": "2030-01-02T03:04:05.123456789+01:00"}}
    assert tokens.access_token(gemini) == "a" and tokens.refresh_token(gemini) == "r"
    assert tokens.expires_at(gemini) == pytest.approx(1893549845.123456)
    updated = tokens.with_grant(gemini, tokens.TokenGrant("b", None, 100), now=1000.0)
    assert updated["token"]["access_token"] == "b" and updated["token"]["refresh_token"] == "r"
    assert updated["token"]["expiry"] == "1970-01-01T00:18:20Z"
    antigravity = {"type": "antigravity", "timestamp": 1_700_000_000_000, "expires_in": 3599}
    assert tokens.expires_at(antigravity) == pytest.approx(1_700_003_599.0)
    assert tokens.expires_at({"expires_at": 1_700_000_000_000}) == 1_700_000_000.0
