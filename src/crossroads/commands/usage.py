"""`crossroads usage`: the usage database, read directly (no server needed).

    crossroads usage [--config c.yaml] [--since 7d] [--until 2026-12-01] [--group model,day]
                     [--key NAME] [--account LABEL] [--model M] [--format table|json|csv] [--export]

Without ``--group`` it prints the totals; ``--export`` prints every request
of the window (CSV or JSON lines).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from crossroads import config as config_module
from crossroads.observe.usage_sql import Query
from crossroads.observe.usage_store import make_query, open_database, to_csv

FORMATS = ("table", "json", "csv")


def register(app: typer.Typer) -> None:
    """Add this module's command to the CLI."""

    @app.command("usage")
    def usage_command(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Path to config.yaml.")] = None,
        since: Annotated[str | None, typer.Option(help="Start: epoch, ISO date/time or a span like 24h, 7d.")] = None,
        until: Annotated[str | None, typer.Option(help="End (exclusive), as --since.")] = None,
        group: Annotated[str | None, typer.Option(help="key, account, model, provider, status, day, hour "
                                                       "(comma-separated).")] = None,
        key: Annotated[str | None, typer.Option(help="Only this client key (its name or masked form).")] = None,
        account: Annotated[str | None, typer.Option(help="Only this account label.")] = None,
        model: Annotated[str | None, typer.Option(help="Only this model (as asked).")] = None,
        output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
        export: Annotated[bool, typer.Option("--export", help="Every request, not totals.")] = False,
    ) -> None:
        """Usage recorded by the router: totals or groups over a time window, or every request."""
        err = Console(stderr=True)
        if output not in FORMATS:
            err.print(f"[red]error:[/red] --format must be one of {', '.join(FORMATS)}")
            raise typer.Exit(2)
        try:
            settings = config_module.load(config).ops
            query = make_query(since, until, group, key=key, account=account, model=model)
        except (config_module.ConfigError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if settings.usage.database == "sqlite" and not settings.usage_path().exists():
            err.print(f"no usage recorded yet ({settings.usage_path()} does not exist)")
            raise typer.Exit(1)
        try:
            items = asyncio.run(_read(settings, query, export))
        except Exception as exc:  # a database that cannot be opened or read
            err.print(f"[red]error:[/red] cannot read the usage database: {exc}")
            raise typer.Exit(1) from None
        _print(items, output, query, export)


async def _read(settings: Any, query: Query, export: bool) -> list[dict[str, Any]]:
    db = open_database(settings)
    await db.open()
    try:
        if export:
            return [row.as_dict() for row in await db.rows(query)]
        return await db.grouped(query)
    finally:
        await db.close()


def _print(items: list[dict[str, Any]], output: str, query: Query, export: bool) -> None:
    if output == "json":
        typer.echo(orjson.dumps(items, option=orjson.OPT_INDENT_2).decode())
    elif output == "csv":
        typer.echo(to_csv(items), nl=False)
    else:
        columns = ["time", "request_id", "client", "account", "model", "status", "input_tokens", "output_tokens",
                   "latency_ms"] if export else [*query.groups, "requests", "failed", "input_tokens",
                                                  "output_tokens", "cached_tokens", "reasoning_tokens",
                                                  "unreported", "mean_latency_ms"]
        table = Table(*columns)
        for item in items:
            table.add_row(*("-" if item.get(c) is None else str(item.get(c)) for c in columns))
        Console().print(table)
