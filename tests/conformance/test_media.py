"""Inline images reach every upstream byte for byte, whatever base64 alphabet
the client used: the google-genai SDK sends URL-safe base64 (``-``/``_``),
which Anthropic and OpenAI reject; the fakes decode images as those APIs do."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.conformance.cells import Env, alias, environment, last_body
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai_chat as fake_chat
from tests.fakes import openai_responses as fake_responses

# a PNG whose base64 holds '+' and '/' in the standard alphabet (so '-' and '_' in the URL-safe one)
IMAGE = (base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
         + bytes([0xFB, 0xEF, 0xBE, 0xFF, 0xFF, 0xFE]))
IMAGES_IN = {"anthropic": fake_anthropic.images_in, "openai-chat": fake_chat.images_in,
             "openai-responses": fake_responses.images_in, "gemini": fake_gemini.images_in}


def test_the_image_needs_both_alphabets() -> None:
    assert base64.b64encode(IMAGE) != base64.urlsafe_b64encode(IMAGE)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with environment() as e:
        yield e


@pytest.mark.parametrize("upstream", ["anthropic", "openai-chat", "openai-responses", "gemini"])
def test_google_genai_images_reach_every_upstream_intact(env: Env, upstream: str) -> None:
    result = env.driver("gemini").generate(alias(upstream), "What is this?", image=IMAGE)
    assert "saw 1 image(s): image/png" in result.text, result.text
    assert IMAGES_IN[upstream](last_body(env, upstream)) == [IMAGE]


@pytest.mark.parametrize("ingress", ["anthropic", "openai-chat", "openai-responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_images_from_every_dialect_reach_gemini_intact(env: Env, ingress: str, stream: bool) -> None:
    result = env.driver(ingress).generate(alias("gemini"), "What is this?", image=IMAGE, stream=stream)
    assert "saw 1 image(s): image/png" in result.text, result.text
    assert IMAGES_IN["gemini"](last_body(env, "gemini")) == [IMAGE]
