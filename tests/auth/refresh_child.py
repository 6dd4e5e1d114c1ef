"""Child process for the crash-safety test: refreshes one credential in a
FileStore and stops dead (waiting to be SIGKILLed) at a named point.

    python -m tests.auth.refresh_child AUTH_DIR IDENTITY_URL POINT
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from crossroads.auth.refresher import Refresher
from crossroads.credentials.file import FileStore
from tests.auth.tables import oauth_table

RECORD_ID = "claude-crash@example.com"


def halt(point: str) -> None:
    print(f"AT {point}", flush=True)
    time.sleep(600)


async def main(directory: str, identity_url: str, target: str) -> None:
    table = oauth_table({"claude": {"token-url": f"{identity_url}/oauth/token", "client-id": "test-client"}})

    async def checkpoint(point: str) -> None:
        if point == target:
            halt(point)

    if target == "mid_write":
        real_replace = os.replace

        def stalled_replace(src: str, dst: str) -> None:  # temp file written, not yet renamed
            halt("mid_write")
            real_replace(src, dst)

        os.replace = stalled_replace  # type: ignore[assignment]
    store = FileStore(directory)
    record = await store.get(RECORD_ID)
    assert record is not None
    print("READY", flush=True)
    await Refresher(store, oauth=lambda: table, checkpoint=checkpoint).credential(record).refresh(force=True)
    print("DONE", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
