"""Runs the real router (``crossroads serve``) as a subprocess for tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

CLIENT_KEY = "client-key"
SECRET_NAME = re.compile(r"token|secret|key|cookie|password|psid|authorization", re.IGNORECASE)
# (router log, secret) for every secret a router run wrote to its log; tests/conftest.py fails the session on any
SECRET_LEAKS: list[tuple[str, str]] = []


def config_secrets(data: object) -> set[str]:
    """Values under secret-named keys (``api-key``, ``secret-key``, ``api-keys``...), at any depth."""
    found: set[str] = set()
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        named = isinstance(key, str) and bool(SECRET_NAME.search(key))
        if isinstance(value, str) and named:
            found.add(value)
        elif named and isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.update(value)
        elif isinstance(value, dict | list):
            found |= config_secrets(value)
    return {s for s in found if len(s) >= 8}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RouterProcess:
    def __init__(self, config: dict[str, Any], *, server: str = "granian", workers: int = 1,
                 new_session: bool = False, interface: str = "rsgi") -> None:
        self.new_session = new_session  # a process group of its own, for tests that signal the group
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="crossroads-test-")
        # the router's own files (usage database, logs) stay in the test's directory
        config = {"port": self.port, "host": "127.0.0.1", "auth-dir": self._dir.name, **config}
        self.config = config
        self.config_path = Path(self._dir.name) / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = Path(self._dir.name) / "router.log"
        self.server = server
        self.workers = workers
        self.interface = interface
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> RouterProcess:
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "serve", "--config", str(self.config_path),
             "--server", self.server, "--workers", str(self.workers), "--interface", self.interface],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=self.new_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"router exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"router did not become ready:\n{self.log()}")

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None
        return self._proc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def scan_log_for_secrets(self) -> None:
        """Every run's log is checked against the secrets its config holds (and the test's config file)."""
        secrets = config_secrets(self.config) | config_secrets(_read_yaml(self.config_path))
        log = self.log()
        for secret in secrets:
            if secret in log:
                line = next(row for row in log.splitlines() if secret in row)
                SECRET_LEAKS.append((line[:300], secret))

    def stop(self) -> None:
        if self._proc is not None:
            self.scan_log_for_secrets()
        if self._proc is not None and self._proc.poll() is None:
            # a graceful stop; then a second signal, on which serve ends its server at once (killing only
            # the supervisor would leave the server writing into a directory that is about to go)
            for signal_number, patience in ((signal.SIGINT, 15), (signal.SIGINT, 5)):
                self._proc.send_signal(signal_number)
                try:
                    self._proc.wait(timeout=patience)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> RouterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
