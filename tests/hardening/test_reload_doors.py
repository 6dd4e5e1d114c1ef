"""Reloads that cannot open the door: an empty or half-written config.yaml,
a typo that loses every client key, or a config error of any kind never
reaches a router that listens beyond loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import urllib3
import yaml

from tests.fakes.openai_chat import FakeOpenAIChat
from tests.hardening.conftest import FAKE_KEY
from tests.harness import CLIENT_KEY, RouterProcess

http = urllib3.PoolManager(retries=False)



def _config(chat: FakeOpenAIChat, keys: list[str], **extra: Any) -> dict[str, Any]:
    return {"host": "0.0.0.0", "api-keys": keys, "remote-management": {"secret-key": "mgmt"},
            "openai-compatibility": [{"name": "chat", "base-url": f"{chat.base_url}/v1",
                                      "api-key-entries": [{"api-key": FAKE_KEY}],
                                      "models": [{"name": "gpt-4o-mini", "alias": "mini"}]}], **extra}


@pytest.fixture
def router(chat: FakeOpenAIChat) -> Iterator[RouterProcess]:
    with RouterProcess(_config(chat, [CLIENT_KEY])) as r:
        r.config_path.write_text(yaml.safe_dump({"port": r.port, **_config(chat, [CLIENT_KEY])}))
        yield r


def _status(router: RouterProcess, key: str | None) -> int:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = orjson.dumps({"model": "mini", "messages": [{"role": "user", "content": "hi"}]})
    return http.request("POST", f"{router.base_url}/v1/chat/completions", body=body, headers=headers).status


def _wait_for_log(router: RouterProcess, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = router.log()
        if text in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged:\n{router.log()[-3000:]}")


def _text(router: RouterProcess, cfg: dict[str, Any]) -> str:
    return yaml.safe_dump({"port": router.port, **cfg})


def test_truncate_then_write_saves_never_open_the_router(router: RouterProcess, chat: FakeOpenAIChat) -> None:
    keyless: list[int] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            keyless.append(_status(router, None))
            time.sleep(0.01)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        for gap, key in ((0.05, "second-key"), (0.35, "third-key"), (0.6, "fourth-key")):
            with router.config_path.open("w") as handle:  # the editor truncates...
                handle.flush()
                time.sleep(gap)  # ...and writes a moment later
                handle.write(_text(router, _config(chat, [CLIENT_KEY, key])))
            time.sleep(1.5)
            assert _status(router, key) == 200, router.log()[-2000:]
    finally:
        stop.set()
        thread.join()
    assert keyless and set(keyless) == {401}, sorted(set(keyless))


def test_a_config_that_loses_every_key_is_refused_beyond_loopback(router: RouterProcess,
                                                                  chat: FakeOpenAIChat) -> None:
    typo = _config(chat, [])
    del typo["api-keys"]
    typo["api_keys"] = [CLIENT_KEY]  # the typo: an underscore
    router.config_path.write_text(_text(router, typo))
    log = _wait_for_log(router, "refused: it removes every client key")
    assert "api_keys" in log  # the unknown key is named too
    assert _status(router, None) == 401 and _status(router, CLIENT_KEY) == 200
    no_secret = _config(chat, [CLIENT_KEY])
    del no_secret["remote-management"]
    router.config_path.write_text(_text(router, no_secret))
    _wait_for_log(router, "refused: it removes the management secret")
    r = http.request("GET", f"{router.base_url}/v0/management/usage", headers={"authorization": "Bearer mgmt"})
    assert r.status == 200


def test_every_kind_of_config_error_is_rejected_with_its_line(router: RouterProcess, chat: FakeOpenAIChat) -> None:
    router.config_path.write_bytes(b"port: %d\napi-keys: [%s]\n# caf\xe9\n" % (router.port, CLIENT_KEY.encode()))
    _wait_for_log(router, "line 3 is not valid UTF-8")
    bad = _config(chat, [CLIENT_KEY])
    bad["openai-compatibility"][0]["priority"] = [1]  # a list where a number belongs
    text = _text(router, bad)
    router.config_path.write_text(text)
    log = _wait_for_log(router, "openai-compatibility[0]: a value has the wrong type")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("openai-compatibility"))
    assert f"(line {line + 1})" in log or f"(line {line})" in log
    assert "store" not in log.split("openai-compatibility[0]")[0].splitlines()[-1]
    assert _status(router, CLIENT_KEY) == 200


def test_an_unknown_key_on_reload_is_reported(router: RouterProcess, chat: FakeOpenAIChat) -> None:
    router.config_path.write_text(_text(router, _config(chat, [CLIENT_KEY], **{"rqeuest-retry": 2})))
    _wait_for_log(router, "unknown keys kept but ignored: rqeuest-retry")
