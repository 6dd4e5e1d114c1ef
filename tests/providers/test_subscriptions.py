"""Qwen, Kimi, xAI, iFlow and Vertex: URLs, required headers, signatures,
service-account token minting; Qwen end to end through the router."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crossroads.auth import device, tokens
from crossroads.credentials.base import Record
from crossroads.providers import AccountContext, iflow, kimi, qwen, xai
from crossroads.providers import vertex as vertex_provider
from tests.auth.memstore import MemoryStore
from tests.auth.tables import account_context, oauth_table
from tests.fakes.oauth import FakeIdentity
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import ALL


@pytest.fixture
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client") as server:
        yield server


@pytest.fixture
def bound() -> MemoryStore:
    """The store refreshed tokens are persisted to."""
    return MemoryStore()


@pytest.fixture
def ctx(bound: MemoryStore, identity: FakeIdentity) -> AccountContext:
    """A refresher bound to ``bound``; token endpoints at ``identity``."""
    url = identity.base_url
    return account_context(bound, {kind: {"client-id": "test-client", "token-url": f"{url}/oauth/token"}
                                   for kind in ("qwen", "kimi", "xai", "vertex")})


def oauth_record(identity: FakeIdentity, kind: str, **extra: Any) -> Record:
    grant = identity.issue()
    return Record(f"{kind}-a", {"type": kind, "access_token": grant.access_token,
                                "refresh_token": grant.refresh_token,
                                "expired": tokens.format_time(time.time() + 7200), **extra}, 1)


async def test_qwen_uses_resource_url_and_dashscope_headers(bound: MemoryStore, identity: FakeIdentity) -> None:
    default_endpoints = account_context(bound)  # resource_url only applies with the default endpoints
    record = oauth_record(identity, "qwen", resource_url="portal.qwen.ai")
    account = qwen.PROVIDER.account_from_record(record, default_endpoints)
    call = await qwen.PROVIDER.call(account, "qwen3-coder-plus", True, {}, qwen.PROVIDER.dialect)
    assert call.url == "https://portal.qwen.ai/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {record.data['access_token']}"
    assert call.headers["x-dashscope-authtype"] == "qwen-oauth"


async def test_kimi_sends_its_device_id(ctx: AccountContext, identity: FakeIdentity) -> None:
    account = kimi.PROVIDER.account_from_record(oauth_record(identity, "kimi", device_id="dev-9"), ctx)
    call = await kimi.PROVIDER.call(account, "kimi-k2", False, {}, kimi.PROVIDER.dialect)
    assert call.url == "https://api.kimi.com/coding/v1/chat/completions"
    assert call.headers["x-msh-device-id"] == "dev-9"


async def test_xai_speaks_responses(ctx: AccountContext, identity: FakeIdentity) -> None:
    account = xai.PROVIDER.account_from_record(oauth_record(identity, "xai"), ctx)
    call = await xai.PROVIDER.call(account, "grok-4", True, {}, xai.PROVIDER.dialect)
    assert call.url == "https://cli-chat-proxy.grok.com/v1/responses" and xai.PROVIDER.dialect == "openai-responses"


async def test_expiring_oauth_token_is_refreshed_through_the_bound_store(bound: MemoryStore, ctx: AccountContext,
                                                                          identity: FakeIdentity) -> None:
    record = oauth_record(identity, "kimi", device_id="d")
    record.data["expired"] = tokens.format_time(time.time() + 30)  # inside the 5-minute lead
    await bound.put(Record(record.id, record.data))
    stored = await bound.get(record.id)
    assert stored is not None
    account = kimi.PROVIDER.account_from_record(stored, ctx)
    call = await kimi.PROVIDER.call(account, "kimi-k2", False, {}, kimi.PROVIDER.dialect)
    fresh = bound.records[record.id].data["access_token"]
    assert fresh != record.data["access_token"] and call.headers["authorization"] == f"Bearer {fresh}"
    assert identity.refresh_calls == 1


async def test_iflow_signs_each_request(ctx: AccountContext) -> None:
    record = Record("iflow-a", {"type": "iflow", "api_key": "sk-iflow-123", "email": "i@example.com"}, 1)
    account = iflow.PROVIDER.account_from_record(record, ctx)
    call = await iflow.PROVIDER.call(account, "qwen3-max", False, {"session-id": "s-1"}, iflow.PROVIDER.dialect)
    message = f"iFlow-Cli:s-1:{call.headers['x-iflow-timestamp']}".encode()
    assert call.headers["x-iflow-signature"] == hmac.new(b"sk-iflow-123", message, hashlib.sha256).hexdigest()
    assert call.headers["authorization"] == "Bearer sk-iflow-123"
    with pytest.raises(ValueError, match="api_key"):
        iflow.PROVIDER.account_from_record(Record("x", {"type": "iflow"}, 1), ctx)


def service_account(identity: FakeIdentity) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "vx-proj", "private_key_id": "k1", "private_key": pem,
            "client_email": "bot@vx-proj.iam.gserviceaccount.com", "token_uri": f"{identity.base_url}/oauth/token"}


async def test_vertex_mints_tokens_from_the_service_account(bound: MemoryStore, ctx: AccountContext,
                                                            identity: FakeIdentity, tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_bytes(orjson.dumps(service_account(identity)))
    [result] = await vertex_provider.ServiceAccountImport().run(
        ctx.oauth.entry("vertex"), {"service_account": str(key_file), "location": "europe-west4"})
    assert result.record_id == "vertex-vx-proj" and result.data["email"].startswith("bot@")
    account = vertex_provider.PROVIDER.account_from_record(Record(result.record_id, result.data, 1), ctx)
    call = await vertex_provider.PROVIDER.call(account, "gemini-2.5-pro", True, {}, vertex_provider.PROVIDER.dialect)
    assert call.url == ("https://europe-west4-aiplatform.googleapis.com/v1/projects/vx-proj/locations/europe-west4"
                        "/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    token = call.headers["authorization"][7:]
    assert identity.use_access(token)
    assert bound.puts == 0  # minted tokens are not written back
    with pytest.raises(ValueError, match="service-account"):
        vertex_provider.record_from_service_account({"type": "authorized_user"})


def test_qwen_device_login_then_router_end_to_end(tmp_path: Path, identity: FakeIdentity) -> None:
    identity.interval = 0
    url = identity.base_url
    endpoints = {"qwen": {"client-id": "test-client", "token-url": f"{url}/oauth/token",
                          "device-url": f"{url}/oauth/device"}}
    table = oauth_table(endpoints)

    async def run() -> Any:
        login = await device.start(table, "qwen")

        async def approve(seconds: float) -> None:
            identity.approve(login.user_code)

        return await device.poll(login, sleep=approve)

    [result] = asyncio.run(run())
    (tmp_path / f"{result.record_id}.json").write_bytes(orjson.dumps(result.data))
    with FakeOpenAIChat(api_keys=[result.data["access_token"]]) as upstream:
        endpoints["qwen"]["base-url"] = f"{upstream.base_url}/v1"
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints}
        with RouterProcess(config) as router:
            for name, ask in ALL.items():
                assert f"You said: q {name}" in ask(router, "qwen3-coder-plus", f"q {name}"), name
        assert all(r.headers["X-DashScope-AuthType"] == "qwen-oauth" for r in upstream.requests)
