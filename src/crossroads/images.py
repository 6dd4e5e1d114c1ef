"""Inlining remote images for upstreams that only take inline data."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import aiohttp

from crossroads import ir
from crossroads.transport import Transport

FETCH_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)


class ImageFetcher:
    def __init__(self, transport: Transport, max_bytes: int) -> None:
        self.transport = transport
        self.max_bytes = max_bytes

    async def inline(self, request: ir.Request) -> None:
        """Fetch every http(s) image in the request and store it as base64."""
        remote = [p for p in _image_parts(request) if p.data is None and p.url
                  and p.url.startswith(("http://", "https://"))]
        if remote:
            await asyncio.gather(*(self._fetch_into(part) for part in remote))

    async def _fetch_into(self, part: ir.ImagePart) -> None:
        url = part.url or ""
        try:
            async with self.transport.session.get(url, timeout=FETCH_TIMEOUT) as response:
                if response.status != 200:
                    raise ir.bad_request(f"could not fetch image {url}: HTTP {response.status}")
                declared = response.content_length
                if declared is not None and declared > self.max_bytes:
                    raise ir.bad_request(f"image {url} is {declared} bytes; the limit is {self.max_bytes}")
                data = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise ir.bad_request(f"image {url} is larger than the limit of {self.max_bytes} bytes")
                media_type = response.headers.get("content-type", "").split(";")[0].strip()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ir.bad_request(f"could not fetch image {url}: {type(exc).__name__}") from None
        if not media_type.startswith("image/"):
            media_type = part.media_type or _sniff(bytes(data[:16]))
        part.media_type = media_type
        part.data = base64.b64encode(data).decode("ascii")
        part.url = None


def _image_parts(request: ir.Request) -> Iterator[ir.ImagePart]:
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ir.ImagePart):
                yield part
            elif isinstance(part, ir.ToolResultPart):
                for inner in part.content:
                    if isinstance(inner, ir.ImagePart):
                        yield inner


_SIGNATURES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
               (b"RIFF", "image/webp"))


def _sniff(head: bytes) -> str:
    for magic, media_type in _SIGNATURES:
        if head.startswith(magic):
            return media_type
    return "application/octet-stream"
