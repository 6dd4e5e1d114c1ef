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


async def iter_sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str | None, str]]:
    """Yield (event, data) pairs from an SSE body as they arrive."""
    event: str | None = None
    data: list[str] = []
    content = response.content
    while True:
        raw = await content.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
        # comments (":") and other fields (id, retry) are ignored
    if data:
        yield event, "\n".join(data)
