"""`python -m tests.conformance`: run the whole matrix and print it as a table."""

from __future__ import annotations

import sys
import traceback

from rich.console import Console
from rich.table import Table

from tests.conformance.cells import (
    CELLS,
    FEATURES,
    INGRESSES,
    NOT_APPLICABLE,
    UPSTREAMS,
    environment,
)


def main() -> int:
    console = Console(width=200)
    results: dict[tuple[str, str, str], str] = {}
    failures: list[str] = []
    with environment() as env:
        for ingress in INGRESSES:
            for upstream in UPSTREAMS:
                for feature in FEATURES:
                    key = (ingress, upstream, feature)
                    if key in NOT_APPLICABLE:
                        results[key] = "n/a"
                        continue
                    try:
                        CELLS[feature](env, ingress, upstream)
                        results[key] = "pass"
                    except Exception as exc:
                        results[key] = "FAIL"
                        failures.append(f"{ingress} -> {upstream} [{feature}]: {exc!r}\n"
                                        + "".join(traceback.format_exception(exc)[-3:]))
    table = Table(title="Conformance: ingress -> upstream x feature")
    table.add_column("ingress -> upstream", no_wrap=True)
    for feature in FEATURES:
        table.add_column(feature, no_wrap=True)
    style = {"pass": "[green]pass[/green]", "FAIL": "[red]FAIL[/red]", "n/a": "[dim]n/a[/dim]"}
    for ingress in INGRESSES:
        for upstream in UPSTREAMS:
            table.add_row(f"{ingress} -> {upstream}",
                          *(style[results[(ingress, upstream, f)]] for f in FEATURES))
    console.print(table)
    for reason_key, reason in NOT_APPLICABLE.items():
        console.print(f"n/a {reason_key}: {reason}")
    for failure in failures:
        console.print(failure, markup=False)
    passed = sum(v == "pass" for v in results.values())
    console.print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
