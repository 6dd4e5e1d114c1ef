"""Inline media: base64 in either alphabet, data URLs, type sniffing, sizes.

The IR holds inline data as standard, padded base64 (RFC 4648 section 4),
whatever the client sent: the google-genai SDK sends URL-safe base64 (``-``
and ``_``), which Anthropic and OpenAI reject. Parsers normalise with
:func:`standard_b64`, so every renderer can send ``data`` as it is.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from crossroads import ir

OCTET_STREAM = "application/octet-stream"

_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_STANDARD = re.compile(r"[A-Za-z0-9+/]*")
_WHITESPACE = re.compile(r"\s")

# leading bytes -> media type (webp is checked apart: RIFF....WEBP)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


def standard_b64(data: str, param: str) -> str:
    """``data`` as standard padded base64; URL-safe letters, missing padding
    and line breaks are accepted. Anything else is a 400 naming ``param``."""
    if "-" in data or "_" in data:
        data = data.translate(_URLSAFE_TO_STANDARD)
    if _WHITESPACE.search(data):
        data = _WHITESPACE.sub("", data)
    body = data.rstrip("=")
    padding = len(data) - len(body)
    if padding > 2 or len(body) % 4 == 1 or not _STANDARD.fullmatch(body):
        raise ir.bad_request(f"invalid value for '{param}': not valid base64 data", param)
    return body + "=" * (-len(body) % 4)


def decode_b64(data: str) -> bytes:
    """Bytes of IR (standard) base64; b"" when it does not decode."""
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return b""


def decoded_size(data: str) -> int:
    """How many bytes standard base64 ``data`` holds, without decoding it."""
    return len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))


def sniff(data: str) -> str | None:
    """The media type of base64 ``data`` from its first bytes, or None."""
    head = decode_b64(standard_prefix(data[:24]))
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def standard_prefix(data: str) -> str:
    """The first whole quantum of ``data`` in the standard alphabet (for sniffing)."""
    data = data.translate(_URLSAFE_TO_STANDARD)
    return data[: len(data) - len(data) % 4]


def guess_type(declared: str | None, data: str) -> str | None:
    """The declared type unless it says nothing (absent, octet-stream), else
    the sniffed one, else what was declared."""
    if declared and declared != OCTET_STREAM:
        return declared
    return sniff(data) or declared


def media_type(declared: str | None, data: str, fallback: str = OCTET_STREAM) -> str:
    """:func:`guess_type`, else ``fallback``."""
    return guess_type(declared, data) or fallback


def split_data_url(url: str, param: str) -> tuple[str | None, str] | None:
    """``data:<type>[;params][;base64],<payload>`` -> (media type or None,
    standard base64). None when ``url`` is not a data URL at all; a 400
    naming ``param`` when it is one but malformed. A payload without
    ``;base64`` is percent-decoded."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise ir.bad_request(f"invalid value for '{param}': a data URL needs a ',' before its data", param)
    written, _, params = header.partition(";")
    declared = written.strip() or None
    if declared is not None and "/" not in declared:
        raise ir.bad_request(f"invalid value for '{param}': {declared!r} is not a media type", param)
    if "base64" in (p.strip().lower() for p in params.split(";")):
        data = standard_b64(payload, param)
    else:
        data = base64.b64encode(unquote_to_bytes(payload)).decode()
    return declared, data


def data_url(media: str | None, data: str, fallback: str = OCTET_STREAM) -> str:
    return f"data:{media_type(media, data, fallback)};base64,{data}"
