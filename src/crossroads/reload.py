"""Background work started with the server: loading stored credentials and
applying config/store changes without a restart (hot reload)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crossroads.server import App


async def start(app: App) -> list[asyncio.Task[None]]:
    """Load what the server needs at start and return the watcher tasks."""
    return []
