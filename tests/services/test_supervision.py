"""A side service run by Crossroads (``command:``): started with it, its
output logged under its name, restarted when it dies, stopped with it."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import openai
import orjson
import pytest

from tests.harness import free_port
from tests.providers.side_harness import (
    CLIENT_KEY,
    listed,
    served,
    service_entry,
    services,
    settings_of,
    wait_for,
)

SCRIPT = Path(__file__).with_name("tiny_service.py")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_supervised_service_is_started_restarted_and_stopped(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crossroads.services")
    port = free_port()
    entry = service_entry(f"http://127.0.0.1:{port}", name="tiny", command=[sys.executable, str(SCRIPT), str(port)],
                          cwd=str(tmp_path), env={"TINY_MARK": "1"})
    with served(tmp_path, **{"side-services": [entry]}) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0)
        wait_for(lambda: "tiny-tiny-model" in listed(url), timeout=15, what="the child to serve")
        first = services(url)[0]["process"]
        assert first["starts"] == 1
        reply = client.chat.completions.create(model="tiny-tiny-model", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == f"tiny {first['pid']} heard: hi"
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: services(url)[0]["process"]["starts"] == 2 and services(url)[0]["state"] == "up"
                 and "tiny-tiny-model" in listed(url), timeout=15, what="the restart")
        second = services(url)[0]["process"]
        assert second["pid"] != first["pid"] and second["last_exit"] == -signal.SIGKILL
        stream = client.chat.completions.create(model="tiny-tiny-model", stream=True,
                                                messages=[{"role": "user", "content": "again"}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
            f"tiny {second['pid']} heard: again"
    assert not alive(second["pid"])
    logged = [r.getMessage() for r in caplog.records if r.name == "crossroads.services"]
    assert f"[side-services[tiny]] tiny service listening on port {port}" in logged
    assert any(m.startswith("[side-services[tiny]] exited with status -9; restarting") for m in logged)
    assert "[side-services[tiny]] stopped" in logged


def test_a_reload_keeps_the_process_unless_its_command_changes_or_the_entry_goes(tmp_path: Path) -> None:
    port = free_port()
    config_file = tmp_path / "config.yaml"
    entry = service_entry(f"http://127.0.0.1:{port}", name="tiny", command=[sys.executable, str(SCRIPT), str(port)])
    with served(tmp_path, config_file, **{"side-services": [entry]}) as url:
        wait_for(lambda: "tiny-tiny-model" in listed(url), timeout=15, what="the child to serve")
        first = services(url)[0]["process"]["pid"]
        edited = {**entry, "health-interval": 0.3, "prefix": "t-"}
        config_file.write_text(orjson.dumps(settings_of(tmp_path, **{"side-services": [edited]})).decode())
        wait_for(lambda: "t-tiny-model" in listed(url), what="the reload")
        assert services(url)[0]["process"]["pid"] == first and alive(first)
        config_file.write_text(orjson.dumps(settings_of(tmp_path)).decode())
        wait_for(lambda: not services(url), what="the entry to go")
        wait_for(lambda: not alive(first), what="the process to stop")
        assert "t-tiny-model" not in listed(url)
