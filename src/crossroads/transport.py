"""The one shared upstream HTTP client and the SSE reader."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp

from crossroads.config import Timeouts
from crossroads.httpclient import Client

SOCKS_SCHEMES = ("socks5://", "socks5h://", "socks4://", "socks4a://")


class Body(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class Answer(Protocol):
    """An upstream's answer as the pipeline reads it: aiohttp's, or the lean client's."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> Body: ...

    async def read(self) -> bytes: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class Transport:
    """The pipeline's model calls go through the lean client of
    :mod:`crossroads.httpclient` when no proxy stands in the way; every
    other call (and a model call through a proxy) through one pooled aiohttp
    session (plus one per SOCKS proxy in use, since aiohttp speaks SOCKS only
    through a connector).

    ``proxy-url`` (global or per account) may be http(s):// or socks5(h)://;
    ``direct`` or ``none`` on an account bypasses the global proxy."""

    def __init__(self, timeouts: Timeouts, proxy_url: str | None = None) -> None:
        self.timeouts = timeouts
        self.proxy_url = proxy_url
        self._session: aiohttp.ClientSession | None = None
        self._socks_sessions: dict[str, aiohttp.ClientSession] = {}
        self._session_timeouts = timeouts  # what the open sessions were created with
        self.lean = Client()

    def configure(self, timeouts: Timeouts, proxy_url: str | None) -> None:
        """Settings from a reloaded config; open connections are kept (requests
        pass the new timeouts themselves until the sessions are recreated)."""
        self.timeouts = timeouts
        self.proxy_url = proxy_url

    def _new_session(self, connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._session_timeouts.connect,
                                          sock_read=self._session_timeouts.idle),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    def connections(self) -> tuple[int, int] | None:
        """(in use, idle) upstream connections where the connectors tell
        (aiohttp keeps these counts private; None when it changes them)."""
        in_use, idle = self.lean.connections()
        for session in (self._session, *self._socks_sessions.values()):
            if session is None or session.closed:
                continue
            connector = session.connector
            acquired, pooled = getattr(connector, "_acquired", None), getattr(connector, "_conns", None)
            if not isinstance(acquired, set) or not isinstance(pooled, dict):
                return None
            in_use += len(acquired)
            idle += sum(len(entries) for entries in pooled.values())
        return in_use, idle

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._new_session(
                aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True))
        return self._session

    def _socks_session(self, proxy: str) -> aiohttp.ClientSession:
        session = self._socks_sessions.get(proxy)
        if session is None or session.closed:
            from aiohttp_socks import ProxyConnector

            remote_dns = proxy.startswith(("socks5h://", "socks4a://"))  # the proxy resolves host names
            url = proxy.replace("socks5h://", "socks5://", 1).replace("socks4a://", "socks4://", 1)
            connector = ProxyConnector.from_url(url, rdns=remote_dns, limit=0)
            session = self._socks_sessions[proxy] = self._new_session(connector)
        return session

    def _proxy(self, proxy_url: str | None) -> str | None:
        """The account's proxy, else the global one; ``direct``/``none`` on an account: no proxy."""
        proxy = proxy_url or self.proxy_url
        return None if proxy in ("direct", "none") else proxy

    async def call(self, url: str, body: bytes, headers: dict[str, str], proxy_url: str | None = None,
                   timeouts: Timeouts | None = None) -> Answer:
        """A model call: ``post``, on the lean client unless a proxy is in the way
        (its answer reads the same as far as the pipeline reads answers)."""
        if self._proxy(proxy_url) is None and url.startswith(("http://", "https://")):
            limits = timeouts or self.timeouts
            return await self.lean.request("POST", url, body, headers, limits.connect, limits.first_byte,
                                           limits.idle)
        return await self.request("POST", url, body, headers, proxy_url, timeouts)

    async def post(self, url: str, body: bytes, headers: dict[str, str],
                   proxy_url: str | None = None, timeouts: Timeouts | None = None) -> aiohttp.ClientResponse:
        """POST and wait for the response headers (at most ``first_byte``
        seconds); body reads then time out after ``idle`` seconds of silence."""
        return await self.request("POST", url, body, headers, proxy_url, timeouts)

    async def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
                      proxy_url: str | None = None, timeouts: Timeouts | None = None) -> aiohttp.ClientResponse:
        """Any method, with ``post``'s proxy and timeout rules."""
        proxy = self._proxy(proxy_url)
        session = self.session
        if proxy is not None and proxy.startswith(SOCKS_SCHEMES):
            session, proxy = self._socks_session(proxy), None
        limits = timeouts or self.timeouts
        same = limits is self._session_timeouts or limits == self._session_timeouts
        per_request = None if same else aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect, sock_read=limits.idle)
        try:
            async with asyncio.timeout(limits.first_byte):
                if per_request is None:
                    return await session.request(method, url, data=body, headers=headers, proxy=proxy)
                return await session.request(method, url, data=body, headers=headers, proxy=proxy,
                                             timeout=per_request)
        except (TimeoutError, aiohttp.ClientError):
            raise
        except Exception as exc:  # SOCKS errors (python_socks) are not aiohttp's
            if type(exc).__module__.startswith(("python_socks", "aiohttp_socks")):
                raise aiohttp.ClientConnectionError(f"proxy failed: {exc}") from exc
            raise

    async def close(self) -> None:
        await self.lean.close()
        for session in (self._session, *self._socks_sessions.values()):
            if session is not None:
                await session.close()
        self._session = None
        self._socks_sessions.clear()


# The usual shape of an event, "data: X" with at most an "event: N" line before it: one
# C-level scan of a read finds them all. Any other shape in the read (several data lines,
# an id line between name and data) leaves a "data:" or "event:" unaccounted for, and the
# read is then parsed block by block.
_COMMON_EVENT = re.compile(rb"^(?:event:([^\n]*)\n)?data: ?([^\n]*)\n\n", re.MULTILINE)


class SSEParser:
    """Incremental server-sent-events parser: bytes in, (event, data) out."""

    __slots__ = ("_buffer", "_names")

    def __init__(self) -> None:
        self._buffer = b""  # the text of events not yet complete
        self._names: dict[bytes, str] = {}  # an event name line's text -> the name

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        data = self._buffer + chunk if self._buffer else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")  # a CR left at the end pairs with the next chunk's LF
        end = data.rfind(b"\n\n")
        if end < 0:
            self._buffer = data
            return []
        self._buffer = data[end + 2:]
        events: list[tuple[str | None, bytes]] = []
        if data.find(b"\n\n") == end:  # one event (a read at a time of little load)
            _block(data[:end], events)
            return events
        common = self._common(data, end + 2)
        if common is not None:
            return common
        for block in data[:end].split(b"\n\n"):  # an event a block: only whole events are parsed
            _block(block, events)
        return events

    def _common(self, data: bytes, end: int) -> list[tuple[str | None, bytes]] | None:
        """The events of ``data[:end]`` when every one has the usual shape, else None."""
        found = _COMMON_EVENT.findall(data, 0, end)
        if data.count(b"data:", 0, end) != len(found):
            return None
        named = data.count(b"event:", 0, end)
        if not named:
            return [(None, payload) for _, payload in found]
        names = self._names
        events: list[tuple[str | None, bytes]] = []
        for line, payload in found:
            if not line:
                events.append((None, payload))
                continue
            named -= 1
            name = names.get(line)
            if name is None:
                name = names[line] = line.strip().decode()
            events.append((name, payload))
        return events if not named else None

    def close(self) -> list[tuple[str | None, bytes]]:
        events: list[tuple[str | None, bytes]] = []
        tail, self._buffer = self._buffer.rstrip(b"\r\n"), b""
        if tail:
            _event(tail, events)
        return events


def _block(block: bytes, events: list[tuple[str | None, bytes]]) -> None:
    # the usual shapes, "data: X" and "event: N\ndata: X", without a line-by-line look
    if block.startswith(b"data: ") and b"\n" not in block:
        events.append((None, block[6:]))
        return
    if block.startswith(b"event: "):
        line_end = block.find(b"\n")
        if line_end > 0 and block.startswith(b"data: ", line_end + 1) and block.find(b"\n", line_end + 1) < 0:
            events.append((block[7:line_end].strip().decode(), block[line_end + 7:]))
            return
    _event(block, events)


def _event(block: bytes, events: list[tuple[str | None, bytes]]) -> None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
        # comments (":") and other fields (id, retry) are ignored
    if data:  # data stays bytes: decoders hand it to orjson.loads as it is
        events.append((name, data[0] if len(data) == 1 else b"\n".join(data)))


async def iter_sse_batches(response: Answer) -> AsyncIterator[list[tuple[str | None, bytes]]]:
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
