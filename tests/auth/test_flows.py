"""Browser and device logins against the fake identity server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from typer.testing import CliRunner

from crossroads.auth import device, flows
from crossroads.auth.callback import CallbackServer, Redirect, parse_redirect
from crossroads.auth.oauth import LoginError
from crossroads.auth.table import OAuthTable
from crossroads.providers import claude_oauth
from tests.auth.tables import every_type_at, oauth_table
from tests.fakes.oauth import FakeIdentity
from tests.harness import free_port


async def follow(url: str, *, into_callback: bool) -> str:
    """The scripted browser: sign in (the fake approves at once) and either
    follow the redirect to the local callback or return it for pasting."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            location = response.headers["Location"]
        if into_callback:
            async with session.get(location) as response:
                assert response.status == 200
                assert "Login complete" in await response.text()
    return location


async def test_claude_login_through_the_local_callback(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.encoding = "json"
    endpoints.extra_token_fields = {"account": {"email_address": "max@example.com", "uuid": "u1"}}
    login = flows.start(oauth, "claude", port=free_port())
    assert "code_challenge_method=S256" in login.url and f"state={login.state}" in login.url
    server = await CallbackServer(login.settings.callback_port, login.settings.callback_path).start()
    try:
        await follow(login.url, into_callback=True)
        redirect = await server.wait(timeout=5)
    finally:
        await server.close()
    [result] = await flows.complete(login, redirect)
    assert result.record_id == "claude-max@example.com"
    assert result.data["type"] == "claude" and result.data["email"] == "max@example.com"
    assert endpoints.refresh_token_valid(result.data["refresh_token"])
    assert endpoints.use_access(result.data["access_token"])
    with pytest.raises(LoginError, match="already completed"):
        await flows.complete(login, redirect)  # replayed


async def test_paste_mode_accepts_url_and_code_hash_state(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.encoding = "json"
    login = flows.start(oauth, "claude", loopback=False)
    location = await follow(login.url, into_callback=False)
    redirect = parse_redirect(location)
    code_hash_state = parse_redirect(f"{redirect.code}#{redirect.state}")
    assert code_hash_state == redirect
    [result] = await flows.complete(login, code_hash_state)
    assert result.data["access_token"].startswith("at-")


async def test_wrong_state_is_refused_clearly(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    login = flows.start(oauth, "codex")
    location = await follow(login.url, into_callback=False)
    good = parse_redirect(location)
    with pytest.raises(LoginError, match="state mismatch"):
        await flows.complete(login, Redirect(good.code, "someone-elses-state"))
    with pytest.raises(LoginError, match="no state"):
        await flows.complete(login, Redirect(good.code, None))
    assert endpoints.refresh_calls == 0 and not login.completed


async def test_pending_logins_refuse_unknown_and_replayed_states(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.encoding = "json"
    pending = flows.PendingLogins()
    login = pending.add(flows.start(oauth, "claude", loopback=False))
    redirect = parse_redirect(await follow(login.url, into_callback=False))
    with pytest.raises(LoginError, match="unknown or expired"):
        await pending.complete(Redirect(redirect.code, "forged"))
    [result] = await pending.complete(redirect)
    assert result.data["type"] == "claude"
    with pytest.raises(LoginError, match="already completed"):
        await pending.complete(redirect)


async def test_setup_token_asks_for_inference_scope_and_long_life(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.encoding = "json"
    login = flows.start(oauth, "claude", loopback=False, options={"setup_token": True})
    assert "scope=user%3Ainference&" in login.url
    redirect = parse_redirect(await follow(login.url, into_callback=False))
    [result] = await flows.complete(login, redirect)
    assert "refresh_token" not in result.data and result.data["token_kind"] == "setup-token"
    token_call = [r for r in endpoints.requests if r.path == "/oauth/token"][-1]
    assert token_call.body["expires_in"] == claude_oauth.SETUP_TOKEN_LIFETIME
    assert token_call.body["code_verifier"] == login.pkce.verifier


async def test_codex_login_reads_account_and_plan_from_id_token(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    endpoints.id_token_claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-42",
                                                                 "chatgpt_plan_type": "plus"}}
    login = flows.start(oauth, "codex")
    assert "id_token_add_organizations=true" in login.url and "codex_cli_simplified_flow=true" in login.url
    [result] = await flows.complete(login, parse_redirect(await follow(login.url, into_callback=False)))
    assert result.data["account_id"] == "acct-42" and result.data["plan_type"] == "plus"
    assert result.data["email"] == "user@example.com"
    assert result.record_id == "codex-user@example.com-plus"


async def test_codex_device_variant(endpoints: FakeIdentity) -> None:
    url = endpoints.base_url
    table = oauth_table({"codex": {
        "client-id": "test-client", "token-url": f"{url}/oauth/token", "device-url": f"{url}/deviceauth/usercode",
        "device-token-url": f"{url}/deviceauth/token"}})
    endpoints.id_token_claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-7"}}
    login = await device.start(table, "codex")
    polls = 0

    async def approve_on_second_poll(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            endpoints.approve(login.user_code)

    [result] = await device.poll(login, sleep=approve_on_second_poll)
    assert polls == 2 and result.data["account_id"] == "acct-7"


@pytest.mark.parametrize("kind", ["qwen", "kimi", "xai"])
async def test_device_flow_pending_then_slow_down_then_approved(endpoints: FakeIdentity, oauth: OAuthTable,
                                                                kind: str) -> None:
    endpoints.interval = 1
    if kind == "xai":  # endpoints come from OIDC discovery
        oauth = oauth_table({**every_type_at(endpoints.base_url), "xai": {
            "client-id": "test-client", "discovery-url": f"{endpoints.base_url}/.well-known/openid-configuration"}})
    login = await device.start(oauth, kind)
    assert (login.pkce is not None) == (kind == "qwen")
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            endpoints.approve(login.user_code)

    [result] = await device.poll(login, sleep=fake_sleep)
    # first poll: pending; second (too fast): slow_down -> +5s; third: approved
    assert waits == [1.0, 1.0, 6.0]
    assert result.data["type"] == kind and endpoints.refresh_token_valid(result.data["refresh_token"])
    device_request = next(r for r in endpoints.requests if r.path == "/oauth/device")
    if kind == "kimi":
        assert device_request.headers["X-Msh-Device-Id"] == result.data["device_id"]


async def test_denied_device_login_says_so(endpoints: FakeIdentity, oauth: OAuthTable) -> None:
    login = await device.start(oauth, "kimi")
    endpoints.approve(login.user_code, deny=True)

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    with pytest.raises(LoginError, match="denied"):
        await device.poll(login, sleep=no_wait)


def test_cli_login_paste_token_and_list_masks_secrets(tmp_path: Path) -> None:
    from crossroads.cli import app

    runner = CliRunner()
    secret = "sk-ant-oat01-" + "x" * 40 + "TAIL"
    result = runner.invoke(app, ["login", "claude", "--token", secret, "--auth-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    listed = runner.invoke(app, ["auth", "list", "--auth-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "provider=claude" in listed.output and secret not in listed.output and "…TAIL" in listed.output


def test_cli_import_and_needs_login_status(tmp_path: Path) -> None:
    from crossroads.cli import app

    source = tmp_path / "in"
    source.mkdir()
    (source / "codex-a@example.com.json").write_bytes(orjson.dumps({
        "type": "codex", "access_token": "at-secret-value-123456", "refresh_token": "rt-secret-value-98765",
        "email": "a@example.com", "expired": "2020-01-01T00:00:00Z", "needs_login": True,
        "last_refresh_error": "invalid_grant: revoked"}))
    target = tmp_path / "auth"
    runner = CliRunner()
    imported = runner.invoke(app, ["auth", "import", str(source / "codex-a@example.com.json"),
                                   "--auth-dir", str(target)])
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(app, ["auth", "list", "--json", "--auth-dir", str(target)])
    [row] = orjson.loads(listed.output)
    assert row["status"] == "needs-login" and row["provider"] == "codex" and row["email"] == "a@example.com"
    assert "rt-secret" not in listed.output and "at-secret-value-123456" not in listed.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "nope"}')
    assert runner.invoke(app, ["auth", "import", str(bad), "--auth-dir", str(target)]).exit_code == 1
    assert time.time() > 0


async def test_iflow_login_gets_the_api_key(endpoints: FakeIdentity) -> None:
    url = endpoints.base_url
    endpoints.client_secret = "iflow-secret"
    table = oauth_table({"iflow": {
        "client-id": "test-client", "client-secret": "iflow-secret", "token-url": f"{url}/oauth/token",
        "authorize-url": f"{url}/iflow/oauth", "userinfo-url": f"{url}/api/oauth/getUserInfo"}})
    login = flows.start(table, "iflow", port=1)
    [result] = await flows.complete(login, parse_redirect(await follow(login.url, into_callback=False)))
    assert result.data["api_key"] == "sk-iflow-fake" and result.data["type"] == "iflow"
    token_call = next(r for r in endpoints.requests if r.path == "/oauth/token")
    assert token_call.headers["Authorization"].startswith("Basic ")


def test_cli_browser_login_catches_the_redirect(tmp_path: Path, endpoints: FakeIdentity,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`crossroads login claude`: the scripted browser follows the authorize
    redirect into the CLI's local callback server."""
    import threading
    import urllib.request

    import yaml

    from crossroads.cli import app

    endpoints.encoding = "json"
    endpoints.extra_token_fields = {"account": {"email_address": "cli@example.com"}}
    url = endpoints.base_url
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"auth-dir": str(tmp_path / "auth"), "oauth-endpoints": {"claude": {
        "client-id": "test-client", "token-url": f"{url}/oauth/token", "authorize-url": f"{url}/oauth/authorize"}}}))

    def browser(target: str) -> bool:
        def visit() -> None:
            time.sleep(0.2)  # the callback server is listening by then
            with urllib.request.urlopen(target, timeout=10) as response:  # follows the 302 to localhost
                assert response.status == 200

        threading.Thread(target=visit, daemon=True).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    monkeypatch.setattr("webbrowser.get", lambda *a: object())  # a machine with a browser
    result = CliRunner().invoke(app, ["login", "claude", "--config", str(config), "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    saved = orjson.loads((tmp_path / "auth" / "claude-cli@example.com.json").read_bytes())
    assert endpoints.refresh_token_valid(saved["refresh_token"])


@pytest.mark.parametrize(("arguments", "message"), [
    (["claude", "--cookie", "BXAuth=1"], "login failed: --cookie does not apply to `crossroads login claude`"),
    (["kimi", "--setup-token"], "login failed: --setup-token does not apply to `crossroads login kimi`"),
    (["claude", "--device"], "login failed: claude has no device login; drop --device"),
    (["vertex"], "login failed: vertex login needs --service-account FILE"),
    (["vertex", "--service-account", "/nonexistent/sa.json"], "login failed: cannot read the service-account file"),
])
def test_cli_login_errors_are_one_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    from crossroads.cli import app

    result = CliRunner().invoke(app, ["login", *arguments, "--auth-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("*.json"))


def test_cli_login_names_come_from_the_specs(tmp_path: Path) -> None:
    from crossroads.cli import app
    from crossroads.commands.login import LOGIN_NAMES

    assert LOGIN_NAMES == ("claude", "anthropic", "codex", "codex-device", "gemini", "gemini-cli", "antigravity",
                           "qwen", "kimi", "xai", "iflow", "vertex", "ctonew", "gemini-web")
    result = CliRunner().invoke(app, ["login", "nope", "--auth-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown provider 'nope'" in result.output
    imported = CliRunner().invoke(app, ["login", "anthropic", "--token", "sk-ant-oat01-" + "y" * 20,
                                        "--auth-dir", str(tmp_path)])
    assert imported.exit_code == 0, imported.output
    [saved] = tmp_path.glob("*.json")
    assert orjson.loads(saved.read_bytes())["type"] == "claude"  # the alias logs in to the claude type


def test_management_login_routes_cover_every_login_name() -> None:
    from crossroads.frontdoors import management

    routes = {r.path: r.handler for r in management.ROUTES if r.path.endswith("-auth-url")}
    today = ("anthropic", "claude", "codex", "gemini-cli", "antigravity", "iflow", "qwen", "kimi", "xai",
             "codex-device")
    assert {f"/v0/management/{name}-auth-url" for name in today} <= set(routes)
    assert "/v0/management/vertex-auth-url" not in routes  # import-only: nothing to start from a browser
    assert set(routes.values()) == {management.start_login}


async def test_login_outcomes_are_kept_per_state_and_bounded() -> None:
    from crossroads.auth.pending import MAX_OUTCOMES, Logins

    logins = Logins()
    logins.waiting("s1")
    assert logins.status("s1") == {"status": "wait"}
    logins.succeeded("s1", ["claude-a"])
    logins.waiting("s2")
    logins.failed("s2", "state mismatch")
    assert logins.status("s1") == {"status": "ok", "accounts": ["claude-a"]}
    assert logins.status("s2") == {"status": "error", "error": "state mismatch"}
    with pytest.raises(KeyError):
        logins.status("unknown")
    for n in range(MAX_OUTCOMES + 1):
        logins.waiting(f"many-{n}")
    logins.waiting("last")
    with pytest.raises(KeyError):
        logins.status("s1")  # the oldest were forgotten
    assert logins.status("last") == {"status": "wait"}
    logins.close()
