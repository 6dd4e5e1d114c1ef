"""py-spy profiles of a server under wrk load (``bench/run.py --profile``):
the top functions by self time, and the project's own by inclusive time."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from children import Children
from load import wrk_script
from scenarios import HIGH_CONCURRENCY, ROOT, Target


def profile_server(children: Children, name: str, target: Target, seconds: int, workdir: Path,
                   pin: list[str]) -> dict[str, Any]:
    """py-spy samples one server (all its processes) while wrk loads it; returns the top costs."""
    venv_spy = ROOT / ".venv" / "bin" / "py-spy"
    spy = str(venv_spy) if venv_spy.exists() else shutil.which("py-spy")
    if spy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    pids = children.python_pids(name)
    if not pids:
        return {"skipped": f"{name} process not found"}
    out = workdir / f"profile-{target.port}-{abs(hash(target.body))}.txt"
    script = workdir / "profile-load.lua"
    script.write_text(wrk_script(target))
    load = subprocess.Popen([*pin, "wrk", "-t1", f"-c{HIGH_CONCURRENCY}", f"-d{seconds + 2}s", "-s", str(script),
                             target.url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        done = subprocess.run([*pin, spy, "record", "--pid", str(pids[0]), "--subprocesses", "--function",
                               "--nonblocking", "--rate", "200", "--duration", str(seconds), "--format", "raw",
                               "--output", str(out)], capture_output=True, text=True, timeout=seconds + 30,
                              check=False)
    finally:
        load.terminate()
        load.wait(timeout=10)
    if not out.exists():
        return {"skipped": f"py-spy failed: {done.stderr.strip()[-400:]}"}
    return summarise_profile(out.read_text(), OWN_FRAMES.get(name, f"({name}/"))


# Frames whose inclusive time the profile summary reports, per server.
OWN_FRAMES = {"crossroads": "(crossroads/", "raw_proxy": "rawproxy.py", "raw_proxy_rsgi": "rawproxy.py"}


def _frame_name(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3", "/src/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def summarise_profile(collapsed: str, own_code: str, top: int = 15) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):  # inclusive time of the project's own code only
            if own_code in frame:
                inclusive[frame] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": f, "percent": round(100 * n / total, 1)} for f, n in counter.most_common(top)]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}

