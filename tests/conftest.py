"""Suite-wide checks."""

from __future__ import annotations

import pytest

from tests.harness import SECRET_LEAKS


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No router run of the whole suite may have written a configured secret to its log."""
    if SECRET_LEAKS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{len(SECRET_LEAKS)} configured secret(s) appeared in router logs:", red=True)
            for line, secret in SECRET_LEAKS[:20]:
                reporter.write_line(f"  {secret!r} in: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
