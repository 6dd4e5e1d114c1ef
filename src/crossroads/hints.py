"""How to spell a ``crossroads`` command in a hint so that it works as
printed: ``crossroads`` when that name on PATH is this install, otherwise
the path of this install's script (e.g. ``.venv/bin/crossroads``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

COMMAND_ENV = "CROSSROADS_COMMAND"  # set by `serve` for its supervised child, which prints the banner


def command() -> str:
    known = os.environ.get(COMMAND_ENV)
    if known:
        return known
    script = Path(sys.executable).parent / "crossroads"
    if not script.exists():
        return f"{sys.executable} -m crossroads"
    found = shutil.which("crossroads")
    if found and Path(found).resolve() == script.resolve():
        return "crossroads"
    here = Path.cwd()
    if script.is_relative_to(here):
        return str(script.relative_to(here))  # .venv/bin/crossroads, run from the checkout
    return str(script)
