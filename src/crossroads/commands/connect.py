"""`crossroads connect`: wiring coding agents to this router.

    crossroads connect claude-code|codex|gemini-cli [--base-url URL] [--key KEY] [--model M] [--write]

Without ``--write`` it prints what to set; with ``--write`` it shows a diff of
each file it changes and applies it. Only the settings that point the client
at Crossroads are touched: every other key, table and line is kept.

- Claude Code: ``env`` entries in ``~/.claude/settings.json`` (``$CLAUDE_CONFIG_DIR``),
  which Claude Code applies to itself: ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN.
- Codex CLI: a ``[model_providers.crossroads]`` table (``wire_api = "responses"``)
  and ``model_provider = "crossroads"`` in ``~/.codex/config.toml`` (``$CODEX_HOME``).
- Gemini CLI: GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY in ``~/.gemini/.env``,
  and api-key auth selected in ``~/.gemini/settings.json``.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from crossroads import config as config_module
from crossroads import hints

PROVIDER_ID = "crossroads"
DEFAULT_KEY = "crossroads"  # any key works on a router without client keys


class ConnectError(Exception):
    """A file that cannot be edited safely (e.g. it is not valid JSON/TOML)."""


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str  # the router's root, no trailing slash
    key: str
    model: str | None = None


@dataclass(slots=True)
class FileEdit:
    path: Path
    before: str | None  # None: the file does not exist yet
    after: str
    secret: bool = True  # holds the client key: written owner-only

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        old = (self.before or "").splitlines(keepends=True)
        new = self.after.splitlines(keepends=True)
        label = str(self.path)
        return "".join(difflib.unified_diff(old, new, "/dev/null" if self.before is None else label, label))

    def backup(self, stamp: str) -> Path | None:
        """A copy of the file as it was (same permissions), next to it; None for a new file."""
        if self.before is None:
            return None
        copy = self.path.with_name(f"{self.path.name}.crossroads-backup-{stamp}")
        shutil.copy2(self.path, copy)
        return copy

    def undo_command(self, copy: Path | None) -> str:
        if copy is None:
            return f"rm {_shell_quote(str(self.path))}"
        return f"mv {_shell_quote(str(copy))} {_shell_quote(str(self.path))}"

    def apply(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.crossroads-tmp")
        temporary.write_text(self.after, encoding="utf-8")
        if self.secret:
            temporary.chmod(0o600)
        elif self.path.exists():
            temporary.chmod(self.path.stat().st_mode & 0o777)
        temporary.replace(self.path)


@dataclass(slots=True)
class Plan:
    client: str
    instructions: list[str]  # what to print: env exports or config lines
    edits: list[FileEdit] = field(default_factory=list)
    note: str = ""


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _shell_quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]+", value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------------------- JSON settings


def _load_json_object(path: Path, text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConnectError(f"{path} is not valid JSON ({exc}); fix or move it, then run again") from None
    if not isinstance(data, dict):
        raise ConnectError(f"{path} does not hold a JSON object; fix or move it, then run again")
    return data


def _merged_json(path: Path, text: str | None, updates: dict[str, Any]) -> str:
    """``updates`` merged key by key into the existing object (nested dicts merge too)."""
    data = _load_json_object(path, text)

    def merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, updates)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


# ---------------------------------------------------------------------------- .env files


def _merged_env_file(text: str | None, values: dict[str, str]) -> str:
    """Set ``values`` in a dotenv file: existing assignments are replaced in place,
    new ones appended; comments and other variables are kept."""
    lines = (text or "").splitlines()
    pending = dict(values)
    out: list[str] = []
    for line in lines:
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) in values:
            name = match.group(1)
            if name in pending:
                out.append(f"{name}={pending.pop(name)}")
            continue  # a duplicate assignment of a name we set: drop it
        out.append(line)
    out.extend(f"{name}={value}" for name, value in pending.items())
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- TOML (Codex)


def _toml_string(value: str) -> str:
    return orjson.dumps(value).decode()  # a JSON string is a valid TOML basic string


_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _header_name(line: str) -> str | None:
    match = _TABLE_HEADER.match(line)
    if match is None:
        return None
    return ".".join(part.strip().strip('"').strip("'") for part in match.group(1).split("."))


def _merged_codex_toml(path: Path, text: str | None, top_level: dict[str, str], table: dict[str, str]) -> str:
    """Set top-level keys and replace the ``[model_providers.crossroads]`` table,
    leaving every other line of the file as it was."""
    original = text or ""
    try:
        tomllib.loads(original)
    except tomllib.TOMLDecodeError as exc:
        raise ConnectError(f"{path} is not valid TOML ({exc}); fix or move it, then run again") from None
    lines = original.splitlines()
    first_header = next((i for i, line in enumerate(lines) if _header_name(line) is not None), len(lines))
    head, rest = lines[:first_header], lines[first_header:]

    pending = dict(top_level)
    new_head: list[str] = []
    for line in head:
        match = re.match(r"\s*([A-Za-z0-9_-]+)\s*=", line)
        if match and match.group(1) in top_level:
            if match.group(1) in pending:
                new_head.append(f"{match.group(1)} = {_toml_string(pending.pop(match.group(1)))}")
            continue
        new_head.append(line)
    while new_head and not new_head[-1].strip():
        new_head.pop()
    new_head += [f"{key} = {_toml_string(value)}" for key, value in pending.items()]

    ours = f"model_providers.{PROVIDER_ID}"
    kept: list[str] = []
    skipping = False
    for line in rest:
        name = _header_name(line)
        if name is not None:
            skipping = name == ours or name.startswith(ours + ".")
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    section = [f"[{ours}]", *(f"{key} = {_toml_string(value)}" for key, value in table.items())]
    parts = [block for block in ("\n".join(new_head), "\n".join(kept), "\n".join(section)) if block]
    result = "\n\n".join(parts) + "\n"
    _check_codex_merge(path, original, result, top_level, table)
    return result


def _check_codex_merge(path: Path, before: str, after: str, top_level: dict[str, str],
                       table: dict[str, str]) -> None:
    """The edit must parse, carry our values, and leave everything else equal."""
    old, new = tomllib.loads(before), tomllib.loads(after)
    expected = {**old, **top_level}
    providers = dict(old.get("model_providers") or {})
    providers[PROVIDER_ID] = table
    expected["model_providers"] = providers
    if new != expected:
        raise ConnectError(f"could not edit {path} safely; add these lines by hand instead")


# ---------------------------------------------------------------------------- the three clients


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def claude_code(target: Target) -> Plan:
    env = {"ANTHROPIC_BASE_URL": target.base_url, "ANTHROPIC_AUTH_TOKEN": target.key}
    if target.model:
        env["ANTHROPIC_MODEL"] = target.model
    directory = Path(os.environ["CLAUDE_CONFIG_DIR"]) if os.environ.get("CLAUDE_CONFIG_DIR") else _home() / ".claude"
    settings = directory / "settings.json"
    before = _read(settings)
    edit = FileEdit(settings, before, _merged_json(settings, before, {"env": env}))
    instructions = [f"export {name}={_shell_quote(value)}" for name, value in env.items()]
    return Plan("claude-code", instructions, [edit],
                note=f"--write puts these in the \"env\" of {settings}, which Claude Code applies to itself.")


def codex(target: Target) -> Plan:
    directory = Path(os.environ["CODEX_HOME"]) if os.environ.get("CODEX_HOME") else _home() / ".codex"
    path = directory / "config.toml"
    top_level = {"model_provider": PROVIDER_ID}
    if target.model:
        top_level["model"] = target.model
    table = {"name": "Crossroads", "base_url": f"{target.base_url}/v1", "wire_api": "responses",
             "experimental_bearer_token": target.key}
    before = _read(path)
    edit = FileEdit(path, before, _merged_codex_toml(path, before, top_level, table))
    instructions = [f"{key} = {_toml_string(value)}" for key, value in top_level.items()]
    instructions += ["", f"[model_providers.{PROVIDER_ID}]"]
    instructions += [f"{key} = {_toml_string(value)}" for key, value in table.items()]
    return Plan("codex", instructions, [edit], note=f"config lines for {path}")


def gemini_cli(target: Target) -> Plan:
    directory = _home() / ".gemini"
    env = {"GOOGLE_GEMINI_BASE_URL": target.base_url, "GEMINI_API_KEY": target.key}
    if target.model:
        env["GEMINI_MODEL"] = target.model
    env_path, settings_path = directory / ".env", directory / "settings.json"
    env_before, settings_before = _read(env_path), _read(settings_path)
    settings_update = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    edits = [FileEdit(env_path, env_before, _merged_env_file(env_before, env)),
             FileEdit(settings_path, settings_before, _merged_json(settings_path, settings_before, settings_update),
                      secret=False)]
    instructions = [f"export {name}={_shell_quote(value)}" for name, value in env.items()]
    instructions.append(f"# and in {settings_path}: {orjson.dumps(settings_update).decode()}")
    note = (f"--write puts the variables in {env_path} (Gemini CLI loads it) and selects api-key auth. "
            "Gemini CLI accepts a plain-http base URL only on localhost/127.0.0.1/[::1].")
    return Plan("gemini-cli", instructions, edits, note=note)


CLIENTS: dict[str, Callable[[Target], Plan]] = {"claude-code": claude_code, "codex": codex,
                                                 "gemini-cli": gemini_cli}


# ---------------------------------------------------------------------------- defaults from the config


def default_target(cfg: config_module.Config, base_url: str | None, key: str | None,
                   model: str | None) -> tuple[Target, list[str]]:
    """Where this instance listens and which client key to use; also notes to show."""
    notes: list[str] = []
    if base_url is None:
        host = cfg.bind_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        base_url = f"http://{host}:{cfg.port}"
    base_url = base_url.rstrip("/")
    for suffix in ("/v1", "/v1beta"):
        if base_url.endswith(suffix):
            base_url = base_url[: -len(suffix)]
    if key is None:
        if cfg.api_keys:
            key = cfg.api_keys[0]
            if len(cfg.api_keys) > 1:
                notes.append("using the first client key of the config; pass --key to pick another")
        else:
            key = os.environ.get("CROSSROADS_API_KEY") or DEFAULT_KEY
            notes.append("the config lists no client keys, so the router accepts any key")
    return Target(base_url, key, model), notes


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Path to config.yaml.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command()
    def connect(
        client: Annotated[str, typer.Argument(help="claude-code, codex or gemini-cli")],
        base_url: Annotated[str | None, typer.Option("--base-url", help="This router's URL "
                                                     "(default: from the config, http://127.0.0.1:8317).")] = None,
        key: Annotated[str | None, typer.Option("--key", help="Client key (default: the config's first).")] = None,
        model: Annotated[str | None, typer.Option("--model", help="Default model for the client.")] = None,
        write: Annotated[bool, typer.Option("--write", help="Apply to the client's config files "
                                            "(shows the diff).")] = False,
        config: ConfigOption = None,
    ) -> None:
        """Point a coding agent (Claude Code, Codex CLI, Gemini CLI) at this router."""
        make_plan = CLIENTS.get(client)
        if make_plan is None:
            typer.echo(f"unknown client {client!r}; choose one of: {', '.join(CLIENTS)}", err=True)
            raise typer.Exit(2)
        try:
            cfg = config_module.load(config)
        except config_module.ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        target, notes = default_target(cfg, base_url, key, model)
        try:
            plan = make_plan(target)
        except ConnectError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for note in notes:
            typer.echo(f"# note: {note}", err=True)
        if not write:
            typer.echo("\n".join(plan.instructions))
            typer.echo(f"# {plan.note}", err=True)
            typer.echo(f"# run again with --write to apply ({hints.command()} connect {client} --write)", err=True)
            return
        changed = [edit for edit in plan.edits if edit.changed]
        if not changed:
            typer.echo(f"{client} is already pointed at {target.base_url}; nothing to change")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        undo = []
        for edit in changed:
            typer.echo(edit.diff(), nl=False)
            copy = edit.backup(stamp)
            edit.apply()
            undo.append(edit.undo_command(copy))
            if copy is not None:
                typer.echo(f"# backup of {edit.path}: {copy}", err=True)
        typer.echo(f"# {client} now uses {target.base_url} ({', '.join(str(e.path) for e in changed)} updated)")
        typer.echo(f"# to undo: {' && '.join(undo)}", err=True)
