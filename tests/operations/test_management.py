"""CLIProxyAPI's management routes against the real router: config, single
settings, client keys, logs, auth files, and the audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from tests.fakes.openai_chat import FakeOpenAIChat
from tests.harness import RouterProcess

KEY = "sk-upstream-management-01234"
CLIENT = "mgmt-test-client-key-000"
MANAGEMENT = "mgmt-test-secret-abcdef"
ACCESS_TOKEN = "sk-ant-oat01-uploaded-access-token-xyz"
HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    server = FakeOpenAIChat(api_keys=[KEY]).start()
    yield server
    server.stop()


@pytest.fixture
def router(fake: FakeOpenAIChat, tmp_path: Path) -> Iterator[RouterProcess]:
    config = {"api-keys": [CLIENT], "remote-management": {"secret-key": MANAGEMENT},
              "logging-to-file": True, "logs-dir": str(tmp_path / "logs"),
              "openai-compatibility": [{"name": "up", "base-url": f"{fake.base_url}/v1",
                                        "api-key-entries": [{"api-key": KEY}],
                                        "models": [{"name": "gpt-4o-mini", "alias": "m1"}]}]}
    with RouterProcess(config) as process:
        yield process


def call(router: RouterProcess, method: str, path: str, body: Any = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    return HTTP.request(method, f"{router.base_url}/v0/management/{path}",
                        body=raw if raw is not None else (json.dumps(body) if body is not None else None),
                        headers={"authorization": f"Bearer {MANAGEMENT}", **(headers or {})})


def ask(router: RouterProcess, key: str = CLIENT, model: str = "m1") -> int:
    return HTTP.request("POST", f"{router.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                        json={"model": model, "messages": [{"role": "user", "content": "hi"}]}).status


def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_config_yaml_is_validated_then_applied(router: RouterProcess) -> None:
    shown = call(router, "GET", "config").json()
    assert shown["remote-management"]["secret-key"] != MANAGEMENT and KEY not in json.dumps(shown)
    text = call(router, "GET", "config.yaml").data.decode()
    assert yaml.safe_load(text)["port"] == router.port

    bad = call(router, "PUT", "config.yaml", raw=b"routing: {strategy: sideways}\n")
    assert bad.status == 422 and "routing.strategy" in bad.json()["error"]["message"]
    assert call(router, "PUT", "config.yaml", raw=b"port: [unclosed\n").status == 400
    assert ask(router) == 200  # the running config stays

    config = yaml.safe_load(router.config_path.read_text())
    config["openai-compatibility"][0]["models"].append({"name": "gpt-4o-mini", "alias": "m2"})
    applied = call(router, "PUT", "config.yaml", raw=yaml.safe_dump(config).encode())
    assert applied.status == 200 and applied.json() == {"ok": True, "changed": ["config"]}
    assert ask(router, model="m2") == 200  # applied before the answer


def test_single_settings_and_client_keys(router: RouterProcess, tmp_path: Path) -> None:
    assert call(router, "GET", "request-retry").json() == {"request-retry": 3}
    assert call(router, "PUT", "request-retry", {"value": 1}).status == 200
    assert call(router, "GET", "request-retry").json() == {"request-retry": 1}
    assert call(router, "PUT", "request-retry", {"value": "lots"}).status == 400
    assert call(router, "PATCH", "routing/strategy", {"value": "fill-first"}).status == 200
    assert call(router, "GET", "routing/strategy").json() == {"strategy": "fill-first"}
    assert call(router, "PUT", "proxy-url", {"value": "http://127.0.0.1:1"}).status == 200
    assert call(router, "DELETE", "proxy-url").status == 200
    assert call(router, "GET", "proxy-url").json() == {"proxy-url": ""}

    assert call(router, "PUT", "request-log", {"value": True}).status == 200
    response = HTTP.request("POST", f"{router.base_url}/v1/chat/completions",
                            headers={"authorization": f"Bearer {CLIENT}", "x-request-id": "logged-1"},
                            json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status == 200
    eventually(lambda: call(router, "GET", "request-log-by-id/logged-1").status == 200, "a request-log file")
    assert b"=== REQUEST BODY ===" in call(router, "GET", "request-log-by-id/logged-1").data

    keys = call(router, "GET", "api-keys").json()["api-keys"]
    assert len(keys) == 1 and keys[0] != CLIENT  # masked
    new_key = "mgmt-added-client-key-777"
    assert call(router, "PATCH", "api-keys", {"old": "absent", "new": new_key}).status == 200
    assert ask(router, new_key) == 200
    assert call(router, "DELETE", "api-keys?value=" + new_key).status == 200
    assert ask(router, new_key) == 401
    assert call(router, "DELETE", "api-keys?value=nobody").status == 404
    assert call(router, "PUT", "api-keys", {"items": [CLIENT, new_key]}).status == 200
    assert ask(router, new_key) == 200 and ask(router, CLIENT) == 200

    audit = (tmp_path / "logs" / "audit.log").read_text().splitlines()
    actions = [json.loads(line)["action"] for line in audit]
    assert "set request-retry" in actions and "removed a client key" in actions
    assert all(json.loads(line)["actor"] == "127.0.0.1" for line in audit)
    assert new_key not in "".join(audit) and CLIENT not in "".join(audit)


def test_logs_and_error_logs(router: RouterProcess) -> None:
    assert ask(router, model="missing") == 404
    eventually(lambda: bool(call(router, "GET", "request-error-logs").json()["files"]), "an error log file")
    (entry,) = call(router, "GET", "request-error-logs").json()["files"]
    text = call(router, "GET", f"request-error-logs/{entry['name']}").data.decode()
    assert "Status: 404" in text and CLIENT not in text
    assert call(router, "GET", "request-error-logs/error-x%2F..%2F..%2Fconfig.yaml").status == 404
    logs = call(router, "GET", "logs").json()
    assert logs["line-count"] == len(logs["lines"]) > 0 and any("status=404" in line for line in logs["lines"])
    later = call(router, "GET", f"logs?after={logs['latest-timestamp'] + 60}").json()
    assert later["lines"] == []
    assert call(router, "GET", "logs?limit=many").status == 400
    assert call(router, "DELETE", "logs").json()["success"] is True


def test_auth_files(router: RouterProcess) -> None:
    record = {"type": "claude", "email": "ada@example.com", "access_token": ACCESS_TOKEN,
              "refresh_token": "refresh-token-for-upload-0001", "expired": "2099-01-01T00:00:00Z"}
    boundary = "xYzBoundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"claude-ada.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps(record)}\r\n--{boundary}--\r\n").encode()
    uploaded = call(router, "POST", "auth-files", raw=form,
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert uploaded.status == 200 and uploaded.json()["name"] == "claude-ada.json"
    raw = call(router, "POST", "auth-files?name=claude-bob.json", raw=json.dumps({**record, "email": "b@x"}).encode())
    assert raw.status == 200
    assert call(router, "POST", "auth-files?name=broken.json", raw=b"{not json").status == 400
    assert call(router, "POST", "auth-files?name=../escape.json", raw=json.dumps(record).encode()).status == 400

    def entry(name: str) -> dict[str, Any]:
        files = {f["name"]: f for f in call(router, "GET", "auth-files").json()["files"]}
        return files[name]

    assert entry("claude-ada.json")["status"] == "active" and entry("claude-ada.json")["email"] == "ada@example.com"
    assert entry("claude-ada.json")["expired"].startswith("2099")
    eventually(lambda: bool(call(router, "GET", "auth-files/models?name=claude-ada.json").json()["models"]),
               "the uploaded account serves models once the store change is applied")
    served = call(router, "GET", "auth-files/models?name=claude-ada.json").json()["models"]
    assert all(m["id"] and m["upstream_model"] for m in served)
    assert entry("claude-ada.json")["label"]  # an account now, with its label
    assert call(router, "PATCH", "auth-files/status", {"name": "claude-ada.json", "disabled": True}).status == 200
    assert entry("claude-ada.json")["status"] == "disabled"
    assert call(router, "PATCH", "auth-files/fields", {"name": "claude-ada.json", "priority": 5,
                                                       "excluded-models": ["claude-3*"]}).status == 200
    edited = entry("claude-ada.json")
    assert edited["priority"] == 5 and edited["excluded_models"] == ["claude-3*"]
    assert call(router, "PATCH", "auth-files/fields", {"name": "claude-ada.json", "colour": "red"}).status == 400
    download = call(router, "GET", "auth-files/download?name=claude-ada.json")
    assert download.status == 200 and ACCESS_TOKEN not in download.data.decode()
    assert json.loads(download.data)["email"] == "ada@example.com"
    assert ACCESS_TOKEN not in call(router, "GET", "auth-files").data.decode()
    assert call(router, "DELETE", "auth-files?name=claude-ada.json").status == 200
    assert call(router, "GET", "auth-files/download?name=claude-ada.json").status == 404
    assert call(router, "DELETE", "auth-files?all=true").json()["deleted"] == 1
    assert call(router, "GET", "auth-files").json()["files"] == []


def test_upstream_lists(router: RouterProcess, fake: FakeOpenAIChat) -> None:
    (entry,) = call(router, "GET", "openai-compatibility").json()["openai-compatibility"]
    assert entry["name"] == "up" and KEY not in json.dumps(entry)  # masked
    assert call(router, "GET", "claude-api-key").json() == {"claude-api-key": []}
    assert call(router, "PUT", "claude-api-key", {"items": "nope"}).status == 400
    value = {"name": "up", "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": KEY}],
             "models": [{"name": "gpt-4o-mini", "alias": "m3"}]}
    assert call(router, "PATCH", "openai-compatibility", {"match": "up", "value": value}).status == 200
    assert ask(router, model="m3") == 200 and ask(router, model="m1") == 404
    assert call(router, "PATCH", "openai-compatibility", {"match": "nobody", "value": value}).status == 404
    invalid = call(router, "PUT", "gemini-api-key", [{"api-key": 12}])
    assert invalid.status == 422 and ask(router, model="m3") == 200  # refused, nothing changed
    assert call(router, "DELETE", "openai-compatibility?name=up").status == 200
    assert ask(router, model="m3") == 404


def test_a_plain_secret_is_stored_hashed_and_still_accepted(router: RouterProcess) -> None:
    text = router.config_path.read_text()
    stored = yaml.safe_load(text)["remote-management"]["secret-key"]
    assert stored.startswith("$2") and MANAGEMENT not in text
    assert call(router, "GET", "request-retry").status == 200
    wrong = HTTP.request("GET", f"{router.base_url}/v0/management/request-retry",
                         headers={"authorization": "Bearer not-the-secret"})
    assert wrong.status == 401
    assert "management secret" in router.log() and "bcrypt hash" in router.log()
    token_file = Path(yaml.safe_load(text)["auth-dir"]) / ".management-token"
    assert token_file.stat().st_mode & 0o777 == 0o600  # local tools, which cannot send a hash, use this
    local = HTTP.request("GET", f"{router.base_url}/v0/management/request-retry",
                         headers={"x-management-key": token_file.read_text()})
    assert local.status == 200
    router.stop()  # a restart reads the hash itself
    router.start()
    assert call(router, "GET", "request-retry").status == 200


def test_v8_cooldown_reset_twin(router: RouterProcess) -> None:
    reply = HTTP.request("POST", f"{router.base_url}/v8/management/routing/cooldown/reset",
                         headers={"authorization": f"Bearer {MANAGEMENT}"})
    assert reply.status == 200 and reply.json() == {"status": "ok"}
    assert HTTP.request("POST", f"{router.base_url}/v8/management/routing/cooldown/reset").status == 401


def test_oauth_channel_maps(router: RouterProcess) -> None:
    assert call(router, "GET", "oauth-excluded-models").json() == {"oauth-excluded-models": {}}
    assert call(router, "PATCH", "oauth-excluded-models", {"provider": "Claude", "models": ["claude-3*"]}).status == 200
    assert call(router, "GET", "oauth-excluded-models").json() == {"oauth-excluded-models": {"claude": ["claude-3*"]}}
    assert yaml.safe_load(router.config_path.read_text())["oauth-excluded-models"] == {"claude": ["claude-3*"]}
    assert call(router, "PATCH", "oauth-excluded-models", {"provider": "claude", "models": []}).status == 200
    assert call(router, "DELETE", "oauth-excluded-models?provider=claude").status == 404
    alias = {"codex": [{"name": "gpt-5", "alias": "five"}]}
    assert call(router, "PUT", "oauth-model-alias", alias).status == 200
    assert call(router, "GET", "oauth-model-alias").json() == {"oauth-model-alias": alias}
    assert call(router, "PUT", "oauth-model-alias", {"codex": "nope"}).status == 400


def test_no_two_routes_claim_the_same_method_and_path() -> None:
    from importlib import import_module

    from crossroads.frontdoors import FRONTDOOR_MODULES

    seen = [(r.method, r.path, r.prefix) for name in FRONTDOOR_MODULES for r in import_module(name).ROUTES]
    assert len(seen) == len(set(seen)), sorted(x for x in seen if seen.count(x) > 1)
