"""Any other OpenAI-compatible side service (``side-services:``, a list of
named entries with the fields of ``ai-studio-proxy``): models exposed as
``<name>-<model>`` unless ``prefix`` says otherwise."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from crossroads.providers.side_service import SideServiceProvider
from crossroads.services.spec import Defaults

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SideServicesProvider(SideServiceProvider):
    config_key: ClassVar[str] = "side-services"
    service: ClassVar[str] = "side service"
    defaults: ClassVar[Defaults] = Defaults(prefix="")

    def entries(self, entries: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Defaults]]:
        named = []
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            name = entry.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"side-services[{i}]: each entry needs a 'name' (letters, digits, '-', '_', '.')")
            if name in seen:
                raise ValueError(f"side-services[{i}]: the name {name!r} is used twice")
            seen.add(name)
            named.append((f"side-services[{name}]", entry, Defaults(prefix=f"{name}-")))
        return named


PROVIDER = SideServicesProvider()
