"""CLIProxyAPI configs that work unchanged: alias pools, the transient
cooldown's meaning, disable-cooling, per-entry request-retry, xai-api-key
entries and HTTPS on the listener (tls)."""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from crossroads import config
from crossroads.snapshot import preview
from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.openai_responses import FakeOpenAIResponses
from tests.harness import RouterProcess, free_port

KEY = "test-key"

ALIAS_POOL = """
openai-compatibility:
  - name: openrouter
    base-url: {base}
    api-key-entries: [{{api-key: test-key}}]
    models:
      - name: moonshotai/kimi-k2
        alias: kimi-k2
      - name: deepseek-v3.1
        alias: claude-opus-4.66
      - name: glm-5
        alias: claude-opus-4.66
      - name: kimi-k2.5
        alias: claude-opus-4.66
"""


def test_an_alias_repeated_over_models_is_a_pool_of_them() -> None:
    snapshot = preview(config.parse(ALIAS_POOL.format(base="https://openrouter.example/api/v1")))
    pool = snapshot.registry.pool("claude-opus-4.66")
    assert pool is not None
    assert sorted(c.route.upstream for c in pool.candidates) == ["deepseek-v3.1", "glm-5", "kimi-k2.5"]
    assert len({c.account.id for c in pool.candidates}) == 3  # each upstream model cools on its own
    assert [c.route.upstream for c in snapshot.registry.pool("kimi-k2").candidates] == ["moonshotai/kimi-k2"]
    assert [name for name, _ in snapshot.registry.models()].count("claude-opus-4.66") == 1


def test_an_alias_pool_rotates_and_fails_over_between_models() -> None:
    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        fake.push(Scenario.fail(503, "overloaded"))
        cfg = yaml.safe_load(ALIAS_POOL.format(base=f"{fake.base_url}/v1"))
        with RouterProcess(cfg) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            for i in range(4):
                reply = client.chat.completions.create(model="claude-opus-4.66",
                                                       messages=[{"role": "user", "content": f"hi {i}"}])
                assert reply.choices[0].message.content
        asked = [r.body["model"] for r in fake.requests if r.path.endswith("/chat/completions")]
    assert len(asked) == 5  # the first model failed (503) and the request went on to the next
    assert asked[0] != asked[1]
    assert set(asked) == {"deepseek-v3.1", "glm-5", "kimi-k2.5"}


@pytest.mark.parametrize(("value", "seconds"), [(0, 60.0), (-1, 0.0), (15, 15.0)])
def test_transient_cooldown_keeps_cliproxyapi_meaning(value: int, seconds: float) -> None:
    assert config.parse(f"transient-error-cooldown-seconds: {value}\n").transient_cooldown == seconds


def test_transient_cooldown_disabled_cools_nothing() -> None:
    from crossroads import ir
    from crossroads.routing.health import Health

    health = Health(config.parse("transient-error-cooldown-seconds: -1\n").transient_cooldown)
    assert health.record_failure("a", "m", ir.Error(503, "overloaded", "busy")) == 0.0
    assert health.available("a", "m")
    assert Health(60.0).record_failure("a", "m", ir.Error(503, "overloaded", "busy")) == 60.0


def test_entry_overrides_are_read() -> None:
    snapshot = preview(config.parse("""
disable-cooling: true
request-retry: 2
claude-api-key:
  - {api-key: a, disable-cooling: false, request-retry: 0}
  - {api-key: b, request-retry: -1}
"""))
    assert snapshot.config.disable_cooling is True
    first, second = snapshot.accounts
    assert (first.disable_cooling, first.request_retry) == (False, 0)
    assert (second.disable_cooling, second.request_retry) == (None, None)  # inherit the global values
    with pytest.raises(config.ConfigError, match=r"claude-api-key\[0\]: 'disable-cooling' must be true or false"):
        preview(config.parse("claude-api-key: [{api-key: a, disable-cooling: maybe}]\n"))


def _chat_entry(fake: FakeOpenAIChat, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": KEY}],
            "models": [{"name": "gpt-4o-mini", "alias": "pool"}], **extra}


def _generated(fake: FakeOpenAIChat) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


@pytest.mark.parametrize("disabled", [True, False])
def test_disable_cooling_keeps_a_failing_account_in_rotation(disabled: bool) -> None:
    with FakeOpenAIChat(api_keys=[KEY]) as flaky, FakeOpenAIChat(api_keys=[KEY]) as steady:
        flaky.push(*[Scenario.fail(503, "busy")] * 10)
        cfg = {"routing": {"strategy": "round-robin", "session-affinity": False},
               "transient-error-cooldown-seconds": 300,
               "openai-compatibility": [_chat_entry(flaky, "flaky", **{"disable-cooling": disabled}),
                                        _chat_entry(steady, "steady")]}
        with RouterProcess(cfg) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            for i in range(6):
                client.chat.completions.create(model="pool", messages=[{"role": "user", "content": f"q{i}"}])
        tried = _generated(flaky)
    assert tried >= 3 if disabled else tried == 1


def test_per_entry_request_retry_zero_keeps_it_out_of_later_rounds() -> None:
    with FakeOpenAIChat(api_keys=[KEY]) as no_retry, FakeOpenAIChat(api_keys=[KEY]) as retries:
        for fake in (no_retry, retries):
            fake.push(*[Scenario.fail(429, "slow down", retry_after=1)] * 10)
        cfg = {"request-retry": 2, "max-retry-interval": 5, "routing": {"session-affinity": False},
               "openai-compatibility": [_chat_entry(no_retry, "a", **{"request-retry": 0}),
                                        _chat_entry(retries, "b")]}
        with RouterProcess(cfg) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "q"}])
        assert _generated(no_retry) == 1  # round 0 only
        assert _generated(retries) >= 2  # later rounds too


def test_xai_api_key_entries_serve_through_the_responses_api() -> None:
    with FakeOpenAIResponses(api_keys=["xai-key"]) as fake:
        cfg = {"xai-api-key": [{"api-key": "xai-key", "base-url": f"{fake.base_url}/v1",
                                "models": [{"name": "grok-4", "alias": "grok"}]}]}
        with RouterProcess(cfg) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            reply = client.chat.completions.create(model="grok", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
        sent = [r for r in fake.requests if r.path == "/v1/responses"]
    assert len(sent) == 1 and sent[0].body["model"] == "grok-4"
    assert sent[0].headers["authorization"] == "Bearer xai-key"
    default = preview(config.parse("xai-api-key: [{api-key: k}]\n")).accounts[0]
    assert default.base_url == "https://api.x.ai/v1" and "grok-4" in default.routes


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"host": "127.0.0.1", "port": port, "auth-dir": str(tmp_path),
                                    "tls": {"enable": True, "cert": str(cert), "key": str(key)}}))
    proc = subprocess.Popen([sys.executable, "-m", "crossroads", "serve", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        body = b""
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=1) as r:
                    body = r.read()
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.05)
        assert b'"ok"' in body
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):  # plain HTTP is not served on that port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert f"https://127.0.0.1:{port}" in out.decode()


def test_tls_enabled_without_files_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"'tls.enable' is true but 'tls.cert' names no file"):
        config.parse("tls: {enable: true}\n")
    with pytest.raises(config.ConfigError, match=r"'tls.key': .*missing.pem is not a readable file"):
        config.parse(f"tls: {{enable: true, cert: {__file__}, key: {tmp_path}/missing.pem}}\n")
    assert config.parse("tls: {enable: false, cert: '', key: ''}\n").tls is None


def test_a_dollar_header_copies_the_clients_header() -> None:
    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        entry = _chat_entry(fake, "copying", headers={"X-Session": "$X-Client-Session", "X-Static": "fixed"})
        with RouterProcess({"openai-compatibility": [entry]}) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "a"}],
                                           extra_headers={"X-Client-Session": "abc"})
            client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "b"}])
        first, second = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert first.headers["x-session"] == "abc" and first.headers["x-static"] == "fixed"
    assert "x-session" not in second.headers and second.headers["x-static"] == "fixed"  # not sent: omitted
    assert all("$X-Client-Session" not in v for r in (first, second) for v in r.headers.values())


def _rules(action: str, status: int = 400) -> list[dict[str, Any]]:
    return [{"status": status, "match": ["context window exceeded"], "action": action},
            {"status": status, "match-regexr": ["^never"], "action": "stop"}]


@pytest.mark.parametrize(("action", "served", "first_cooled"), [
    ("continue", True, False), ("continue-and-cooldown", True, True),
    ("stop", False, False), ("stop-and-cooldown", False, True)])
def test_request_scoped_errors_decide_what_an_error_means(action: str, served: bool, first_cooled: bool) -> None:
    with FakeOpenAIChat(api_keys=[KEY]) as first, FakeOpenAIChat(api_keys=[KEY]) as second:
        first.push(Scenario.fail(400, "the context window exceeded its limit"))
        cfg = {"routing": {"strategy": "fill-first", "session-affinity": False},
               "openai-compatibility": [_chat_entry(first, "first", **{"request-scoped-errors": _rules(action)}),
                                        _chat_entry(second, "second")]}
        with RouterProcess(cfg) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            if served:
                client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "a"}])
            else:
                with pytest.raises(openai.BadRequestError, match="context window exceeded"):
                    client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "a"}])
            client.chat.completions.create(model="pool", messages=[{"role": "user", "content": "b"}])
        assert _generated(second) == (1 if served else 0) + (1 if first_cooled else 0)
        assert _generated(first) == 1 + (0 if first_cooled else 1)


def test_request_scoped_error_rules_are_checked() -> None:
    with pytest.raises(config.ConfigError, match=r"request-scoped-errors\[0\]: 'action' must be one of"):
        preview(config.parse("claude-api-key: [{api-key: a, request-scoped-errors: [{status: 400, "
                             "match: [x], action: retry}]}]\n"))
    with pytest.raises(config.ConfigError, match=r"oauth-request-scoped-errors.claude\[0\]: needs 'match'"):
        preview(config.parse("oauth-request-scoped-errors: {claude: [{status: 400, action: stop}]}\n"))


def test_streaming_keepalive_seconds_sends_comments_while_a_stream_is_quiet() -> None:
    import urllib3

    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        fake.push(Scenario(chunk_delay=0.6), Scenario(chunk_delay=0.6))
        cfg = {"streaming": {"keepalive-seconds": 0.2}, "openai-compatibility": [_chat_entry(fake, "slow")]}
        with RouterProcess(cfg) as router:
            raw = urllib3.request("POST", f"{router.base_url}/v1/chat/completions", json={
                "model": "pool", "stream": True, "messages": [{"role": "user", "content": "tell me"}]},
                preload_content=True, timeout=30).data
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
                model="pool", stream=True, messages=[{"role": "user", "content": "tell me"}]) if c.choices)
    assert raw.count(b": keep-alive\n\n") >= 2 and raw.rstrip().endswith(b"data: [DONE]")
    assert "You said: tell me" in text  # the SDK skips the comments


def test_no_keepalive_comments_unless_asked() -> None:
    assert config.parse("streaming: {keepalive-seconds: 0}\n").stream_keepalive == 0.0
    assert config.parse("{}\n").stream_keepalive == 0.0


@pytest.mark.parametrize("stream", [False, True])
def test_passthrough_headers_forwards_the_upstreams_response_headers(stream: bool) -> None:
    import urllib3

    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        body = {"model": "pool", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        answers = {}
        for enabled in (True, False):
            cfg = {"passthrough-headers": enabled, "openai-compatibility": [_chat_entry(fake, "h")]}
            with RouterProcess(cfg) as router:
                answers[enabled] = urllib3.request("POST", f"{router.base_url}/v1/chat/completions", json=body,
                                                   timeout=30)
    on, off = answers[True], answers[False]
    assert on.status == off.status == 200
    assert on.headers["x-ratelimit-remaining-requests"] == "9999" and on.headers["openai-processing-ms"] == "12"
    assert "x-ratelimit-remaining-requests" not in off.headers
    assert not on.headers["x-request-id"].startswith("req_")  # the router's own id, not the upstream's
    assert len(on.headers.getlist("content-type")) == 1


def test_per_model_thinking_levels_display_name_and_context() -> None:
    import urllib3

    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        entry = {"name": "m", "base-url": f"{fake.base_url}/v1", "api-key-entries": [{"api-key": KEY}],
                 "models": [{"name": "gpt-4o-mini", "alias": "two-levels", "display-name": "Two Levels",
                             "max-context-length": 65536, "thinking": {"levels": ["low", "high"]}},
                            {"name": "gpt-4o", "alias": "no-thinking", "thinking": {"levels": []}}]}
        with RouterProcess({"openai-compatibility": [entry]}) as router:
            client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            for model, effort in (("two-levels", "medium"), ("two-levels", "minimal"), ("no-thinking", "high")):
                client.chat.completions.create(model=model, reasoning_effort=effort,  # type: ignore[arg-type]
                                               messages=[{"role": "user", "content": "q"}])
            claude_list = urllib3.request("GET", f"{router.base_url}/v1/models",
                                          headers={"anthropic-version": "2023-06-01"}).json()
            gemini_list = urllib3.request("GET", f"{router.base_url}/v1beta/models").json()
        sent = [r.body for r in fake.requests if r.path.endswith("/chat/completions")]
    assert sent[0]["reasoning_effort"] in ("low", "high") and sent[1]["reasoning_effort"] == "low"
    assert "reasoning_effort" not in sent[2]  # no levels: the model takes no reasoning setting
    assert {m["id"]: m["display_name"] for m in claude_list["data"]}["two-levels"] == "Two Levels"
    listed = {m["name"]: m for m in gemini_list["models"]}["models/two-levels"]
    assert listed["displayName"] == "Two Levels" and listed["inputTokenLimit"] == 65536
    with pytest.raises(config.ConfigError, match=r"thinking.levels: extreme not one of"):
        preview(config.parse("claude-api-key: [{api-key: a, models: [{name: x, thinking: {levels: [extreme]}}]}]\n"))


@pytest.mark.parametrize("enabled", [False, True])
def test_usage_statistics_enabled_false_keeps_requests_out_of_the_usage_queue(enabled: bool) -> None:
    import urllib3

    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        cfg = {"usage-statistics-enabled": enabled, "remote-management": {"secret-key": "mgmt-secret-000"},
               "openai-compatibility": [_chat_entry(fake, "q")]}
        with RouterProcess(cfg) as router:
            openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0).chat.completions.create(
                model="pool", messages=[{"role": "user", "content": "hi"}])
            time.sleep(0.3)  # the request line (and its usage) is written as the request ends
            queued = urllib3.request("GET", f"{router.base_url}/v0/management/usage-queue?count=10",
                                     headers={"x-management-key": "mgmt-secret-000"}).json()
    assert len(queued) == (1 if enabled else 0)


def test_nonstream_keepalive_pads_a_slow_reply_with_blank_lines() -> None:
    import urllib3

    from tests.fakes.common import FakeError

    with FakeOpenAIChat(api_keys=[KEY]) as fake:
        fake.push(Scenario(delay=1.0), Scenario(delay=1.0),
                  Scenario(delay=1.0, error=FakeError(400, "this prompt is not allowed")))
        cfg = {"nonstream-keepalive-interval": 0.25, "openai-compatibility": [_chat_entry(fake, "slow")]}
        body = {"model": "pool", "messages": [{"role": "user", "content": "slowly"}]}
        with RouterProcess(cfg) as router:
            url = f"{router.base_url}/v1/chat/completions"
            slow = urllib3.request("POST", url, json=body, timeout=30)
            sdk = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key="x", max_retries=0)
            answer = sdk.chat.completions.create(model="pool", messages=body["messages"])
            failed = urllib3.request("POST", url, json=body, timeout=30)
            fast = urllib3.request("POST", url, json=body, timeout=30)  # no scenario left: at once
            streamed = urllib3.request("POST", url, json={**body, "stream": True}, timeout=30)
    pad = len(slow.data) - len(slow.data.lstrip(b"\n"))
    assert slow.status == 200 and pad >= 2
    assert json.loads(slow.data)["choices"][0]["message"]["content"]
    assert "You said: slowly" in (answer.choices[0].message.content or "")  # SDKs read the padded JSON
    assert failed.status == 200 and "this prompt is not allowed" in json.loads(failed.data)["error"]["message"]
    assert not fast.data.startswith(b"\n")
    assert streamed.data.startswith(b"data:")  # streams are not padded
