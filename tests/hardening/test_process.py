"""The server process: a port already in use is refused, and SIGTERM or
SIGINT — to the process or to its whole group — stops it cleanly, letting a
stream in flight finish; a second signal stops it at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

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


def test_a_shutdown_that_hangs_is_ended_after_the_grace_period(chat: FakeOpenAIChat) -> None:
    """The backstop with no supervisor: after the first signal the kernel ends
    the process (SIGALRM) five seconds past its grace period, even when the
    final flush is stuck; here another program holds the usage database's
    write lock, on which the flush would otherwise wait ten seconds."""
    router = RouterProcess({**_config(chat, grace=1), "usage": {"flush-interval": 600}}).start()
    holder = None
    try:
        body = orjson.dumps({"model": "mini", "messages": [{"role": "user", "content": "hi"}]})
        answer = urllib3.request("POST", f"{router.base_url}/v1/chat/completions", body=body,
                                 headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
        assert answer.status == 200  # its usage row waits for the flush at shutdown
        holder = sqlite3.connect(Path(str(router.config["auth-dir"])) / "usage.sqlite3", timeout=30,
                                 isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        router.process.send_signal(signal.SIGTERM)
        status = router.process.wait(timeout=30)
        took = time.monotonic() - started
        assert status == -signal.SIGALRM, (status, router.log()[-2000:])
        assert 5 <= took < 9, took  # grace 1 s + 5 s, not the flush's 10 s wait
    finally:
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
        router.stop()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_one_worker_is_served_by_the_process_serve_becomes(chat: FakeOpenAIChat) -> None:
    """No supervisor and no worker process: ``crossroads serve`` itself
    becomes the lean server process, which takes its group's signals (the
    signal tests above run this layout)."""
    with RouterProcess(_config(chat)) as router:
        server = router.process.pid
        assert _children(server) == []
        cmdline = Path(f"/proc/{server}/cmdline").read_bytes().split(b"\0")
        assert b"crossroads.serverprocess" in cmdline, cmdline
        body = orjson.dumps({"model": "mini", "messages": [{"role": "user", "content": "hi"}]})
        answer = urllib3.request("POST", f"{router.base_url}/v1/chat/completions", body=body,
                                 headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
        assert answer.status == 200 and answer.json()["choices"][0]["message"]["content"]


def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("host: 127.0.0.1\nport: 0\nlogging-to-file: true\nlogs-dir: /proc/no-such-dir/logs\n"
                      f"auth-dir: {tmp_path}/auths\n")
    done = subprocess.run([sys.executable, "-m", "crossroads", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode != 0
    assert "error: start-up failed" in done.stderr and "/proc/no-such-dir" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout


def test_several_workers_run_under_a_supervisor_that_holds_nothing_else(chat: FakeOpenAIChat) -> None:
    """granian's main process and its workers would share a group signal:
    a supervisor in its own session hands the main one a single SIGTERM,
    and keeps none of the command line's modules resident meanwhile."""
    router = RouterProcess(_config(chat), workers=2, new_session=True).start()
    try:
        supervisor = router.process.pid
        cmdline = Path(f"/proc/{supervisor}/cmdline").read_bytes().split(b"\0")
        assert b"crossroads.serving" in cmdline, cmdline
        servers = _children(supervisor)
        assert len(servers) == 1 and len(_children(servers[0])) == 2, (servers, [_children(s) for s in servers])
        # a bare interpreter with the standard library is about 12 MB; the command line's modules add 50 more
        assert _rss_mb(supervisor) < 30, _rss_mb(supervisor)
        os.killpg(supervisor, signal.SIGTERM)
        assert router.process.wait(timeout=30) == 0
    finally:
        router.stop()


def _low_file_limit() -> None:  # runs in the child: a hard limit it may not raise
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_a_low_open_file_limit_is_said_at_start_with_what_it_allows(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"host: 127.0.0.1\nport: 0\nauth-dir: {tmp_path}/auths\n")
    server = subprocess.Popen([sys.executable, "-m", "crossroads", "serve", "--config", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, preexec_fn=_low_file_limit, start_new_session=True,
                              env={**os.environ, "HOME": str(tmp_path)})
    try:
        assert server.stdout is not None
        said = ""
        deadline = time.monotonic() + 30
        while "open-file limit" not in said and time.monotonic() < deadline and server.poll() is None:
            said += server.stdout.readline()
        # two sockets a stream, less what the server holds besides
        assert "open-file limit 1024: room for about 412 streams at once per worker" in said, said
        assert "--workers" in said
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_started_server_leaves_unused_libraries_unloaded(tmp_path: Path) -> None:
    """Memory a server that never logs anyone in does not need: aiohttp's
    server half (for the login redirect) is loaded by a login, not at start."""
    script = ("import asyncio, sys\n"
              "from crossroads import config\nfrom crossroads.server import App\n"
              f"app = App(config.parse('port: 1\\nauth-dir: {tmp_path}/auths\\n', source='t'))\n"
              "asyncio.run(app.startup())\n"
              "print(sorted(m for m in sys.modules if m.startswith(('aiohttp.web', 'crossroads.auth.callback'))))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "['crossroads.auth.callback']", done.stdout[-2000:]
