"""The built-in dashboard in real headless Chromium (Debian's, driven by
Playwright) against a running router with fake upstreams: the pages load
without console errors and keep their layout at desktop and phone widths, a
cooldown shows after a 429, a login completes through a fake identity
server, a config edit applies (and one that is refused says why)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from tests.fakes.claude_oauth import FakeClaudeOAuth
from tests.fakes.common import Scenario
from tests.fakes.oauth import FakeIdentity
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.subscriptions import FakeXai
from tests.harness import RouterProcess

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (scripts/setup.d/50-chromium.sh)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UPSTREAM_KEYS = ["sk-upstream-dashboard-first-0001", "sk-upstream-dashboard-second-002"]
CLIENT = "dash-client-secret-000111"
MANAGEMENT = "dash-management-secret-222333"
HTTP = urllib3.PoolManager(retries=False)
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 760}
TABS = ("accounts", "usage", "requests", "logins", "keys", "config")


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as server:
        server.extra_token_fields = {"account": {"email_address": "dash@example.com"}}
        yield server


@pytest.fixture(scope="module")
def device_identity() -> Iterator[FakeIdentity]:
    with FakeIdentity(client_id="test-client", interval=0, email="grok@example.com",
                      id_token_claims={"sub": "u-2"}) as server:
        yield server


@pytest.fixture(scope="module")
def xai(device_identity: FakeIdentity) -> Iterator[FakeXai]:
    with FakeXai(device_identity) as server:
        yield server


@pytest.fixture(scope="module")
def fakes(identity: FakeIdentity) -> Iterator[tuple[FakeOpenAIChat, FakeClaudeOAuth]]:
    chat = FakeOpenAIChat(api_keys=UPSTREAM_KEYS).start()
    with FakeClaudeOAuth(identity) as claude:
        yield chat, claude
    chat.stop()


@pytest.fixture(scope="module")
def router(fakes: tuple[FakeOpenAIChat, FakeClaudeOAuth], identity: FakeIdentity, device_identity: FakeIdentity,
           xai: FakeXai) -> Iterator[RouterProcess]:
    chat, claude = fakes
    config = {"api-keys": [CLIENT], "remote-management": {"secret-key": MANAGEMENT},
              "routing": {"strategy": "fill-first"},
              "oauth-endpoints": {"claude": {"client-id": "test-client", "token-url": f"{identity.base_url}/oauth/token",
                                             "authorize-url": f"{identity.base_url}/oauth/authorize",
                                             "base-url": claude.base_url},
                                  "xai": {"client-id": "test-client", "base-url": xai.api_url,
                                          "discovery-url": f"{device_identity.base_url}/.well-known/openid-configuration"}},
              "openai-compatibility": [{"name": "up", "base-url": f"{chat.base_url}/v1",
                                        "api-key-entries": [{"api-key": k} for k in UPSTREAM_KEYS],
                                        "models": [{"name": "gpt-4o-mini", "alias": "m1"}]}]}
    with RouterProcess(config) as process:
        yield process


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=ARGS, viewport=DESKTOP)
        yield context
        context.close()


@pytest.fixture
def page(browser: Any, router: RouterProcess) -> Iterator[Any]:
    page = browser.new_page()
    page.errors = []  # console errors and uncaught exceptions, checked by the tests that expect none
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"{router.base_url}/management.html")
    page.fill("#secret", MANAGEMENT)
    page.click("#signin button[type=submit]")
    yield page
    page.close()


def ask(router: RouterProcess, model: str = "m1") -> int:
    return HTTP.request("POST", f"{router.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {CLIENT}"},
                        json={"model": model, "messages": [{"role": "user", "content": "hi"}]}).status


def open_tab(page: Any, tab: str) -> None:
    page.click(f"#tabs button[data-tab={tab}]")
    page.wait_for_selector(f"section#{tab}:not([hidden])")


def check_layout(page: Any, shots: Path, name: str) -> None:
    """Saved as a screenshot, and checked: nothing wider than the window, the
    header's controls visible and not on top of each other."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name}: the page is {width[0]}px wide in a {width[1]}px window"
    boxes = [page.locator(selector).bounding_box()
             for selector in ("h1", *(f"#tabs button[data-tab={t}]" for t in TABS), "#secret")]
    assert all(box is not None and box["width"] > 0 and box["height"] > 0 for box in boxes), name
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a is not None and b is not None
            overlap = (min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]) > 1
                       and min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"]) > 1)
            assert not overlap, f"{name}: header controls overlap: {a} {b}"
    section = page.locator("section.tab:not([hidden])").bounding_box()
    assert section is not None and section["x"] >= 0 and section["x"] + section["width"] <= width[1] + 1, name


def test_root_links_the_dashboard_which_needs_the_secret_for_data(router: RouterProcess, browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{router.base_url}/")
        page.click("#dashboard")
        page.wait_for_url(re.compile(r"/management\.html"))
        assert "Management key" in page.inner_text("header")
        assert "Enter the management key" in page.inner_text("#notice")
    finally:
        page.close()
    assert HTTP.request("GET", f"{router.base_url}/v0/management/accounts").status == 401
    assert HTTP.request("GET", f"{router.base_url}/v0/management/requests",
                        headers={"x-management-key": "wrong-guess-123"}).status == 401


def test_every_page_loads_without_errors_and_keeps_its_layout(page: Any, router: RouterProcess,
                                                             tmp_path: Path) -> None:
    for _ in range(3):
        assert ask(router) == 200
    page.wait_for_selector("#accounts-rows tr[data-account]")
    for viewport, label in ((DESKTOP, "desktop"), (NARROW, "narrow")):
        page.set_viewport_size(viewport)
        for tab in TABS:
            open_tab(page, tab)
            page.wait_for_load_state("networkidle")
            check_layout(page, tmp_path, f"{tab}-{label}")
    assert page.errors == []
    assert len(list(tmp_path.glob("*.png"))) == 2 * len(TABS)

    open_tab(page, "usage")  # the three charts drew bars for the requests just made
    page.wait_for_selector("#chart-requests svg rect")
    assert page.locator("#chart-tokens svg rect").count() > 0
    assert "m1" in page.inner_text("#usage-rows")
    open_tab(page, "requests")
    page.wait_for_selector("#requests-rows tr[data-request]")
    assert page.locator("#requests-rows tr[data-request]").count() >= 3
    assert CLIENT not in page.content() and UPSTREAM_KEYS[0] not in page.content()


def test_a_429_shows_as_a_cooldown_counting_down(page: Any, router: RouterProcess,
                                                 fakes: tuple[FakeOpenAIChat, FakeClaudeOAuth]) -> None:
    HTTP.request("POST", f"{router.base_url}/v0/management/reset-quota", headers={"x-management-key": MANAGEMENT})
    chat, _ = fakes
    chat.push(Scenario.fail(429, "slow down", retry_after=600))
    assert ask(router) == 200  # the other account answered
    page.reload()
    row = page.locator("#accounts-rows tr", has=page.locator(".status-cooling"))
    row.wait_for(timeout=10_000)
    assert "slow down" in (row.locator("[title]").first.get_attribute("title") or "")
    first = row.locator(".countdown").first.inner_text()
    assert re.fullmatch(r"(9m \d+s|10m 0s)", first), first
    page.wait_for_timeout(2100)
    assert row.locator(".countdown").first.inner_text() != first  # it counts down without a reload
    page.click("#reset-cooldowns")
    page.wait_for_function("() => !document.querySelector('#accounts-rows .status-cooling')")


def test_a_browser_login_completes_with_the_pasted_callback(page: Any, router: RouterProcess) -> None:
    open_tab(page, "logins")
    page.wait_for_selector("#login-name option[value=anthropic]", state="attached")
    page.select_option("#login-name", "anthropic")
    page.click("#login-start")
    link = page.locator("#login-link")
    link.wait_for()
    url = link.get_attribute("href")
    assert url is not None and "code_challenge" in url
    signed_in = HTTP.request("GET", url, redirect=False)  # the user signs in elsewhere (the fake approves)
    assert signed_in.status == 302
    redirect = signed_in.headers["location"]
    page.fill("#login-redirect", redirect)
    page.click("#login-finish")
    page.wait_for_selector("#login-result.success")
    assert "Logged in" in page.inner_text("#login-result")
    open_tab(page, "accounts")
    page.wait_for_function("() => [...document.querySelectorAll('#accounts-rows td')]"
                           ".some(td => td.textContent.includes('dash@example.com'))", timeout=10_000)
    row = page.locator("#accounts-rows tr", has_text="dash@example.com")
    row.locator("button.toggle").click()  # disable it from the page
    page.wait_for_selector("#accounts-rows .status-disabled", timeout=10_000)
    row.locator("button.toggle", has_text="Enable").click()
    page.wait_for_function("() => !document.querySelector('#accounts-rows .status-disabled')", timeout=10_000)


def test_a_device_login_completes_when_the_code_is_approved(page: Any, device_identity: FakeIdentity) -> None:
    open_tab(page, "logins")
    page.wait_for_selector("#login-name option[value=xai]", state="attached")
    assert "device" in page.inner_text("#login-name option[value=xai]")
    page.select_option("#login-name", "xai")
    page.click("#login-start")
    page.wait_for_selector("#login-code:not([hidden])")
    assert page.locator("#login-paste").is_hidden()  # nothing to paste in a device flow
    code = page.inner_text("#login-code")
    assert (page.get_attribute("#login-link", "href") or "").startswith(device_identity.base_url)
    device_identity.approve(code)  # the user enters the code elsewhere
    page.wait_for_selector("#login-result.success", timeout=15_000)
    assert "xai-grok@example.com" in page.inner_text("#login-result")


def test_an_auth_file_upload_is_stored(page: Any, router: RouterProcess, tmp_path: Path) -> None:
    auth = tmp_path / "uploaded-claude.json"
    auth.write_text(json.dumps({"type": "claude", "email": "upload@example.com", "access_token": "at-upload-0000000",
                                "refresh_token": "rt-upload-0000000", "expired": "2099-01-01T00:00:00Z"}))
    open_tab(page, "logins")
    page.set_input_files("#upload-file", str(auth))
    page.click("#upload-send")
    page.wait_for_selector("#upload-result.success")
    assert "uploaded-claude.json" in page.inner_text("#upload-result")
    files = HTTP.request("GET", f"{router.base_url}/v0/management/auth-files",
                         headers={"x-management-key": MANAGEMENT}).json()["files"]
    assert "upload@example.com" in [f["email"] for f in files]


def test_a_config_edit_applies_and_a_bad_one_says_why(page: Any, router: RouterProcess) -> None:
    open_tab(page, "config")
    page.wait_for_function("() => document.querySelector('#config-text').value.includes('openai-compatibility')")
    text = page.input_value("#config-text")
    assert UPSTREAM_KEYS[0] not in text and MANAGEMENT not in text  # shown masked

    page.fill("#config-text", text.replace("fill-first", "sideways"))
    page.click("#config-save")
    page.wait_for_selector("#config-result.error")
    assert "routing.strategy" in page.inner_text("#config-result")
    assert ask(router) == 200  # the running config stays

    edited = yaml.safe_load(text)
    edited["openai-compatibility"][0]["models"].append({"name": "gpt-4o-mini", "alias": "m2"})
    page.fill("#config-text", yaml.safe_dump(edited, sort_keys=False, allow_unicode=True))
    page.click("#config-save")
    page.wait_for_selector("#config-result.success", timeout=15_000)
    assert ask(router, "m2") == 200
    on_disk = router.config_path.read_text()
    assert all(key in on_disk for key in UPSTREAM_KEYS)  # the masks stood for the real keys
    for _ in range(len(UPSTREAM_KEYS)):  # and every account still authenticates upstream
        assert ask(router) == 200


def test_client_keys_are_added_and_removed(page: Any, router: RouterProcess) -> None:
    open_tab(page, "keys")
    page.wait_for_selector("#keys-list li code")
    before = page.locator("#keys-list li").count()
    page.click("#key-add")
    page.wait_for_selector("#keys-result.success")
    new_key = page.inner_text("#keys-result").rsplit(" ", 1)[1]
    assert new_key.startswith("sk-") and len(new_key) > 20
    deadline = time.monotonic() + 5
    while HTTP.request("GET", f"{router.base_url}/v1/models",
                       headers={"authorization": f"Bearer {new_key}"}).status != 200:
        assert time.monotonic() < deadline, "the new key was not accepted"
        time.sleep(0.1)
    assert page.locator("#keys-list li").count() == before + 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#keys-list li").nth(before).locator("button").click()
    page.wait_for_function(f"() => document.querySelectorAll('#keys-list li').length === {before}")
    assert HTTP.request("GET", f"{router.base_url}/v1/models",
                        headers={"authorization": f"Bearer {new_key}"}).status == 401
