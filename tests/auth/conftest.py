from __future__ import annotations

from collections.abc import Iterator

import pytest

from crossroads.auth import settings
from tests.fakes.oauth import FakeIdentity


@pytest.fixture
def identity() -> Iterator[FakeIdentity]:
    """A fake identity server standing in for every provider's token endpoint."""
    with FakeIdentity(client_id="test-client") as server:
        yield server


@pytest.fixture
def endpoints(identity: FakeIdentity) -> Iterator[FakeIdentity]:
    """Point every provider type's OAuth endpoints at ``identity``."""
    url = identity.base_url
    settings.configure({"oauth-endpoints": {
        kind: {"client-id": "test-client", "token-url": f"{url}/oauth/token",
               "authorize-url": f"{url}/oauth/authorize", "device-url": f"{url}/oauth/device",
               "discovery-url": f"{url}/.well-known/openid-configuration"}
        for kind in ("claude", "codex", "gemini", "antigravity", "qwen", "kimi", "xai", "iflow", "vertex")}})
    yield identity
    settings.configure({})
