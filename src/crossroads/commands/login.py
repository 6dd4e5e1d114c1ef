"""`crossroads login <provider>`, `crossroads auth list`, `crossroads auth import`.

The flows live in :mod:`crossroads.auth`, driven by the OAuth spec each
subscription provider declares (its login names, flows, import options);
this module only talks to the terminal (and the browser) and writes the
resulting records to the store.
"""

from __future__ import annotations

import asyncio
import time
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import orjson
import typer

from crossroads import config as config_module
from crossroads import hints
from crossroads.access.management_secret import is_hashed, local_token
from crossroads.auth import device, flows, tokens
from crossroads.auth.callback import CallbackServer, parse_redirect
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.persist import save_results
from crossroads.auth.refresher import LAST_ERROR, NEEDS_LOGIN
from crossroads.auth.spec import LoginResult, OAuthSpec
from crossroads.auth.table import OAuthTable
from crossroads.credentials.base import Record, Store, StoreError
from crossroads.providers import oauth_specs
from crossroads.providers.base import mask

SPECS = tuple(oauth_specs())
KNOWN_TYPES = tuple(spec.type for spec in SPECS)
SPECS_BY_TYPE = {spec.type: spec for spec in SPECS}
LOGIN_NAMES = tuple(name for spec in SPECS for name in spec.all_login_names)
# CLI flag of each login option a provider's spec may read (for one-line errors)
OPTION_FLAGS = {"setup_token": "--setup-token", "project_ids": "--project-id", "service_account": "--service-account",
                "location": "--location", "cookie": "--cookie", "browser": "--browser",
                "cookie_file": "--cookie-file"}
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Path to config.yaml.")]
AuthDirOption = Annotated[Path | None, typer.Option("--auth-dir", help="Override the config's auth-dir.")]


def load_config(config: Path | None, auth_dir: Path | None) -> config_module.Config:
    cfg = config_module.load(str(config) if config else None)
    if auth_dir is not None:
        cfg.auth_dir = str(auth_dir)
        cfg.raw = {**cfg.raw, "auth-dir": str(auth_dir)}
    return cfg


def open_store(cfg: config_module.Config, config: Path | None) -> Store:
    from crossroads.credentials.select import open_store as select_store

    return select_store(cfg, str(config) if config else None)


async def save(store: Store, results: list[LoginResult]) -> None:
    for record_id, result in zip(await save_results(store, results), results, strict=True):
        typer.echo(f"saved {record_id} ({result.label})")


async def browser_login(table: OAuthTable, kind: str, *, no_browser: bool, port: int | None,
                        options: dict[str, Any]) -> list[LoginResult]:
    if no_browser:
        login = flows.start(table, kind, loopback=False, port=port, options=options)
        typer.echo(f"Open this URL in a browser and sign in:\n\n  {login.url}\n")
        pasted = typer.prompt("Paste the redirect URL (or the code shown)")
        return await flows.complete(login, parse_redirect(pasted))
    if no_browser_here():
        spec = SPECS_BY_TYPE[kind]
        name = spec.login_names[0]
        cmd = hints.command()
        raise LoginError(f"no web browser found on this machine; run `{cmd} login {name} --no-browser` "
                         "(open the printed URL anywhere, then paste the redirect)"
                         + (f" or `{cmd} login {name} --device`" if spec.device is not None else ""))
    login = flows.start(table, kind, loopback=True, port=port, options=options)
    server = await CallbackServer(login.settings.callback_port, login.settings.callback_path).start()
    try:
        typer.echo(f"Opening the browser for {kind} login. If it does not open, visit:\n\n  {login.url}\n")
        await asyncio.to_thread(webbrowser.open, login.url)
        redirect = await server.wait()
    finally:
        await server.close()
    return await flows.complete(login, redirect)


async def device_login(table: OAuthTable, kind: str, options: dict[str, Any]) -> list[LoginResult]:
    login = await device.start(table, kind, options)
    where = login.verification_uri_complete or login.verification_uri
    typer.echo(f"Visit {where} and enter the code: {login.user_code}")
    return await device.poll(login)


def check_options(name: str, spec: OAuthSpec, options: dict[str, Any], use_device: bool) -> None:
    """Refuse options the provider's login does not read (instead of ignoring them)."""
    for key in options:
        if key not in spec.options:
            raise LoginError(f"{OPTION_FLAGS.get(key, key)} does not apply to `crossroads login {name}`")
    if use_device and spec.device is None:
        raise LoginError(f"{name} has no device login; drop --device")


async def run_login(name: str, table: OAuthTable, store: Store, *, no_browser: bool, port: int | None,
                    use_device: bool, token: str | None, options: dict[str, Any]) -> None:
    """Log in as the spec of login name ``name`` says: a pasted token, an
    import its options select, its device flow, or its browser flow."""
    spec = table.by_login_name(name)
    if spec is None:
        raise LoginError(f"unknown provider {name!r}; choose one of {', '.join(LOGIN_NAMES)}")
    check_options(name, spec, options, use_device)
    chosen = next((i for i in spec.imports if i.option in options), None)
    if token:
        results = [flows.pasted_token_record(spec.type, token, options.get("email", ""))]
    elif chosen is not None:
        results = await chosen.run(table.entry(spec.type), options)
    elif spec.uses_device(name, asked=use_device):
        results = await device_login(table, spec.type, options)
    elif spec.browser is not None:
        results = await browser_login(table, spec.type, no_browser=no_browser, port=port, options=options)
    elif spec.imports:  # import-only: its own message says which option it needs
        results = await spec.imports[0].run(table.entry(spec.type), options)
    else:
        raise LoginError(f"{name} has no interactive login; use --token")
    await save(store, results)


def register(app: typer.Typer, auth_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command("login")
    def login_command(
        provider: Annotated[str, typer.Argument(help=f"One of: {', '.join(LOGIN_NAMES)}.")],
        no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL; paste the redirect.")] = False,
        use_device: Annotated[bool, typer.Option("--device", help="Device-code login instead of the browser "
                                                 "(providers that offer both).")] = False,
        setup_token: Annotated[bool, typer.Option("--setup-token", help="A long-lived inference-only token "
                                                  "(providers that offer one).")] = False,
        token: Annotated[str | None, typer.Option("--token", help="Store an existing access token.")] = None,
        port: Annotated[int | None, typer.Option("--port", help="Local callback port.")] = None,
        project_id: Annotated[str | None, typer.Option("--project-id", help="Cloud project(s) to use, "
                                                       "comma-separated (else discovered).")] = None,
        service_account: Annotated[Path | None, typer.Option("--service-account",
                                                             help="Import a service-account JSON key.")] = None,
        location: Annotated[str | None, typer.Option("--location", help="Region of an imported service "
                                                     "account (default us-central1).")] = None,
        cookie: Annotated[str | None, typer.Option("--cookie", help="A logged-in browser's cookie, "
                                                   "exchanged for an API key.")] = None,
        browser: Annotated[str | None, typer.Option("--browser", help="Import the cookies from this browser's "
                                                    "profile (firefox, chrome, chromium, edge, brave...).")] = None,
        cookie_file: Annotated[Path | None, typer.Option("--cookie-file", help="With --browser: the profile's "
                                                         "cookie database, when not the default one.")] = None,
        config: ConfigOption = None,
        auth_dir: AuthDirOption = None,
    ) -> None:
        """Log in to a subscription and store the credential in auth-dir."""
        name = provider.lower()
        if name not in LOGIN_NAMES:
            raise typer.BadParameter(f"unknown provider {provider!r}; choose one of {', '.join(LOGIN_NAMES)}")
        options: dict[str, Any] = {}
        if setup_token:
            options["setup_token"] = True
        if project_id:
            options["project_ids"] = [p.strip() for p in project_id.split(",") if p.strip()]
        if service_account is not None:
            options["service_account"] = str(service_account)
        if location:
            options["location"] = location
        if cookie:
            options["cookie"] = cookie
        if browser:
            options["browser"] = browser
        if cookie_file is not None:
            options["cookie_file"] = str(cookie_file)
        try:
            cfg = load_config(config, auth_dir)
            table = OAuthTable.build(SPECS, cfg.raw)
            store = open_store(cfg, config)
            asyncio.run(run_login(name, table, store, no_browser=no_browser, port=port,
                                  use_device=use_device, token=token, options=options))
        except (LoginError, StoreError, config_module.ConfigError, ValueError) as exc:
            typer.echo(f"login failed: {exc}", err=True)
            raise typer.Exit(1) from None
        except (aiohttp.ClientError, OSError, TimeoutError, OAuthError) as exc:
            if isinstance(exc, OAuthError) and exc.code != "unreachable":
                typer.echo(f"login failed: the identity server refused: {exc}", err=True)
            else:  # the identity server, not us
                where = exc.description if isinstance(exc, OAuthError) else unreachable(exc)
                typer.echo(f"login failed: the identity server for {name} could not be reached ({where}); "
                           "check the network or a proxy (HTTPS_PROXY), then try again", err=True)
            raise typer.Exit(1) from None

    @auth_app.command("list")
    def list_command(config: ConfigOption = None, auth_dir: AuthDirOption = None,
                     as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Show stored accounts (secrets masked)."""
        store = open_store(load_config(config, auth_dir), config)
        records = asyncio.run(store.list())
        rows = [describe(record) for record in records]
        cooling = running_cooldowns(config)
        windows = running_windows(config)
        for row in rows:
            if cooling is None:
                row["cooldowns"] = "unknown (server not reachable; needs remote-management.secret-key)"
            else:
                row["cooldowns"] = ", ".join(cooling.get(row["id"], [])) or "none"
            row["windows"] = [] if windows is None else windows.get(row["id"], [])
        if as_json:
            typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
            return
        if not rows:
            typer.echo("no stored accounts")
        for row in rows:
            typer.echo("  ".join(f"{k}={v}" for k, v in row.items() if v not in ("", None) and k != "windows"))
            for window in row["windows"]:
                typer.echo(f"    {window['window']:<24} {window['bar']:<28} resets {window['resets_at'] or 'unknown'}"
                           f"  ({window['source']}, {window['age_seconds']}s ago)")

    @auth_app.command("import")
    def import_command(files: Annotated[list[Path], typer.Argument(help="CLIProxyAPI auth files (JSON).")],
                       config: ConfigOption = None, auth_dir: AuthDirOption = None) -> None:
        """Copy existing CLIProxyAPI auth files into the store."""
        store = open_store(load_config(config, auth_dir), config)
        failed = 0
        for path in files:
            try:
                data = orjson.loads(path.read_bytes())
                if not isinstance(data, dict) or data.get("type") not in KNOWN_TYPES:
                    raise ValueError(f"'type' must be one of {', '.join(KNOWN_TYPES)}")
                asyncio.run(store.put(Record(path.stem, data)))
                typer.echo(f"imported {path.stem} ({data['type']})")
            except (OSError, ValueError, StoreError) as exc:
                failed += 1
                typer.echo(f"{path}: not imported: {exc}", err=True)
        if failed:
            raise typer.Exit(1)


def unreachable(exc: BaseException) -> str:
    """One line about a failed connection: what failed and where, never a traceback."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    key = getattr(exc, "host", None)
    where = f"{key}:{getattr(exc, 'port', '')}" if key else ""
    cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
    reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    return f"{where}: {reason}" if where else str(reason)


def no_browser_here() -> bool:
    """True when this machine has no browser Python can open (a server over
    SSH, a container): waiting for a callback would wait forever."""
    try:
        webbrowser.get()
    except webbrowser.Error:
        return True
    return False


def ask_server(config: Path | None, path: str) -> Any:
    """A management answer from the running server (what lives in its memory),
    or None when it cannot be asked."""
    import urllib.error
    import urllib.request

    try:
        cfg = config_module.load(str(config) if config else None)
    except config_module.ConfigError:
        return None
    if not cfg.management_secret:
        return None
    key = local_token(cfg.auth_dir) if is_hashed(cfg.management_secret) else cfg.management_secret
    request = urllib.request.Request(f"http://127.0.0.1:{cfg.port}/v0/management/{path}",
                                     headers={"X-Management-Key": key or ""})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return orjson.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def running_windows(config: Path | None) -> dict[str, list[dict[str, Any]]] | None:
    """Each account's quota windows (utilisation bars, resets) as the server sees them."""
    answer = ask_server(config, "quota")
    if not isinstance(answer, dict) or not isinstance(answer.get("accounts"), list):
        return None
    return {str(row["account"]): list(row.get("windows") or []) for row in answer["accounts"]
            if isinstance(row, dict) and "account" in row}


def running_cooldowns(config: Path | None) -> dict[str, list[str]] | None:
    """Cooldowns per account from the running server's management API (they
    live in the server's memory), or None when it cannot be asked."""
    answer = ask_server(config, "cooldowns")
    try:
        rows = answer["cooldowns"]
    except (KeyError, TypeError):
        return None
    cooling: dict[str, list[str]] = {}
    for row in rows:
        cooling.setdefault(str(row["account"]), []).append(
            f"{row['model']} for {row['seconds_left']:.0f}s ({row['reason']})")
    return cooling


def describe(record: Record) -> dict[str, Any]:
    """One account for display: never a secret in clear."""
    data = record.data
    expiry = tokens.expires_at(data)
    spec = SPECS_BY_TYPE.get(record.type)
    if spec is None:
        status = "unknown type" + (f" {record.type!r}" if record.type else " (no 'type' field)") + ": not used"
    elif data.get(NEEDS_LOGIN):
        status = "needs-login"
    elif data.get("disabled"):
        status = "disabled"
    elif expiry is not None and expiry < time.time():
        status = "expired (refreshable)" if tokens.refresh_token(data) else "expired"
    else:
        status = "ok"
    plan = data.get("plan_type") or data.get("token_kind") or (spec.plan(data) if spec and spec.plan else "")
    return {
        "id": record.id, "provider": record.type,
        "email": str(data.get("email") or data.get("label") or ""),
        "plan": str(plan or ""),
        "project": str(data.get("project_id") or ""),
        "expires": tokens.format_time(expiry) if expiry else "",
        "status": status,
        "error": str(data.get(LAST_ERROR) or "") if data.get(NEEDS_LOGIN) else "",
        "token": mask(tokens.access_token(data)) if tokens.access_token(data) else "",
        "priority": data.get("priority") or 0,
    }
