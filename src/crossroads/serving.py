"""Running the server process: refuse a port already in use, and stop
cleanly on SIGTERM or SIGINT, however they are sent.

After checking the config and the port, ``crossroads serve`` replaces itself
(same process id, so the same process group) with a process that imports
only what serving needs.

One granian worker is served in that process itself (``embedded``): a signal
sent to the process group — Ctrl-C in a terminal, ``timeout``, systemd's
control-group kill, ``kill -- -PGID`` — reaches only it.

Servers of several processes (``--workers N``, uvicorn) run under a small
supervisor instead, which holds only this module. It starts the server as a
child in a session of its own, so a group signal reaches only the
supervisor, which hands one SIGTERM to the server's main process. (The
server hung in some trials when its main process and its workers received
the same signal at once.) The child is also told to stop if the supervisor
dies.

Either way the server stops accepting, lets in-flight requests and streams
finish for up to the grace period, flushes its state and exits 0; a second
signal ends it at once, and one that has not finished five seconds after its
grace period is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

WANTED_OPEN_FILES = 65_536  # two sockets a stream: room for about 30,000 open streams
FILES_BESIDES_STREAMS = 200  # listeners, logs, the store, the runtime's own

_PR_SET_PDEATHSIG = 1


class PortInUse(Exception):
    pass


class StartupFailed(Exception):
    """The application could not start; nothing was served."""


def check_port_free(host: str, port: int) -> None:
    """Raise PortInUse when something already listens on (host, port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"address {host}:{port} is already in use (another crossroads?); stop it, "
                                "choose another --port, or pass --reuse-port to share the port on purpose") from None
            raise


def raise_open_file_limit(wanted: int = WANTED_OPEN_FILES) -> int:
    """Raise this process's limit on open files (each open stream holds two
    sockets): to ``wanted`` where the process may raise its hard limit (as
    root), else its soft limit to the hard one. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def supervise(command: Sequence[str], grace: float, env: dict[str, str] | None = None) -> int:
    """Run ``command`` as the server; returns its exit status."""
    child = subprocess.Popen(list(command), env=env, start_new_session=True, preexec_fn=_die_with_parent)
    stopping: list[float] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(time.monotonic())
            _send(child, signal.SIGTERM)
        else:  # a second signal: no more waiting
            _kill_group(child)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        while True:
            try:
                status = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping and time.monotonic() - stopping[0] > grace + 5:
                    _kill_group(child)  # the server did not finish within its grace period
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # the supervisor is leaving by an error: the server goes with it
            _kill_group(child)
            child.wait()
    if stopping and status in (-signal.SIGTERM, 128 + signal.SIGTERM):
        return 0  # stopped as asked
    return status if status >= 0 else 128 - status


def _send(child: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(sig)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _send(child, signal.SIGKILL)


def become_server(command: Sequence[str]) -> NoReturn:
    """Replace this process with ``command``, a server that takes the
    group's signals itself (one process: no worker shares the group)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], list(command))


def become_supervisor(command: Sequence[str], grace: float) -> NoReturn:
    """Replace this process with a supervisor of ``command`` that imports
    nothing but this module: the command line's modules (config, providers,
    the console) would otherwise stay resident for the server's whole life.
    The process id, and so the process group signals reach, stays the same."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "crossroads.serving", str(grace), *command])


def main(argv: Sequence[str]) -> int:
    grace, *command = argv
    return supervise(command, float(grace))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
