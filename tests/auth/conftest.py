from __future__ import annotations

from collections.abc import Iterator

import pytest

from crossroads.auth.table import OAuthTable
from tests.auth.tables import every_type_at, oauth_table
from tests.fakes.oauth import FakeIdentity


@pytest.fixture
def identity() -> Iterator[FakeIdentity]:
    """A fake identity server standing in for every provider's token endpoint."""
    with FakeIdentity(client_id="test-client") as server:
        yield server


@pytest.fixture
def endpoints(identity: FakeIdentity) -> FakeIdentity:
    """The identity server every provider type's OAuth endpoints point at (see ``oauth``)."""
    return identity


@pytest.fixture
def oauth(endpoints: FakeIdentity) -> OAuthTable:
    """The OAuth table pointing every provider type's endpoints at ``endpoints``."""
    return oauth_table(every_type_at(endpoints.base_url))
