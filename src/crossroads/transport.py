"""The one shared upstream HTTP client and the SSE reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from crossroads.config import Timeouts


class Transport:
    """One pooled aiohttp session for every upstream call."""

    def __init__(self, timeouts: Timeouts, proxy_url: str | None = None) -> None:
        self.timeouts = timeouts
        self.proxy_url = proxy_url
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self.timeouts.connect,
                    sock_read=self.timeouts.idle,
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str],
                   proxy_url: str | None = None, timeouts: Timeouts | None = None) -> aiohttp.ClientResponse:
        """POST and wait for the response headers (at most ``first_byte``
        seconds); body reads then time out after ``idle`` seconds of silence."""
        proxy = proxy_url or self.proxy_url
        if proxy in ("direct", "none"):
            proxy = None
        limits = timeouts or self.timeouts
        per_request = None if timeouts is None else aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect, sock_read=limits.idle)
        async with asyncio.timeout(limits.first_byte):
            if per_request is None:
                return await self.session.post(url, data=body, headers=headers, proxy=proxy)
            return await self.session.post(url, data=body, headers=headers, proxy=proxy, timeout=per_request)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SSEParser:
    """Incremental server-sent-events parser: bytes in, (event, data) out."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        data = self._buffer + chunk if self._buffer else chunk
        lines = data.split(b"\n")
        self._buffer = lines.pop()  # an unfinished line waits for the next chunk
        events: list[tuple[str | None, str]] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[tuple[str | None, str]]:
        events: list[tuple[str | None, str]] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[tuple[str | None, str]]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._data:
                events.append((self._event, "\n".join(self._data)))
            self._event, self._data = None, []
        elif line.startswith(b"data:"):
            self._data.append(line[6:].decode() if line.startswith(b"data: ") else line[5:].decode())
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode()
        # comments (":") and other fields (id, retry) are ignored


async def iter_sse_batches(response: aiohttp.ClientResponse) -> AsyncIterator[list[tuple[str | None, str]]]:
    """The events of an SSE body, one list per network read (so a consumer can
    answer each read with one write)."""
    parser = SSEParser()
    async for chunk in response.content.iter_any():
        events = parser.feed(chunk)
        if events:
            yield events
    tail = parser.close()
    if tail:
        yield tail
