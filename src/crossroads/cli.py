"""The ``crossroads`` command."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossroads import __version__, hints, serverprocess, serving
from crossroads import config as config_module
from crossroads.config import RESTART_ONLY
from crossroads.snapshot import Snapshot, preview

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Crossroads: one endpoint for every LLM client and every upstream account.")
console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Path to config.yaml.")]

EMPTY_POOL_HELP = """No upstream accounts yet. Log in to a subscription:

  {cmd} login claude      # also: codex, gemini, antigravity, qwen, kimi, xai, iflow, vertex

or write a config.yaml ({cmd} init asks a few questions) with API keys, e.g.:

  claude-api-key:
    - api-key: sk-ant-...
  gemini-api-key:
    - api-key: AIza...
  codex-api-key:
    - api-key: sk-...
  openai-compatibility:
    - name: openrouter
      base-url: https://openrouter.ai/api/v1
      api-key-entries: [{api-key: sk-or-...}]
      models: [{name: moonshotai/kimi-k2, alias: kimi-k2}]

then run: {cmd} serve --config config.yaml"""


def _load(path: Path | None) -> Snapshot:
    """The config at ``path`` with its accounts, or a one-line error and exit 2."""
    try:
        return preview(config_module.load(path))
    except config_module.ConfigError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default: from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: from config, else 8317).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    server: Annotated[str, typer.Option(help="granian (default) or uvicorn.")] = "granian",
    interface: Annotated[str, typer.Option(help="granian's interface to the router: rsgi (default, its "
                                                "native one) or asgi. uvicorn speaks ASGI.")] = "rsgi",
    reuse_port: Annotated[bool, typer.Option("--reuse-port", help="Share a port another server already "
                                                                  "listens on (SO_REUSEPORT).")] = False,
    foreground: Annotated[bool, typer.Option("--foreground", hidden=True,
                                             help="Run the server in this process, unsupervised.")] = False,
) -> None:
    """Run the router."""
    snapshot = _load(config)
    cfg = snapshot.config
    bind = host or cfg.bind_host
    listen_port = port or cfg.port
    if server not in ("granian", "uvicorn"):
        _fail(f"--server must be granian or uvicorn, got {server!r}")
    if interface not in ("rsgi", "asgi"):
        _fail(f"--interface must be rsgi or asgi, got {interface!r}")
    if importlib.util.find_spec(server) is None:
        _fail(f"--server {server}: {server} is not installed (pip install {server}), or use --server granian")
    if not foreground and not reuse_port:
        try:
            serving.check_port_free(bind, listen_port)
        except (serving.PortInUse, OSError) as exc:
            _fail(str(exc))
    _print_banner(snapshot, bind, listen_port, config)
    if foreground:
        try:
            serverprocess.run(server, interface, bind, listen_port, max(1, workers), config)
        except (OSError, serving.StartupFailed) as exc:
            _fail(str(exc))
        return
    os.environ[hints.COMMAND_ENV] = hints.command()  # the server process runs as python -m crossroads...
    command = serverprocess.command(server, interface, bind, listen_port, max(1, workers), config)
    if serverprocess.embeds(server, max(1, workers)):
        serving.become_server(command)
    serving.become_supervisor(command, cfg.shutdown_grace)


def _stored_logins(cfg: config_module.Config, config_path: Path | None) -> tuple[int | None, str]:
    """How many credentials the store holds (None: it could not be read), and where it is."""
    from crossroads.credentials.select import open_store, settings_of

    kind = str(settings_of(cfg).get("type") or "file")
    where = str(Path(cfg.auth_dir).expanduser()) if kind == "file" else f"the {kind} store"

    async def count() -> int:
        store = open_store(cfg, config_path)
        try:
            return len(await store.list())
        finally:
            await store.close()

    try:
        return asyncio.run(count()), where
    except Exception as exc:  # the banner never stops the server; the store reports itself once running
        logging.getLogger("crossroads").debug("stored logins not counted: %s", exc)
        return None, where


def _print_banner(snapshot: Snapshot, bind: str, listen_port: int, config_path: Path | None) -> None:
    cfg, accounts = snapshot.config, snapshot.accounts
    config_path = config_path.expanduser() if config_path is not None else None
    scheme = "https" if cfg.tls else "http"
    console.print(f"crossroads {__version__} listening on {scheme}://{bind}:{listen_port}")
    if cfg.is_open:
        note = " (loopback only; add api-keys to listen on other interfaces)" if bind == "127.0.0.1" else ""
        console.print(f"[yellow]no api-keys configured: access is open{note}[/yellow]")
    _print_findings(snapshot)
    stored, where = _stored_logins(cfg, config_path)
    configured = len(accounts)
    if stored is None:
        console.print(f"stored logins in {where}: could not be read", highlight=False)
    if not configured and not stored:
        console.print(EMPTY_POOL_HELP.replace("{cmd}", hints.command()), highlight=False, markup=False,
                      soft_wrap=True)
        return
    console.print(f"{configured} upstream account(s) from the config, {stored or 0} stored login(s) in {where} "
                  f"(add one: {hints.command()} login claude|codex|gemini|...; list them: "
                  f"{hints.command()} auth list)", highlight=False, markup=False, soft_wrap=True)


def _print_findings(snapshot: Snapshot) -> None:
    """What the router does not act on, key by key with its line: the same
    list from ``serve`` and ``check-config``."""
    source = snapshot.config.source or "config"
    for account in snapshot.accounts:
        if not account.routes and not account.disabled:
            console.print(f"[yellow]{source}: {account.label} serves no model (it lists none and has no "
                          "built-in catalogue, or excluded-models excludes them all)[/yellow]", highlight=False)
    if not snapshot.findings:
        return
    console.print(f"[yellow]{source}: {len(snapshot.findings)} key(s) the router does not act on "
                  f"({len(snapshot.unknown_keys)} unknown):[/yellow]", highlight=False)
    for finding in snapshot.findings:
        console.print(f"  {finding}", highlight=False, markup=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


@app.command()
def models(config: ConfigOption = None) -> None:
    """List the models the configured accounts serve."""
    registry = _load(config).registry
    table = Table("model", "accounts", "upstream model(s)")
    for name, pool in registry.models():
        table.add_row(name, ", ".join(c.account.label for c in pool.candidates),
                      ", ".join(sorted({c.route.upstream for c in pool.candidates})))
    Console().print(table)


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="Path to config.yaml.")]) -> None:
    """Validate a config file and report unknown keys and start-only settings."""
    snapshot = _load(config)
    cfg = snapshot.config
    console.print(f"[green]ok[/green]: {len(snapshot.accounts)} account(s), {len(cfg.api_keys)} client key(s)")
    _print_findings(snapshot)
    console.print(f"applied only when the server starts (a running server reports a change and keeps its "
                  f"values until restarted): {', '.join(RESTART_ONLY)}")


auth_app = typer.Typer(no_args_is_help=True, help="Stored credentials: list, import, migrate, rotate keys.")
app.add_typer(auth_app, name="auth")


def _register_plugins() -> None:
    """Command groups that live in their own modules."""
    from crossroads.commands import connect, init, login, store, usage

    init.register(app)
    login.register(app, auth_app)
    store.register(app, auth_app)
    connect.register(app)
    usage.register(app)


_register_plugins()


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
