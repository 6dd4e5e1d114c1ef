"""docs/adding-a-provider.md stays true: every registered provider has a fake
and a test module that exercises it, and no source file outside providers/
names a provider."""

from __future__ import annotations

import re
from pathlib import Path

from crossroads.providers import _MODULES, all_providers

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-a-provider.md"
ROW = re.compile(r"^\| `(\w+)` \| `(tests/fakes/\w+\.py)` \| `(tests/[\w/]+\.py)` \|$", re.MULTILINE)


def test_every_registered_provider_has_a_fake_and_tests() -> None:
    rows = {module: (fake, tests) for module, fake, tests in ROW.findall(GUIDE.read_text())}
    registered = [name.rsplit(".", 1)[1] for name in _MODULES]
    assert sorted(rows) == sorted(registered), "docs/adding-a-provider.md lists other providers than the registry"
    for name, provider in zip(registered, all_providers(), strict=True):
        fake, tests = rows[name]
        assert (ROOT / fake).is_file(), f"{name}: no fake at {fake}"
        text = (ROOT / tests).read_text()
        names = (name, provider.config_key, *provider.auth_types)
        assert any(re.search(rf"\b{re.escape(n)}\b", text) for n in names), f"{tests} does not exercise {name}"


def test_no_source_outside_providers_names_a_subscription_provider() -> None:
    # the subscription providers' auth-file types ("gemini" is also a dialect's name: dialects may say it)
    kinds = {kind for provider in all_providers() for kind in provider.auth_types} - {"gemini"}
    assert len(kinds) >= 8
    generic = [ROOT / "src/crossroads" / part for part in ("auth", "routing", "pipeline", "runtime.py",
                                                          "snapshot.py", "server.py", "reload.py",
                                                          "frontdoors/management.py", "commands/login.py")]
    files = [f for path in generic for f in ([path] if path.is_file() else path.rglob("*.py"))]
    for file in files:
        text = file.read_text()
        for kind in kinds:
            assert not re.search(rf"[\"']{re.escape(kind)}[\"']", text), f"{file} names the provider {kind!r}"
