"""`crossroads` commands: login."""

from __future__ import annotations

import typer


def register(app: typer.Typer, auth_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
