"""The dashboard's files and its management routes, over HTTP (the browser
tests are in tests/dashboard)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "sk-upstream-dash-routes-0123"
CLIENT = "dash-routes-client-key-01"
MANAGEMENT = "dash-routes-management-01"
HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    server = FakeOpenAIChat(api_keys=[KEY]).start()
    yield server
    server.stop()


def config(fake: FakeOpenAIChat, **extra: object) -> dict[str, object]:
    return {"api-keys": [CLIENT], "remote-management": {"secret-key": MANAGEMENT, **extra},
            "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                      "api-key-entries": [{"api-key": KEY}],
                                      "models": [{"name": "gpt-4o-mini", "alias": "m1"}]}]}


def management(router: RouterProcess, path: str) -> urllib3.BaseHTTPResponse:
    return HTTP.request("GET", f"{router.base_url}/v0/management/{path}", headers={"x-management-key": MANAGEMENT})


def test_page_assets_and_data_routes(fake: FakeOpenAIChat) -> None:
    with RouterProcess(config(fake)) as router:
        page = HTTP.request("GET", f"{router.base_url}/management.html")
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        again = HTTP.request("GET", f"{router.base_url}/management.html",
                             headers={"if-none-match": page.headers["etag"]})
        assert again.status == 304
        script = HTTP.request("GET", f"{router.base_url}/management/dashboard.js")
        assert script.status == 200 and b"X-Management-Key" in script.data
        for wrong in ("/management/../server.py", "/management/__init__.py", "/management/static"):
            assert HTTP.request("GET", f"{router.base_url}{wrong}").status == 404
        assert HTTP.request("GET", f"{router.base_url}/", headers={"accept": "application/json"}).json()[
            "dashboard"] == "/management.html"

        fake.push(Scenario.fail(429, "slow down", retry_after=300))
        status = HTTP.request("POST", f"{router.base_url}/v1/chat/completions",
                              headers={"authorization": f"Bearer {CLIENT}"},
                              json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]}).status
        assert status == 429
        [account] = management(router, "accounts").json()["accounts"]
        assert account["status"] == "cooling" and account["provider"] == "openai-compatibility"
        assert 200 < account["cooldowns"][0]["seconds_left"] <= 300 and account["auth_file"] is None
        [row] = management(router, "requests?limit=5").json()["requests"]
        assert row["status"] == 429 and row["model"] == "m1" and row["failed"] is True
        assert management(router, "requests?limit=many").status == 400
        logins = management(router, "logins").json()
        flows = {login["name"]: login["flow"] for login in logins["logins"]}
        assert flows["anthropic"] == "browser" and flows["codex-device"] == "device"
        assert HTTP.request("GET", f"{router.base_url}/v0/management/logins").status == 401


def test_the_panel_can_be_turned_off(fake: FakeOpenAIChat) -> None:
    with RouterProcess(config(fake, **{"disable-control-panel": True})) as router:
        assert HTTP.request("GET", f"{router.base_url}/management.html").status == 404
        assert HTTP.request("GET", f"{router.base_url}/management/dashboard.js").status == 404
        assert management(router, "accounts").status == 200


def test_masks_sent_back_in_config_yaml_keep_their_secrets(fake: FakeOpenAIChat) -> None:
    with RouterProcess(config(fake)) as router:
        shown = management(router, "config.yaml").data.decode()
        assert KEY not in shown and "sk-u" in shown  # masked, as every answer
        edited = shown.replace("alias: m1", "alias: m3")
        applied = HTTP.request("PUT", f"{router.base_url}/v0/management/config.yaml", body=edited.encode(),
                               headers={"x-management-key": MANAGEMENT})
        assert applied.status == 200, applied.data
        assert KEY in router.config_path.read_text()
        status = HTTP.request("POST", f"{router.base_url}/v1/chat/completions",
                              headers={"authorization": f"Bearer {CLIENT}"},
                              json={"model": "m3", "messages": [{"role": "user", "content": "hi"}]}).status
        assert status == 200  # the upstream still gets the real key
        replaced = edited.replace(next(line.split(": ", 1)[1] for line in edited.splitlines()
                                       if "api-key: " in line and "sk-u" in line), "sk-typed-in-new-key-000000")
        HTTP.request("PUT", f"{router.base_url}/v0/management/config.yaml", body=replaced.encode(),
                     headers={"x-management-key": MANAGEMENT})
        assert "sk-typed-in-new-key-000000" in router.config_path.read_text()  # an edited value is taken as it is


def test_shipped_files_are_served_as_shipped_whatever_the_secrets(fake: FakeOpenAIChat) -> None:
    from crossroads import dashboard

    settings = {**config(fake), "api-keys": [CLIENT, "replaceChildren"]}  # a (poor) key that is a word of the script
    with RouterProcess(settings) as router:
        script = HTTP.request("GET", f"{router.base_url}/management/dashboard.js")
        assert script.data == dashboard.asset("dashboard.js")  # not masked: masking would break it
        answer = management(router, "api-keys").data.decode()
        assert "replaceChildren" not in answer  # management answers still are
