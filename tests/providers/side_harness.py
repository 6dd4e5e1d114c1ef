"""A router served in-process for the side-service tests, and small waits."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from crossroads import config
from crossroads.server import App
from tests.providers.test_exchange import ServedApp

CLIENT_KEY = "client-key"
MANAGEMENT_KEY = "mgmt"


def settings_of(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    return {"auth-dir": str(tmp_path), "api-keys": [CLIENT_KEY], "request-retry": 0,
            "remote-management": {"secret-key": MANAGEMENT_KEY}, **settings}


def app(tmp_path: Path, config_file: Path | None = None, **settings: Any) -> App:
    """A router for ``settings``; with ``config_file`` it is written there and
    watched (hot reload)."""
    text = orjson.dumps(settings_of(tmp_path, **settings)).decode()
    if config_file is not None:
        config_file.write_text(text)
    return App(config.parse(text), config_path=str(config_file) if config_file else None)


def served(tmp_path: Path, config_file: Path | None = None, **settings: Any) -> ServedApp:
    return ServedApp(app(tmp_path, config_file, **settings))


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(url: str, payload: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Answer:
    """GET (or POST ``payload`` as JSON) with the client key; the answer whatever its status."""
    data = orjson.dumps(payload) if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"authorization": f"Bearer {CLIENT_KEY}",
                                                              "content-type": "application/json",
                                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()},
                          orjson.loads(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, orjson.loads(error.read()))


def listed(url: str) -> list[str]:
    answer = call(f"{url}/v1/models")
    assert answer.status == 200
    return [row["id"] for row in answer.body["data"]]


def services(url: str) -> list[dict[str, Any]]:
    answer = call(f"{url}/v0/management/side-services", headers={"authorization": f"Bearer {MANAGEMENT_KEY}"})
    assert answer.status == 200
    return list(answer.body["services"])


def service_entry(endpoint: str, **fields: Any) -> dict[str, Any]:
    return {"enabled": True, "endpoint": endpoint, "health-interval": 0.2, **fields}
