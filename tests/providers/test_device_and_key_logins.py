"""Kimi, xAI, iFlow and Vertex end to end: login (device approval, scripted
browser, cookie, service-account import) -> auth file -> a request through
every ingress dialect -> refresh (or re-mint) near expiry -> still works."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crossroads.auth import device, flows, tokens
from crossroads.auth.callback import parse_redirect
from crossroads.auth.spec import LoginResult
from crossroads.auth.table import OAuthTable
from crossroads.providers import iflow, vertex
from tests.auth.tables import oauth_table
from tests.auth.test_flows import follow
from tests.fakes.oauth import FakeIdentity
from tests.fakes.subscriptions import FakeIflow, FakeKimi, FakeVertex, FakeXai
from tests.harness import CLIENT_KEY, RouterProcess
from tests.providers.ingress import ALL, via_chat, via_gemini


def logged_in(endpoints: dict[str, Any], login: Callable[[OAuthTable], Coroutine[Any, Any, list[LoginResult]]]
              ) -> list[LoginResult]:
    """Run ``login`` with the OAuth table of a config holding ``endpoints``."""
    return asyncio.run(login(oauth_table(endpoints)))


def device_login(kind: str, identity: FakeIdentity, endpoints: dict[str, Any]) -> LoginResult:
    async def run(table: OAuthTable) -> list[LoginResult]:
        started = await device.start(table, kind)

        async def approve(seconds: float) -> None:
            identity.approve(started.user_code)

        return await device.poll(started, sleep=approve)

    [result] = logged_in(endpoints, run)
    return result


def save(auth_dir: Path, result: LoginResult) -> Path:
    path = auth_dir / f"{result.record_id}.json"
    path.write_bytes(orjson.dumps(result.data))
    return path


def expire_soon(auth_file: Path, seconds: float = 60) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(auth_file.read_bytes())
    data["expired"] = tokens.format_time(time.time() + seconds)
    auth_file.write_bytes(orjson.dumps(data))
    return data


def ask_until_refreshed(router: RouterProcess, model: str, identity: FakeIdentity, calls_before: int) -> None:
    """Requests keep working while the router notices the new expiry (hot
    reload) and refreshes exactly once."""
    deadline = time.monotonic() + 10
    while identity.refresh_calls == calls_before and time.monotonic() < deadline:
        assert "You said: later" in via_chat(router, model, "later")
        time.sleep(0.2)
    assert identity.refresh_calls == calls_before + 1


def every_dialect(router: RouterProcess, model: str) -> None:
    for name, ask in ALL.items():
        assert f"You said: via {name}" in ask(router, model, f"via {name}"), name
    assert "You said: streamed" in via_chat(router, model, "streamed", stream=True)


def test_kimi_device_login_then_every_dialect_then_refresh(tmp_path: Path) -> None:
    with FakeIdentity(client_id="test-client", interval=0) as identity, FakeKimi(identity) as upstream:
        url = identity.base_url
        endpoints = {"kimi": {"client-id": "test-client", "token-url": f"{url}/oauth/token",
                              "device-url": f"{url}/oauth/device", "base-url": upstream.api_url}}
        result = device_login("kimi", identity, endpoints)
        device_id = result.data["device_id"]
        assert len(device_id) == 32 and result.data["refresh_token"].startswith("rt-")
        auth_file = save(tmp_path, result)
        upstream.device_id = device_id  # the upstream knows the device the login registered
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints}
        with RouterProcess(config) as router:
            every_dialect(router, "kimi-k2")
            assert {r.headers["X-Msh-Device-Id"] for r in upstream.requests} == {device_id}
            old = expire_soon(auth_file)
            ask_until_refreshed(router, "kimi-k2", identity, identity.refresh_calls)
            stored = orjson.loads(auth_file.read_bytes())
            assert stored["refresh_token"] != old["refresh_token"] and stored["device_id"] == device_id
            assert "You said: still" in via_chat(router, "kimi-k2", "still")
            assert upstream.requests[-1].headers["Authorization"] == f"Bearer {stored['access_token']}"


def test_xai_device_login_via_discovery_then_every_dialect_then_refresh(tmp_path: Path) -> None:
    with FakeIdentity(client_id="test-client", interval=0, email="grok@example.com",
                      id_token_claims={"sub": "u-1"}) as identity, FakeXai(identity) as upstream:
        # only the discovery document is configured: device and token endpoints come from it
        endpoints = {"xai": {"client-id": "test-client",
                             "discovery-url": f"{identity.base_url}/.well-known/openid-configuration",
                             "base-url": upstream.api_url}}
        result = device_login("xai", identity, endpoints)
        assert result.record_id == "xai-grok@example.com"
        auth_file = save(tmp_path, result)
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints}
        with RouterProcess(config) as router:
            every_dialect(router, "grok-4")
            assert {r.path for r in upstream.requests} == {"/v1/responses"}
            old = expire_soon(auth_file)
            ask_until_refreshed(router, "grok-4", identity, identity.refresh_calls)
            assert orjson.loads(auth_file.read_bytes())["refresh_token"] != old["refresh_token"]
            assert "You said: still" in via_chat(router, "grok-4", "still")


def test_iflow_browser_and_cookie_logins_then_signed_requests_then_refresh(tmp_path: Path) -> None:
    two_days = 2 * 24 * 3600  # longer than iFlow's 24-hour refresh lead
    with FakeIdentity(client_id="test-client", client_secret="test-secret", email="i@example.com",
                      expires_in=two_days) as identity, FakeIflow(api_key="sk-iflow-fake") as upstream:
        url = identity.base_url
        endpoints = {"iflow": {"client-id": "test-client", "client-secret": "test-secret",
                               "authorize-url": f"{url}/iflow/oauth", "token-url": f"{url}/oauth/token",
                               "userinfo-url": f"{url}/api/oauth/getUserInfo",
                               "apikey-url": f"{upstream.base_url}/api/openapi/apikey",
                               "base-url": upstream.api_url}}

        async def browser(table: OAuthTable) -> list[LoginResult]:
            started = flows.start(table, "iflow", port=1)
            return await flows.complete(started, parse_redirect(await follow(started.url, into_callback=False)))

        async def cookie(table: OAuthTable) -> list[LoginResult]:
            return await iflow.CookieLogin().run(table.entry("iflow"), {"cookie": "other=1; BXAuth=cookie-1"})

        [oauth_result] = logged_in(endpoints, browser)
        [cookie_result] = logged_in(endpoints, cookie)
        assert oauth_result.data["api_key"] == "sk-iflow-fake" and oauth_result.data["email"] == "i@example.com"
        assert cookie_result.data["api_key"] == "sk-iflow-cookie" and "refresh_token" not in cookie_result.data
        auth_file = save(tmp_path, oauth_result)
        save(tmp_path, cookie_result)
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints,
                  "routing": {"session-affinity": False}}  # alternate between the two accounts
        with RouterProcess(config) as router:
            every_dialect(router, "qwen3-max")
            served = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
            keys = {r.headers["Authorization"] for r in served}
            assert keys == {"Bearer sk-iflow-fake", "Bearer sk-iflow-cookie"}  # both accounts serve
            assert all(r.headers["User-Agent"] == "iFlow-Cli" for r in served)
            old = expire_soon(auth_file)
            ask_until_refreshed(router, "qwen3-max", identity, identity.refresh_calls)
            stored = orjson.loads(auth_file.read_bytes())
            assert stored["refresh_token"] != old["refresh_token"] and stored["api_key"] == "sk-iflow-fake"
            assert "You said: still" in via_chat(router, "qwen3-max", "still")


def service_account(token_uri: str) -> tuple[dict[str, Any], Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = {"type": "service_account", "project_id": "vx-proj", "private_key_id": "k1", "private_key": pem,
               "client_email": "bot@vx-proj.iam.gserviceaccount.com", "token_uri": token_uri}
    return account, key.public_key()


def test_vertex_service_account_then_every_dialect_then_remint(tmp_path: Path) -> None:
    # minted tokens live 301 s: inside the 5-minute lead a second after minting
    with FakeIdentity(client_id="unused", expires_in=301) as identity, \
            FakeVertex(identity, project="vx-proj", location="europe-west4") as upstream:
        account, public_key = service_account(f"{identity.base_url}/oauth/token")
        identity.service_keys[account["client_email"]] = public_key  # the fake verifies the RS256 signature
        key_file = tmp_path / "sa.json"
        key_file.write_bytes(orjson.dumps(account))
        [result] = asyncio.run(vertex.ServiceAccountImport().run(
            oauth_table().entry("vertex"), {"service_account": str(key_file), "location": "europe-west4"}))
        auth_dir = tmp_path / "auth"
        auth_dir.mkdir()
        auth_file = save(auth_dir, result)
        endpoints = {"vertex": {"token-url": f"{identity.base_url}/oauth/token", "base-url": upstream.base_url}}
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(auth_dir), "oauth-endpoints": endpoints}
        with RouterProcess(config) as router:
            every_dialect(router, "gemini-2.5-pro")
            prefix = "/v1/projects/vx-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:"
            assert {r.path for r in upstream.requests} == {f"{prefix}generateContent",
                                                          f"{prefix}streamGenerateContent"}
            minted = identity.jwt_grants
            assert minted >= 1
            time.sleep(1.1)
            assert "You said: again" in via_gemini(router, "gemini-2.5-pro", "again")
            assert identity.jwt_grants > minted  # re-minted near expiry, from the same key
            assert orjson.loads(auth_file.read_bytes()) == result.data  # nothing written back


def test_vertex_api_key_entries_use_the_publisher_endpoint() -> None:
    with FakeVertex(api_keys=["vk-1"]) as upstream:
        config = {"api-keys": [CLIENT_KEY], "vertex-api-key": [{"api-key": "vk-1", "base-url": upstream.base_url}]}
        with RouterProcess(config) as router:
            assert "You said: hi" in via_gemini(router, "gemini-2.5-flash", "hi")
            assert "You said: chat" in via_chat(router, "gemini-2.5-flash", "chat", stream=True)
        paths = [r.path for r in upstream.requests]
        assert paths == ["/v1/publishers/google/models/gemini-2.5-flash:generateContent",
                         "/v1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"]
        assert {r.headers["x-goog-api-key"] for r in upstream.requests} == {"vk-1"}


def test_device_login_driven_through_the_management_api(tmp_path: Path) -> None:
    import urllib3

    with FakeIdentity(client_id="test-client", interval=0, email="grok@example.com",
                      id_token_claims={"sub": "u-2"}) as identity, FakeXai(identity) as upstream:
        endpoints = {"xai": {"client-id": "test-client",
                             "discovery-url": f"{identity.base_url}/.well-known/openid-configuration",
                             "base-url": upstream.api_url}}
        config = {"api-keys": [CLIENT_KEY], "auth-dir": str(tmp_path), "oauth-endpoints": endpoints,
                  "remote-management": {"secret-key": "m-key"}}
        http = urllib3.PoolManager()
        auth = {"authorization": "Bearer m-key"}
        with RouterProcess(config) as router:
            base = f"{router.base_url}/v0/management"
            started = http.request("GET", f"{base}/xai-auth-url", headers=auth).json()
            assert started["user_code"] and started["url"].startswith(identity.base_url)
            status = http.request("GET", f"{base}/get-auth-status?state={started['state']}", headers=auth).json()
            assert status == {"status": "wait"}
            identity.approve(started["user_code"])
            deadline = time.monotonic() + 10
            while status["status"] == "wait" and time.monotonic() < deadline:
                time.sleep(0.2)
                status = http.request("GET", f"{base}/get-auth-status?state={started['state']}",
                                      headers=auth).json()
            assert status == {"status": "ok", "accounts": ["xai-grok@example.com"]}, status
            assert (tmp_path / "xai-grok@example.com.json").exists()
            deadline = time.monotonic() + 5  # hot reload serves the new account
            while time.monotonic() < deadline:
                try:
                    assert "You said: hi" in via_chat(router, "grok-4", "hi")
                    break
                except Exception:
                    time.sleep(0.2)
            else:
                raise AssertionError("the new account was not served")
