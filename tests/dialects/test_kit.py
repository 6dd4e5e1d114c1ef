"""The shared dialect kit: field readers and media."""

from __future__ import annotations

import base64

import pytest

from crossroads import ir
from crossroads.dialects.kit import fields, media

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
# bytes whose base64 uses '+' and '/' (so the URL-safe form differs)
ODD = PNG + bytes([0xFB, 0xFF, 0xBF, 0xFE])


@pytest.mark.parametrize("raw", [PNG, ODD, b"", b"a", b"ab", b"\xff\xfe\xfd"])
def test_both_base64_alphabets_normalise_to_the_same_bytes(raw: bytes) -> None:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    for text in (standard, urlsafe, urlsafe.rstrip("="), standard[:40] + "\n" + standard[40:]):
        normalised = media.standard_b64(text, "data")
        assert normalised == standard
        assert base64.b64decode(normalised, validate=True) == raw
    assert media.decoded_size(standard) == len(raw)


@pytest.mark.parametrize("text", ["%%%", "abc!", "a", "abcde", "ab===", "ab=c"])
def test_invalid_base64_is_a_400_naming_the_field(text: str) -> None:
    with pytest.raises(ir.Error) as caught:
        media.standard_b64(text, "contents[0].parts[0].inlineData.data")
    assert caught.value.status == 400
    assert caught.value.param == "contents[0].parts[0].inlineData.data"


def test_sniffing_reads_bytes_in_either_alphabet() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(20)
    for raw, kind in ((PNG, "image/png"), (jpeg, "image/jpeg"), (b"GIF89a" + bytes(8), "image/gif"),
                      (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), (b"%PDF-1.7\n", "application/pdf")):
        assert media.sniff(base64.b64encode(raw).decode()) == kind
        assert media.sniff(base64.urlsafe_b64encode(raw).decode()) == kind
    assert media.sniff(base64.b64encode(b"hello world").decode()) is None
    assert media.media_type(None, base64.b64encode(PNG).decode()) == "image/png"
    assert media.media_type("application/octet-stream", base64.b64encode(PNG).decode()) == "image/png"
    assert media.media_type("image/webp", base64.b64encode(PNG).decode()) == "image/webp"  # declared wins


def test_data_urls() -> None:
    urlsafe = base64.urlsafe_b64encode(ODD).decode()
    assert media.split_data_url(f"data:image/png;base64,{urlsafe}", "u") == ("image/png", base64.b64encode(ODD).decode())
    assert media.split_data_url("data:text/plain,hello%20world", "u") == ("text/plain", base64.b64encode(b"hello world").decode())
    assert media.split_data_url("data:;base64,aGk=", "u") == (None, "aGk=")
    assert media.split_data_url("https://example.com/a.png", "u") is None
    for bad in ("data:image/png;base64", "data:image/png;base64,%%%", "data:png;base64,aGk="):
        with pytest.raises(ir.Error) as caught:
            media.split_data_url(bad, "image_url.url")
        assert (caught.value.status, caught.value.param) == (400, "image_url.url")
    assert media.data_url(None, base64.b64encode(PNG).decode()).startswith("data:image/png;base64,")


def test_field_readers_share_one_rule_per_type() -> None:
    assert fields.require_int(3.0, "n") == 3
    assert fields.optional_int(None, "n") is None
    for value, reader in ((True, fields.require_int), (3.5, fields.require_int), ("3", fields.require_int),
                          (True, fields.require_number), (None, fields.require_str), ([], fields.require_dict),
                          (2**64, fields.require_int), (10**400, fields.require_number)):
        with pytest.raises(ir.Error) as caught:
            reader(value, "body.field")
        assert (caught.value.status, caught.value.param) == (400, "body.field")
        assert "'body.field'" in caught.value.message
