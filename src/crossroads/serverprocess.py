"""The server process that ``crossroads serve`` becomes (or supervises).

    python -m crossroads.serverprocess --server granian --interface rsgi --workers 1 \\
        --host 127.0.0.1 --port 8317 [--config config.yaml]

The command line checks the config and prints the banner before it starts
this process, so this one imports only what serving needs: no console, no
command-line framework, which would otherwise stay resident for the server's
whole life. With one granian worker the router is served in this process
(``embedded``); with more, granian's own main process starts the workers;
uvicorn runs as uvicorn does.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from crossroads import config as config_module
from crossroads import serving
from crossroads.access.management_secret import hash_in_file, write_local_token
from crossroads.config import TLS
from crossroads.observe.metrics import MULTIPROC_ENV
from crossroads.server import CONFIG_ENV, LISTEN_ENV, create_app


def run(server: str, interface: str, bind: str, port: int, workers: int, config_path: Path | None) -> None:
    """Serve until stopped, with the config at ``config_path`` (the default one when None)."""
    open_files = serving.raise_open_file_limit()
    if config_path is not None:
        os.environ[CONFIG_ENV] = str(config_path.expanduser().resolve())
    else:
        os.environ.pop(CONFIG_ENV, None)
    os.environ[LISTEN_ENV] = bind
    cfg = config_module.load(config_path)
    logging.basicConfig(level=logging.DEBUG if cfg.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if open_files < serving.WANTED_OPEN_FILES:  # each stream holds two sockets, the client's and the upstream's
        logging.getLogger("crossroads").info(
            "open-file limit %d: room for about %d streams at once per worker; raise the hard limit "
            "(ulimit -Hn, systemd LimitNOFILE) or add --workers for more", open_files,
            max(0, (open_files - serving.FILES_BESIDES_STREAMS) // 2))
    if config_path is not None:
        hash_in_file(config_path.expanduser())  # as CLIProxyAPI: a plain management secret is stored hashed
    if cfg.management_secret:
        write_local_token(cfg.auth_dir)  # for local tools, which cannot send a hashed secret
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # one scrape must see every worker: each writes its samples to this server's own directory
        metrics_dir = tempfile.mkdtemp(prefix="crossroads-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
        logging.getLogger("crossroads").info("%d workers; metrics shared through %s", workers, metrics_dir)
    try:
        _serve(server, interface, bind, port, workers, max(1, int(cfg.shutdown_grace)), open_files, cfg.tls)
    finally:
        if metrics_dir is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(server: str, interface: str, bind: str, port: int, workers: int, grace: int, open_files: int,
           tls: TLS | None) -> None:
    if server == "uvicorn":
        import uvicorn

        uvicorn.run("crossroads.server:create_app", factory=True, host=bind, port=port,
                    workers=workers, access_log=False, log_level="warning", timeout_graceful_shutdown=grace,
                    ssl_certfile=tls.cert if tls else None, ssl_keyfile=tls.key if tls else None)
        return
    # granian's default admits only backlog/workers requests at once; an open stream is one
    # request for as long as it lasts, so admit what the open-file limit allows (two sockets each)
    backpressure = max(2048, open_files // 2 // workers)
    if embeds(server, workers):
        from crossroads import embedded

        embedded.serve(create_app(), interface=interface, bind=bind, port=port, grace=grace,
                       backpressure=backpressure, tls=tls)
        return
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian("crossroads.server:create_app", factory=True, address=bind, port=port,
            interface=Interfaces.RSGI if interface == "rsgi" else Interfaces.ASGI, loop=Loops.uvloop,
            workers=workers, log_access=False, websockets=True, workers_kill_timeout=grace, backlog=2048,
            backpressure=backpressure,
            ssl_cert=Path(tls.cert) if tls else None, ssl_key=Path(tls.key) if tls else None).serve()


def embeds(server: str, workers: int) -> bool:
    """Whether the router is served in this process (granian, one worker),
    which then takes its group's signals itself, with no supervisor."""
    return server == "granian" and workers == 1


def command(server: str, interface: str, bind: str, port: int, workers: int, config_path: Path | None) -> list[str]:
    """The command line that runs this process with these settings."""
    return [sys.executable, "-m", "crossroads.serverprocess", "--server", server, "--interface", interface,
            "--workers", str(workers), "--host", bind, "--port", str(port),
            *(["--config", str(config_path)] if config_path is not None else [])]


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="crossroads.serverprocess")
    parser.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    parser.add_argument("--interface", choices=("rsgi", "asgi"), default="rsgi")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    try:
        run(args.server, args.interface, args.host, args.port, max(1, args.workers), args.config)
    except (config_module.ConfigError, OSError, serving.StartupFailed) as exc:
        # e.g. a config edited, or a port taken, since the command line checked them
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
