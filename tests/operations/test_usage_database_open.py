"""Workers (``--workers N``) open one SQLite usage database at the same
moment on their first start: every one of them gets it, none is left
without usage (a 503 on the usage routes)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from crossroads.observe.usage_db import SQLiteUsage


def _open(path: str, start: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue[str]) -> None:
    start.wait()
    try:
        SQLiteUsage(Path(path))._open()
        results.put("ok")
    except Exception as exc:  # the test reads what happened
        results.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_new_database_at_once_all_get_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    outcomes = []
    for trial in range(60):  # without the retry, some open failed "database is locked" in most runs of 60
        path = str(tmp_path / f"trial{trial}" / "usage.sqlite3")
        start, results = context.Barrier(3), context.Queue()
        workers = [context.Process(target=_open, args=(path, start, results)) for _ in range(3)]
        for worker in workers:
            worker.start()
        outcomes += [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
    assert outcomes == ["ok"] * len(outcomes), [o for o in outcomes if o != "ok"][:3]
