"""``crossroads init``: write a commented config.yaml to start from.

In a terminal it asks a few questions (port, a client key, upstream API
keys); otherwise, or with ``--no-ask``, the flags decide. Every other key is
in the repository's config.example.yaml.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossroads import config as config_module
from crossroads import hints

UPSTREAMS = (  # (config list, flag, question, how the key looks)
    ("claude-api-key", "claude_key", "Anthropic API key", "sk-ant-..."),
    ("codex-api-key", "openai_key", "OpenAI API key", "sk-..."),
    ("gemini-api-key", "gemini_key", "Gemini API key", "AIza..."),
)


def render(port: int, client_key: str | None, upstream_keys: dict[str, str]) -> str:
    """The commented config.yaml."""
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever it holds
    lines = [
        "# Crossroads config, written by `crossroads init`. CLIProxyAPI's config.yaml keys work unchanged;",
        "# every key Crossroads reads is in config.example.yaml in its repository, and",
        "# `crossroads check-config config.yaml` lists any key it does not act on, with its line.",
        "",
        f"port: {port}",
        "# host: 127.0.0.1          # default: every interface when api-keys are set, else loopback only",
        "auth-dir: ~/.crossroads     # stored logins (`crossroads login claude|codex|gemini|...`)",
        "",
        "# The keys clients send (Authorization: Bearer, x-api-key, x-goog-api-key or ?key=).",
        "# With none, the router is open and listens on 127.0.0.1 only.",
    ]
    if client_key:
        lines += ["api-keys:", f"  - {q(client_key)}"]
    else:
        lines += ["api-keys: []"]
    lines += ["", "# Upstream accounts with API keys; repeat an entry to pool several keys.",
              "# Subscriptions need no entry here: `crossroads login claude` (or codex, gemini, ...) stores them."]
    for key, _, _, example in UPSTREAMS:
        value = upstream_keys.get(key)
        if value:
            lines += [f"{key}:", f"  - api-key: {q(value)}"]
        else:
            lines += [f"# {key}:", f"#   - api-key: {example}"]
    lines += [
        "# openai-compatibility:       # any OpenAI chat-completions server",
        "#   - name: openrouter",
        "#     base-url: https://openrouter.ai/api/v1",
        "#     api-key-entries: [{api-key: sk-or-...}]",
        "#     models: [{name: moonshotai/kimi-k2, alias: kimi-k2}]",
        "",
        "routing:",
        "  strategy: round-robin       # or fill-first, weighted-round-robin",
        "  session-affinity: true      # a conversation keeps its account (prompt-cache hits)",
        "request-retry: 3              # extra rounds over a model's pool after the first",
        "max-retry-interval: 30        # wait for a rate-limited account only if it recovers this soon (s)",
        "",
        "# remote-management:",
        "#   secret-key: change-me     # enables /v0/management; stored hashed when the server starts",
    ]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_command(
        output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path("config.yaml"),
        port: Annotated[int | None, typer.Option(help="Port to listen on (default 8317).")] = None,
        client_key: Annotated[str | None, typer.Option("--client-key", help="The key clients send "
                                                       "(default: a new random one).")] = None,
        open_access: Annotated[bool, typer.Option("--open", help="No client key: open, loopback only.")] = False,
        claude_key: Annotated[str | None, typer.Option("--claude-key", help="An Anthropic API key.")] = None,
        openai_key: Annotated[str | None, typer.Option("--openai-key", help="An OpenAI API key.")] = None,
        gemini_key: Annotated[str | None, typer.Option("--gemini-key", help="A Gemini API key.")] = None,
        ask: Annotated[bool | None, typer.Option("--ask/--no-ask", help="Ask questions (default: when run "
                                                 "in a terminal).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    ) -> None:
        """Write a commented config.yaml (asks a few questions in a terminal)."""
        if output.exists() and not force:
            typer.echo(f"error: {output} exists; pass --force to replace it", err=True)
            raise typer.Exit(1)
        interactive = sys.stdin.isatty() if ask is None else ask
        flags = {"claude_key": claude_key, "openai_key": openai_key, "gemini_key": gemini_key}
        if interactive:
            port = port or typer.prompt("Port", default=config_module.DEFAULT_PORT, type=int)
            if client_key is None and not open_access:
                client_key = typer.prompt("Client key (empty: open, loopback only)",
                                          default=secrets.token_urlsafe(24), show_default=False) or None
                open_access = client_key is None
            for _, flag, question, _ in UPSTREAMS:
                if flags[flag] is None:
                    flags[flag] = typer.prompt(f"{question} (empty: none)", default="", show_default=False,
                                               hide_input=True) or None
        if client_key is None and not open_access:
            client_key = secrets.token_urlsafe(24)
        keys = {key: flags[flag] or "" for key, flag, _, _ in UPSTREAMS}
        text = render(port or config_module.DEFAULT_PORT, None if open_access else client_key, keys)
        config_module.parse(text, source=str(output))  # what is written always loads
        output.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds keys
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        typer.echo(f"wrote {output}" + (f" (client key: {client_key})" if client_key and not open_access else ""))
        typer.echo(f"next: {hints.command()} serve --config {output}")
