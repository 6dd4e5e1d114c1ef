"""The benchmark's subprocesses: starting them pinned and bounded in time,
waiting for them, stopping them as process groups; and CPU accounting from
/proc (a process tree's CPU time, and how much the rest of the machine used)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peers import PEERS
from scenarios import (
    ANTHROPIC_UPSTREAM_MODEL,
    BENCH_DIR,
    CHAT_ALIAS,
    CLAUDE_ALIAS,
    CLIENT_KEY,
    HOST,
    OPENAI_UPSTREAM_MODEL,
    ROOT,
    UPSTREAM_KEY,
    Ports,
)

SUBPROCESS_LIFETIME = 600  # seconds; the hard stop for every child, whatever happens to us
# Above this share of the machine's CPU used by processes outside the benchmark,
# a scenario's numbers are flagged as unreliable.
NOISY_SHARE = 0.05



def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:  # all held open at once, so the ports differ
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def pinning_available() -> bool:
    return shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2


class Children:
    """Subprocesses in their own sessions, under `timeout` (``lifetime`` seconds), killed as groups."""

    def __init__(self, logdir: Path, lifetime: int = SUBPROCESS_LIFETIME) -> None:
        self.logdir = logdir
        self.lifetime = lifetime
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], cpu: int | None, env: dict[str, str] | None = None) -> None:
        prefix: list[str] = []
        if shutil.which("timeout"):
            prefix += ["timeout", "-k", "5", str(self.lifetime)]
        if cpu is not None:
            prefix += ["taskset", "-c", str(cpu)]
        with open(self.logdir / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen([*prefix, *command], stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True,
                                                env={**os.environ, **(env or {})})

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def wait_ready(self, name: str, port: int, timeout: float = 30.0) -> None:
        """Ready once the port answers an HTTP request (any status)."""
        deadline = time.monotonic() + timeout
        probe = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log_tail(name)}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(probe)
                if sock.recv(16).startswith(b"HTTP/1."):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready on port {port} after {timeout:.0f}s:\n{self.log_tail(name)}")

    def python_pids(self, name: str) -> list[int]:
        """The Python processes under one child (e.g. granian's main and worker)."""
        return [pid for pid in descendants(self.procs[name].pid)
                if b"python" in _cmdline(pid).split(b"\0", 1)[0]]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """Whole-machine busy and steal time vs the time used by this benchmark's own process tree."""

    wall: float
    busy: int  # jiffies, all CPUs
    steal: int
    ours: int

    @staticmethod
    def take() -> CpuSnapshot:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return CpuSnapshot(time.monotonic(), user + nice + system + irq + softirq, steal,
                           tree_jiffies(os.getpid()))

    def since(self, earlier: CpuSnapshot) -> dict[str, float]:
        """Shares of the machine's CPU capacity (1.0 = every CPU, all the time)."""
        capacity = (self.wall - earlier.wall) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        if capacity <= 0:
            return {"foreign_cpu_share": 0.0, "steal_share": 0.0}
        foreign = (self.busy - earlier.busy) - (self.ours - earlier.ours)
        return {"foreign_cpu_share": round(max(0.0, foreign / capacity), 3),
                "steal_share": round((self.steal - earlier.steal) / capacity, 3)}


def tree_jiffies(root: int) -> int:
    """CPU time of a process tree, reaped children included (utime+stime+cutime+cstime)."""
    total = 0
    for pid in descendants(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])
    return total


def crossroads_config(ports: Ports) -> str:
    upstream = f"http://{HOST}:{ports.upstream}"
    return f"""\
host: {HOST}
port: {ports.crossroads}
api-keys: [{CLIENT_KEY}]
openai-compatibility:
  - name: benchfake
    base-url: {upstream}/v1
    api-key-entries: [{{api-key: {UPSTREAM_KEY}}}]
    models: [{{name: {OPENAI_UPSTREAM_MODEL}, alias: {CHAT_ALIAS}}}]
claude-api-key:
  - api-key: {UPSTREAM_KEY}
    base-url: {upstream}
    models: [{{name: {ANTHROPIC_UPSTREAM_MODEL}, alias: {CLAUDE_ALIAS}}}]
"""


def venv_python() -> str:
    candidate = ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def crossroads_command(config: Path, server: str, interface: str | None = None) -> list[str]:
    script = ROOT / ".venv" / "bin" / "crossroads"
    launcher = [str(script)] if script.exists() else [venv_python(), "-m", "crossroads"]
    chosen = [] if interface is None else ["--interface", interface]
    return [*launcher, "serve", "--config", str(config), "--server", server, *chosen]


def start_all(children: Children, ports: Ports, workdir: Path, pinned: bool, server: str,
              interface: str | None = None) -> None:
    python = venv_python()
    load_cpu, proxy_cpu = (0, 1) if pinned else (None, None)
    config = workdir / "crossroads.yaml"
    config.write_text(crossroads_config(ports))
    upstream = {"RAWPROXY_UPSTREAM": f"http://{HOST}:{ports.upstream}"}
    children.start("upstream", [python, str(BENCH_DIR / "upstream.py"), "--port", str(ports.upstream),
                                "--lifetime", str(children.lifetime)], load_cpu)
    for name, port, bare_interface in (("raw_proxy", ports.raw_proxy, "asgi"),
                                       ("raw_proxy_rsgi", ports.raw_proxy_rsgi, "rsgi")):
        children.start(name, [python, str(BENCH_DIR / "rawproxy.py"), "--port", str(port), "--interface",
                              bare_interface, "--lifetime", str(children.lifetime)], proxy_cpu, upstream)
    children.start("crossroads", crossroads_command(config, server, interface), proxy_cpu)
    for key, port in ports.peers.items():
        command, env = PEERS[key].command(port, f"http://{HOST}:{ports.upstream}", workdir)
        children.start(key, command, proxy_cpu, env)
    for name, port in (("upstream", ports.upstream), ("raw_proxy", ports.raw_proxy),
                       ("raw_proxy_rsgi", ports.raw_proxy_rsgi), ("crossroads", ports.crossroads)):
        children.wait_ready(name, port)
    for key, port in ports.peers.items():
        children.wait_ready(key, port, timeout=120)  # LiteLLM takes a while to import


def wait_for_quiet(limit_s: float, progress: Callable[[str], None]) -> float:
    """Wait (at most ``limit_s``) until other processes use under NOISY_SHARE of
    the machine over one second; returns the last share seen."""
    deadline = time.monotonic() + limit_s
    for attempt in range(int(limit_s) + 1):
        before = CpuSnapshot.take()
        time.sleep(1.0)
        share = CpuSnapshot.take().since(before)["foreign_cpu_share"]
        if share <= NOISY_SHARE or time.monotonic() >= deadline:
            break
        if attempt % 10 == 0:
            progress(f"machine busy (others use {share:.0%} CPU); waiting for quiet ...")
    return share


def wait_until_idle(limit_s: float = 5.0, window_s: float = 0.25, idle_share: float = 0.10) -> float:
    """Before a loaded round: wait (at most ``limit_s``) until the whole machine,
    the benchmark's own servers included, is nearly idle, so a slow peer still
    working off the requests of its round does not take the CPU from the next
    target's. Returns the busy share last seen."""
    deadline = time.monotonic() + limit_s
    while True:
        before = CpuSnapshot.take()
        time.sleep(window_s)
        after = CpuSnapshot.take()
        capacity = (after.wall - before.wall) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        busy = (after.busy - before.busy) / capacity if capacity > 0 else 0.0
        if busy <= idle_share or time.monotonic() >= deadline:
            return busy


def raise_priority() -> bool:
    """Run the benchmark's processes (inherited by every child) ahead of other
    work on a shared machine; needs root. Every target gets the same boost."""
    try:
        os.nice(-10)
    except OSError:
        return False
    return True
