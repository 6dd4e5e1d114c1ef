from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.state.servers import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()
