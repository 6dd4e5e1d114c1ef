"""The ingress x upstream x feature matrix, one pytest case per cell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.cells import CELLS, NOT_APPLICABLE, Env, all_cells, environment


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with environment() as e:
        yield e


@pytest.mark.parametrize(("ingress", "upstream", "feature"), all_cells(),
                         ids=[f"{i}->{u}:{f}" for i, u, f in all_cells()])
def test_cell(env: Env, ingress: str, upstream: str, feature: str) -> None:
    reason = NOT_APPLICABLE.get((ingress, upstream, feature))
    if reason:
        pytest.skip(f"not applicable: {reason}")
    try:
        CELLS[feature](env, ingress, upstream)
    except Exception:
        print(env.router.log()[-4000:])
        raise
