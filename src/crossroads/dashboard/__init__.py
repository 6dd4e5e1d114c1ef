"""The built-in dashboard: plain HTML, CSS and JavaScript shipped in the
package (no build step, nothing fetched at run time). The page holds no data
of its own; it reads and changes everything through the management API with
the management secret the user enters (kept in the tab's sessionStorage)."""

from __future__ import annotations

from importlib import resources

PAGE = "management.html"
ASSETS = {"dashboard.js": b"text/javascript; charset=utf-8", "dashboard.css": b"text/css; charset=utf-8",
          PAGE: b"text/html; charset=utf-8"}


def asset(name: str) -> bytes | None:
    """A shipped file by name (only the known ones: never a path from a request)."""
    if name not in ASSETS:
        return None
    return resources.files(__package__).joinpath("static", name).read_bytes()
