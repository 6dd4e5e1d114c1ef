"""main.log shared by several writers: rotation by size, the directory cap."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from crossroads.observe.logfiles import AUDIT_LOG, MAIN_LOG, SharedFileHandler, cap_directory


def record(text: str) -> logging.LogRecord:
    return logging.LogRecord("crossroads.test", logging.INFO, __file__, 1, text, None, None)


def test_writers_share_main_log_across_a_rotation(tmp_path: Path) -> None:
    first = SharedFileHandler(tmp_path / MAIN_LOG, max_bytes=2000)
    second = SharedFileHandler(tmp_path / MAIN_LOG, max_bytes=2000)  # another worker, the same file
    try:
        for i in range(60):
            (first if i % 2 else second).emit(record(f"line {i:03d} " + "x" * 40))
    finally:
        first.close()
        second.close()
    rotated = sorted(p for p in tmp_path.glob("main-*.log"))
    assert rotated, "main.log was rotated"
    lines = [line for p in [*rotated, tmp_path / MAIN_LOG] for line in p.read_text().splitlines()]
    assert sorted(lines) == sorted(f"line {i:03d} " + "x" * 40 for i in range(60))  # nothing lost or doubled
    assert all(p.stat().st_size < 2000 + 200 for p in rotated)


def test_the_cap_removes_the_oldest_files_but_never_main_or_audit(tmp_path: Path) -> None:
    now = time.time()
    for age, name in enumerate(["error-c.log", "error-b.log", "main-old.log", "error-a.log"]):
        path = tmp_path / name
        path.write_text("x" * 1000)
        os.utime(path, (now - 100 + age, now - 100 + age))
    (tmp_path / MAIN_LOG).write_text("y" * 1000)
    (tmp_path / AUDIT_LOG).write_text("z" * 1000)
    cap_directory(tmp_path, 3500)
    assert sorted(p.name for p in tmp_path.glob("*.log")) == [AUDIT_LOG, "error-a.log", MAIN_LOG]
