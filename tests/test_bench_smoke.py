"""The benchmarks still run: ``bench/run.py --smoke`` and a small ``bench/streams.py``
complete, and every target answers every scenario correctly. Their figures
are not checked: benchmarks are never timed tests (the README's table comes
from a full run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script: str, *args: str, home: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(home)})
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])


def test_every_scenario_runs_through_every_target(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    _run("run.py", "--smoke", "--peers", "none", "--output", str(output), home=tmp_path)
    report = orjson.loads(output.read_bytes())
    assert report["meta"]["mode"] == "smoke"
    assert set(report["scenarios"]) == {"passthrough", "translated", "passthrough_stream", "translated_stream"}
    for name, scenario in report["scenarios"].items():
        assert {"direct", "raw_proxy", "raw_proxy_rsgi", "crossroads"} <= set(scenario["targets"]), name
        for target, measured in scenario["targets"].items():
            for level in ("c1", "c32", "c64"):
                assert measured[level]["requests"] > 0, (name, target, level)
            assert not measured["c1"].get("non_200"), (name, target)
            assert not measured["c32"]["errors"], (name, target, measured["c32"]["errors"])
    assert {check["scenario"] for check in report["checks"]} == set(report["scenarios"])
    for name in ("translated", "translated_stream"):
        # the translated goal's reference, Crossroads' own pass-through, runs in the same rounds
        assert "crossroads_passthrough" in report["scenarios"][name]["targets"], name
        (check,) = [check for check in report["checks"] if check["scenario"] == name]
        assert check["value"] is not None and "minutes apart" not in check["measured"], check


def test_streams_are_held_open_through_every_target(tmp_path: Path) -> None:
    output = tmp_path / "streams.json"
    _run("streams.py", "--streams", "30", "--idle", "0", "--seconds", "2", "--output", str(output), home=tmp_path)
    result = orjson.loads(output.read_bytes())
    for target in ("crossroads", "raw_proxy", "floor"):
        assert result[target]["open_at_once"] == 30 and result[target]["errors"] == 0, (target, result[target])
        assert result["rss_mb_idle"][target] > 0
