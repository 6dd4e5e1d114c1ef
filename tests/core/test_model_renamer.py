"""The byte-level model rename of pass-through bodies and streams: every
spelling of the member is renamed, nothing else is touched, and a body
without the upstream's name is handed back as it came."""

from __future__ import annotations

from crossroads.pipeline.relay import model_renamer


def test_the_same_name_needs_no_renamer() -> None:
    assert model_renamer("gpt-4o-mini", "gpt-4o-mini") is None


def test_every_spelling_is_renamed_and_nothing_else() -> None:
    rename = model_renamer("gpt-4o-mini", "house-model")
    assert rename is not None
    data = (b'data: {"model":"gpt-4o-mini","x":"gpt-4o-mini"}\n\n'
            b'data: {"model": "gpt-4o-mini"}\n\n'
            b'data: {"modelVersion":"gpt-4o-mini","note":"about gpt-4o-mini-2"}\n\n')
    assert rename(data) == (b'data: {"model":"house-model","x":"gpt-4o-mini"}\n\n'
                            b'data: {"model": "house-model"}\n\n'
                            b'data: {"modelVersion":"house-model","note":"about gpt-4o-mini-2"}\n\n')


def test_only_a_later_spelling_is_still_found() -> None:
    rename = model_renamer("gemini-2.5-pro", "g")
    assert rename is not None
    assert rename(b'{"modelVersion": "gemini-2.5-pro"}') == b'{"modelVersion": "g"}'


def test_a_body_without_the_name_comes_back_unchanged() -> None:
    rename = model_renamer("gpt-4o-mini", "house-model")
    assert rename is not None
    body = b'{"model":"other","choices":[]}'
    assert rename(body) is body
