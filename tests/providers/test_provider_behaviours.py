"""Provider behaviours without a router: Qwen's per-credential request
limit, Codex's per-plan model lists, Gemini CLI multi-project files, Kimi's
Anthropic endpoint, Vertex API keys."""

from __future__ import annotations

import time
from typing import Any

import pytest

from crossroads import ir
from crossroads.auth import tokens
from crossroads.credentials.base import Record
from crossroads.providers import AccountContext, codex, gemini_cli, kimi, qwen, vertex_api_key
from tests.auth.memstore import MemoryStore
from tests.auth.tables import account_context, oauth_table


@pytest.fixture
def ctx() -> AccountContext:
    """A fresh refresher (persisting to a memory store) and the default OAuth table."""
    return account_context(MemoryStore())


def record(kind: str, record_id: str | None = None, **data: Any) -> Record:
    fields = {"type": kind, "access_token": "at-1", "refresh_token": "rt-1",
              "expired": tokens.format_time(time.time() + 7200), **data}
    return Record(record_id or f"{kind}-a", fields, 1)


def test_qwen_cools_the_credential_down_instead_of_sending_the_61st_request() -> None:
    from crossroads.routing.windows import RequestWindows

    limit = qwen.PROVIDER.requests_per_credential
    assert limit == 60  # Qwen Code's own client-side limit
    now = [1000.0]
    windows = RequestWindows(clock=lambda: now[0])
    for _ in range(limit):
        assert windows.take("qwen-a", limit) == 0.0
        now[0] += 0.5  # 60 requests in 30 s
    assert windows.take("qwen-a", limit) == pytest.approx(30.0)
    assert windows.take("qwen-b", limit) == 0.0  # another credential is unaffected
    now[0] += 30.0  # the first request leaves the window
    assert windows.take("qwen-a", limit) == 0.0


def test_qwen_limit_cools_every_model_of_the_credential() -> None:
    from crossroads.routing.health import ALL_MODELS, Health

    health = Health(5.0)
    error = ir.Error(429, "rate_limit", "reached its upstream's limit", retry_after=12.0,
                     code="credential_request_limit")
    outcome = qwen.PROVIDER.classify(error)
    assert outcome.scope == "credential"
    assert health.record_failure("qwen-a", "qwen3-coder-plus", error, outcome) == 12.0
    assert ("qwen-a", ALL_MODELS) in health.snapshot()


@pytest.mark.parametrize(("plan", "has_max"), [("free", False), ("plus", True), ("pro", True),
                                                ("team", True), ("enterprise", True), (None, True)])
def test_codex_models_follow_the_plan(plan: str | None, has_max: bool, ctx: AccountContext) -> None:
    data = {"account_id": "acct-1", **({"plan_type": plan} if plan else {})}
    account = codex.PROVIDER.account_from_record(record("codex", **data), ctx)
    assert ("gpt-5.1-codex-max" in account.routes) is has_max
    assert "gpt-5.1-codex-mini" in account.routes
    if plan:
        assert account.label.endswith(f"({plan})")


def test_gemini_multi_project_file_yields_one_account_per_project(ctx: AccountContext) -> None:
    stored = Record("gemini-g@example.com", {"type": "gemini", "email": "g@example.com",
                                             "project_id": "proj-a, proj-b,proj-a",
                                             "token": {"access_token": "at-1", "refresh_token": "rt-1",
                                                       "expiry": tokens.format_time(time.time() + 7200)}}, 1)
    first, second = gemini_cli.PROVIDER.accounts_from_record(stored, ctx)
    assert (first.id, second.id) == ("gemini-g@example.com#proj-a", "gemini-g@example.com#proj-b")
    assert first.credential is second.credential  # one token, refreshed once for both
    assert gemini_cli.PROVIDER.adapt_body(first, {"model": "m"}) == {"model": "m", "project": "proj-a"}
    assert gemini_cli.PROVIDER.adapt_body(second, {"model": "m"}) == {"model": "m", "project": "proj-b"}
    [single] = gemini_cli.PROVIDER.accounts_from_record(
        Record("gemini-one", {**stored.data, "project_id": "proj-c"}, 1), ctx)
    assert single.id == "gemini-one" and gemini_cli.PROVIDER.adapt_body(single, {})["project"] == "proj-c"
    with pytest.raises(ValueError, match="project_id"):
        gemini_cli.PROVIDER.accounts_from_record(Record("x", {**stored.data, "project_id": " , "}, 1), ctx)


async def test_kimi_serves_anthropic_clients_on_its_anthropic_endpoint(ctx: AccountContext) -> None:
    account = kimi.PROVIDER.account_from_record(record("kimi", device_id="dev-1"), ctx)
    assert kimi.PROVIDER.speaks("openai-chat") == "openai-chat"
    assert kimi.PROVIDER.speaks("gemini") == "openai-chat"  # translated to its main dialect
    assert kimi.PROVIDER.speaks("anthropic") == "anthropic"  # passed through to its Anthropic endpoint
    call = await kimi.PROVIDER.call(account, "kimi-k2", True, {"anthropic-beta": "interleaved-thinking-2025-05-14"},
                                    "anthropic")
    assert call.url == "https://api.kimi.com/coding/v1/messages"
    assert call.headers["authorization"] == "Bearer at-1" and call.headers["x-msh-device-id"] == "dev-1"
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert call.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    chat = await kimi.PROVIDER.call(account, "kimi-k2", False, {}, "openai-chat")
    assert chat.url == "https://api.kimi.com/coding/v1/chat/completions"


async def test_vertex_api_key_entries(ctx: AccountContext) -> None:
    [account] = vertex_api_key.PROVIDER.accounts([{"api-key": "vk-1", "prefix": "vx"}], ctx)
    assert "vx/gemini-2.5-pro" in account.routes
    call = await vertex_api_key.PROVIDER.call(account, "gemini-2.5-pro", True, {}, "gemini")
    assert call.url == ("https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-pro"
                        ":streamGenerateContent?alt=sse")
    assert call.headers["x-goog-api-key"] == "vk-1" and "authorization" not in call.headers
    with pytest.raises(ValueError, match="api-key"):
        vertex_api_key.PROVIDER.accounts([{"base-url": "https://x"}], ctx)


async def test_device_logins_polled_in_the_background_for_the_management_api() -> None:
    import asyncio

    from crossroads.auth import device
    from tests.fakes.oauth import FakeIdentity

    with FakeIdentity(client_id="test-client", interval=0) as identity:
        url = identity.base_url
        table = oauth_table({"kimi": {"client-id": "test-client", "token-url": f"{url}/oauth/token",
                                      "device-url": f"{url}/oauth/device"}})
        saved: list[str] = []

        async def save(results: list[Any]) -> list[str]:
            saved.extend(result.record_id for result in results)
            return [result.record_id for result in results]

        async def no_wait(seconds: float) -> None:
            await asyncio.sleep(0.01)

        pending = device.PendingDeviceLogins()
        try:
            state, login = await pending.start(table, "kimi", save, sleep=no_wait)
            denied_state, denied = await pending.start(table, "kimi", save, sleep=no_wait)
            await asyncio.sleep(0.05)
            assert pending.status(state) == {"status": "wait"} and login.user_code
            identity.approve(login.user_code)
            identity.approve(denied.user_code, deny=True)
            for _ in range(200):
                if pending.status(state)["status"] != "wait" and pending.status(denied_state)["status"] != "wait":
                    break
                await asyncio.sleep(0.01)
            outcome = pending.status(state)
            assert outcome["status"] == "ok" and outcome["accounts"] == saved and len(saved) == 1
            assert pending.status(denied_state) == {"status": "error",
                                                    "error": "the device login was denied; start it again"}
            with pytest.raises(KeyError):
                pending.status("unknown")
        finally:
            pending.cancel_all()
