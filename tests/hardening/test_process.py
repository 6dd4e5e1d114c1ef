"""The server process: a port already in use is refused, and SIGTERM or
SIGINT — to the process or to its whole group — stops it cleanly, letting a
stream in flight finish; a second signal stops it at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest
import urllib3

from tests.fakes.common import Scenario
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.hardening.conftest import FAKE_KEY
from tests.harness import CLIENT_KEY, RouterProcess


def _config(chat: FakeOpenAIChat, grace: float = 20) -> dict[str, object]:
    return {"api-keys": [CLIENT_KEY], "shutdown-grace-seconds": grace,
            "openai-compatibility": [{"name": "chat", "base-url": f"{chat.base_url}/v1",
                                      "api-key-entries": [{"api-key": FAKE_KEY}],
                                      "models": [{"name": "gpt-4o-mini", "alias": "mini"}]}]}


def test_a_port_in_use_is_refused(chat: FakeOpenAIChat) -> None:
    with RouterProcess(_config(chat)) as first:
        second = subprocess.run([sys.executable, "-m", "crossroads", "serve", "--config", str(first.config_path)],
                                capture_output=True, timeout=30, text=True)
        assert second.returncode != 0
        assert "already in use" in second.stderr and "Traceback" not in second.stderr
        assert urllib3.request("GET", f"{first.base_url}/healthz").status == 200


def _stream(router: RouterProcess, out: dict[str, object]) -> None:
    body = orjson.dumps({"model": "mini", "stream": True, "messages": [{"role": "user", "content": "go"}]})
    try:
        r = urllib3.request("POST", f"{router.base_url}/v1/chat/completions", body=body, preload_content=False,
                            headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
        chunks = []
        for chunk in r.stream(64):
            chunks.append(chunk)
            out["started"] = True
        out["body"] = b"".join(chunks)
    except Exception as exc:  # the test reads what happened
        out["error"] = exc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_group_signal_drains_the_stream_in_flight_and_exits_zero(chat: FakeOpenAIChat, sig: int) -> None:
    router = RouterProcess(_config(chat), new_session=True).start()
    try:
        chat.push(Scenario(text=" ".join(f"w{n}" for n in range(60)), chunk_delay=0.05))
        out: dict[str, object] = {}
        reader = threading.Thread(target=_stream, args=(router, out))
        reader.start()
        deadline = time.monotonic() + 10
        while "started" not in out and time.monotonic() < deadline:
            time.sleep(0.02)
        assert out.get("started"), out
        os.killpg(router.process.pid, sig)  # Ctrl-C / systemd / timeout: the whole group
        status = router.process.wait(timeout=30)
        reader.join(timeout=10)
        assert status == 0, router.log()[-2000:]
        body = out.get("body")
        assert isinstance(body, bytes) and b"data: [DONE]" in body, (out, router.log()[-2000:])
        assert b"w59" in body
    finally:
        router.stop()


def test_idle_servers_stop_on_every_group_signal(chat: FakeOpenAIChat) -> None:
    for trial in range(4):
        router = RouterProcess(_config(chat), new_session=True).start()
        try:
            started = time.monotonic()
            os.killpg(router.process.pid, signal.SIGINT if trial % 2 else signal.SIGTERM)
            assert router.process.wait(timeout=15) == 0
            assert time.monotonic() - started < 10
        finally:
            router.stop()


def test_a_second_signal_stops_at_once(chat: FakeOpenAIChat) -> None:
    router = RouterProcess(_config(chat, grace=60), new_session=True).start()
    try:
        chat.push(Scenario(text=" ".join(f"w{n}" for n in range(100)), chunk_delay=0.5))
        out: dict[str, object] = {}
        reader = threading.Thread(target=_stream, args=(router, out), daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while "started" not in out and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(router.process.pid, signal.SIGTERM)
        time.sleep(1.0)
        assert router.process.poll() is None  # still draining the long stream
        started = time.monotonic()
        os.killpg(router.process.pid, signal.SIGTERM)
        router.process.wait(timeout=10)
        assert time.monotonic() - started < 3
    finally:
        router.stop()
