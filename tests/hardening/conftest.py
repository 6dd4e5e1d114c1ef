"""What the hardening tests share: one OpenAI-compatible fake per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_chat import FakeOpenAIChat

FAKE_KEY = "test-key"
OTHER_KEY = "test-key-2"


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat(api_keys=[FAKE_KEY, OTHER_KEY]) as fake:
        yield fake
