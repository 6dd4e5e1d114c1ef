"""A lean HTTP/1.1 client for the calls the pipeline makes upstream.

Why not aiohttp here: per request, aiohttp's client builds a request object,
a multidict of headers, a payload object, a writer and a timer, and parses
the answer through several layers; measured in bench/hotpath.py it is the
largest single cost of a proxied request. This client writes the request in
one ``write`` and reads the answer straight from the socket's buffer, for
about a fifth of the CPU. aiohttp stays for everything else (proxies, OAuth,
side services), and the answers here behave like aiohttp's as far as the
pipeline reads them (``status``, ``headers``, ``content.iter_any()``,
``read``, ``release``, ``close``), raising aiohttp's exception types.

Guarantees:
- connections are kept alive and reused per origin (most recent first); one
  idle longer than ``IDLE_REUSE`` seconds, closed by its server or not read to
  its end is never reused; a reused connection that the server closes as the
  request goes out, answering nothing, is replaced once by a new one (the
  server never took the request);
- no timer per request: a sweep ten times a second fails any call past its
  deadline (``first_byte`` for the response head, ``idle`` between reads), so
  deadlines are kept to within ``SWEEP`` seconds;
- a body that the reader does not keep up with stops the socket being read
  (``HIGH_WATER``), so a slow client never makes the router buffer a stream;
- bodies come as sent (no ``Accept-Encoding`` is asked for), decoded from
  gzip or deflate if a server compresses anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from urllib.parse import urlsplit

import aiohttp

IDLE_REUSE = 15.0  # seconds an idle connection is trusted to still be open
SWEEP = 0.1
HIGH_WATER = 256 * 1024  # buffered bytes at which reading pauses ...
LOW_WATER = 64 * 1024  # ... and below which it resumes
MAX_HEAD = 64 * 1024
MAX_TARGETS = 1024  # parsed URLs kept


class Headers(Mapping[str, str]):
    """A response's headers: names lower-case, the first of repeated ones
    for ``get``, every pair for ``items``."""

    __slots__ = ("_first", "_pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        first: dict[str, str] = {}
        for name, value in pairs:
            first.setdefault(name, value)
        self._first = first

    def __getitem__(self, name: str) -> str:
        try:
            return self._first[name]
        except KeyError:
            return self._first[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = self._first.get(name)
        return value if value is not None else self._first.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return name in self._first or (isinstance(name, str) and name.lower() in self._first)

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return self._pairs

    def getall(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._pairs if key == name]


class _Connection(asyncio.Protocol):
    __slots__ = ("buffer", "closed", "deadline", "idle_since", "origin", "paused", "transport", "waiter")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.deadline = 0.0
        self.closed = False
        self.paused = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is not a subclass)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        return False  # the transport closes, and connection_lost says so

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def more(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for more bytes; False once the connection has closed."""
        if self.closed:
            return False
        if self.paused and len(self.buffer) < LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        self.deadline = time.monotonic() + seconds
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self.waiter = None
        return True

    def expire(self, now: float) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done() and now > self.deadline:
            waiter.set_exception(TimeoutError())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer whose head has arrived; the body is read from the connection as it comes."""

    __slots__ = ("_chunk_left", "_client", "_connection", "_decoder", "_done", "_framing", "_idle", "_left",
                 "_released", "_reusable", "headers", "reason", "status", "url")

    def __init__(self, client: Client, connection: _Connection, url: str, status: int, reason: str,
                 headers: Headers, idle: float, method: str) -> None:
        self._client, self._connection, self.url = client, connection, url
        self.status, self.reason, self.headers = status, reason, headers
        self._idle = idle
        self._released = False
        self._reusable = (headers.get("connection") or "").lower() != "close"
        self._decoder: zlib._Decompress | None = None
        encoding = headers.get("content-encoding") or ""
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by the header
        elif encoding not in ("", "identity"):
            connection.close()
            raise aiohttp.ClientPayloadError(f"the upstream sent a body encoded as {encoding!r}")
        length = headers.get("content-length")
        self._left = 0
        self._chunk_left = -1  # chunked: bytes left of the current chunk (-1: a size line comes next)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._framing = "none"
        elif "chunked" in (headers.get("transfer-encoding") or "").lower():
            self._framing = "chunked"
        elif length is not None and length.isdigit():
            self._framing, self._left = "length", int(length)
        else:
            self._framing, self._reusable = "close", False
        self._done = self._framing == "none" or (self._framing == "length" and self._left == 0)
        if self._done:
            self.release()

    @property
    def content(self) -> Response:
        """aiohttp's ``response.content``: here, the response itself."""
        return self

    async def iter_any(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._next()
            if not chunk:
                return
            yield chunk

    async def read(self) -> bytes:
        parts: list[bytes] = []
        while True:
            chunk = await self._next()
            if not chunk:
                return b"".join(parts) if len(parts) != 1 else parts[0]
            parts.append(chunk)

    async def _next(self) -> bytes:
        """The next piece of the body, b"" at its end."""
        while not self._done:
            data = self._take()
            if data:
                if self._decoder is not None:
                    data = self._decoder.decompress(data)
                    if not data:
                        continue
                return data
            if self._done:
                break
            if not await self._connection.more(self._idle):
                if self._framing == "close":
                    self._done = True
                    break
                raise self._broken("the upstream closed the connection mid-body")
        if self._decoder is not None:
            tail, self._decoder = self._decoder.flush(), None
            if tail:
                return tail
        return b""

    def _take(self) -> bytes:
        buffer = self._connection.buffer
        if not buffer:
            return b""
        framing = self._framing
        if framing == "length":
            data = bytes(buffer[:self._left])
            del buffer[:len(data)]
            self._left -= len(data)
            if not self._left:
                self._finish()
            return data
        if framing == "close":
            data = bytes(buffer)
            buffer.clear()
            return data
        return self._take_chunks(buffer)

    def _take_chunks(self, buffer: bytearray) -> bytes:
        """De-chunk what the buffer holds: one pass over a snapshot, one cut of the buffer."""
        data = bytes(buffer)
        size = len(data)
        position = 0
        left = self._chunk_left
        out = []
        while position < size:
            if left > 0:
                piece = data[position:position + left]
                position += len(piece)
                left -= len(piece)
                out.append(piece)
            elif left == 0:  # the CRLF after a chunk's data
                if size - position < 2:
                    break
                position += 2
                left = -1
            else:
                end = data.find(b"\r\n", position)
                if end < 0:
                    if size - position > MAX_HEAD:
                        raise self._broken("malformed chunked body from the upstream")
                    break
                try:
                    length = int(data[position:end], 16)
                except ValueError:  # a chunk extension (";name=value"), or garbage
                    length = self._chunk_size(data[position:end])
                if length < 0:
                    raise self._broken("malformed chunked body from the upstream")
                if length == 0:  # the last chunk; trailers end at a blank line
                    blank = data.find(b"\r\n\r\n", end)
                    if blank < 0:
                        if size - end > MAX_HEAD:
                            raise self._broken("endless trailers from the upstream")
                        break
                    position = blank + 4
                    del buffer[:position]
                    self._chunk_left = -1
                    self._finish()
                    return b"".join(out)
                start = end + 2
                stop = start + length
                if stop + 2 <= size:  # the whole chunk and its CRLF are here: one step
                    out.append(data[start:stop])
                    position = stop + 2
                else:
                    position, left = start, length
        del buffer[:position]
        self._chunk_left = left
        return b"".join(out) if len(out) != 1 else out[0]

    def _broken(self, reason: str) -> aiohttp.ClientPayloadError:
        """The body cannot be read on: the connection goes, and this is the error to raise."""
        self.close()
        return aiohttp.ClientPayloadError(reason)

    def _chunk_size(self, line: bytes) -> int:
        try:
            return int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise self._broken("malformed chunked body from the upstream") from None

    def _finish(self) -> None:
        self._done = True
        self.release()

    def release(self) -> None:
        """Done with the answer: its connection goes back to the pool when the
        body was read to its end, else it is closed. Once only."""
        if self._released:
            return
        connection = self._connection
        if self._done and self._reusable and not connection.closed and not connection.buffer:
            self._released = True
            self._client.put_back(connection)
        else:
            self.close()

    def close(self) -> None:
        if self._released:
            return  # its connection may already serve another request
        self._released = self._done = True
        self._reusable = False
        self._connection.close()
        self._client.forget(self._connection)


def _target(url: str) -> tuple[str, str, int, bool, str]:
    """``(origin, host, port, secure, request target)`` of a URL."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return f"{parts.scheme}://{host}:{port}", host, port, secure, target


def _request_head(method: str, target: str, host: str, port: int, secure: bool, headers: Mapping[str, str],
                  body: bytes | None) -> bytes:
    head = [f"{method} {target} HTTP/1.1\r\n"]
    has_host = False
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"the header {name!r} holds a line break")
        lower = name.lower()
        if lower in ("content-length", "transfer-encoding"):
            continue
        has_host = has_host or lower == "host"
        head.append(f"{name}: {value}\r\n")
    if not has_host:
        default_port = (secure and port == 443) or (not secure and port == 80)
        head.append(f"host: {host if default_port else f'{host}:{port}'}\r\n")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        head.append(f"content-length: {len(body or b'')}\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + (body or b"")


class Client:
    """Keep-alive connections per origin, and the sweep that keeps deadlines."""

    def __init__(self) -> None:
        self._idle: dict[str, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tls: ssl.SSLContext | None = None
        self._targets: dict[str, tuple[str, str, int, bool, str]] = {}  # URL -> where it goes (parsed once)

    def connections(self) -> tuple[int, int]:
        return len(self._busy), sum(len(idle) for idle in self._idle.values())

    async def request(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
                      connect: float, first_byte: float, idle: float) -> Response:
        """Send and wait for the answer's head (at most ``first_byte`` seconds)."""
        where = self._targets.get(url)
        if where is None:
            where = _target(url)
            if len(self._targets) >= MAX_TARGETS:
                self._targets.clear()
            self._targets[url] = where
        origin, host, port, secure, target = where
        raw = _request_head(method, target, host, port, secure, headers, body)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections and the sweep belong to the loop that made them
            self._loop, self._idle, self._busy, self._sweeper = loop, {}, set(), None
        for fresh_only in (False, True):
            connection = await self._connection(origin, host, port, secure, connect, fresh_only)
            reused = connection.idle_since > 0
            self._busy.add(connection)
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = loop.create_task(self._sweep(), name="crossroads-http-deadlines")
            try:
                assert connection.transport is not None
                connection.transport.write(raw)
                status, reason, response_headers = await self._head(connection, first_byte)
                return Response(self, connection, url, status, reason, response_headers, idle, method)
            except aiohttp.ServerDisconnectedError:
                connection.close()
                self.forget(connection)
                if not reused or fresh_only or connection.buffer:
                    raise
                # a kept-alive connection the server closed as the request went out, answering
                # nothing: it never took the request, so it goes once more on a new connection
            except BaseException:
                connection.close()
                self.forget(connection)
                raise
        raise AssertionError("unreachable")

    async def _connection(self, origin: str, host: str, port: int, secure: bool, connect: float,
                          fresh_only: bool = False) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle and not fresh_only:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_REUSE and not connection.buffer:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(origin), host, port, ssl=self._tls_context() if secure else None,
                    server_hostname=host if secure else None)
        except TimeoutError:
            raise
        except ssl.SSLError as exc:
            raise aiohttp.ClientConnectionError(f"TLS with {host}:{port} failed: {exc}") from None
        except OSError as exc:
            raise aiohttp.ClientOSError(exc.errno, f"cannot connect to {host}:{port}: {exc.strerror or exc}") \
                from None
        return protocol

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    @staticmethod
    async def _head(connection: _Connection, first_byte: float) -> tuple[int, str, Headers]:
        buffer = connection.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buffer) > MAX_HEAD:
                raise aiohttp.ClientPayloadError("the upstream's response head is too large")
            if not await connection.more(first_byte):
                raise aiohttp.ServerDisconnectedError()
        text = bytes(buffer[:end]).decode("latin-1")
        del buffer[:end + 4]
        lines = text.split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise aiohttp.ClientConnectionError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
        pairs = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            pairs.append((name.strip().lower(), value.strip()))
        if status_line[0] == "HTTP/1.0" and not any(name == "connection" for name, _ in pairs):
            pairs.append(("connection", "close"))  # HTTP/1.0 keeps nothing alive unless it says so
        status = int(status_line[1])
        if 100 <= status < 200 and status != 101:  # Continue, Early Hints: the real head follows
            return await Client._head(connection, first_byte)
        return status, status_line[2] if len(status_line) > 2 else "", Headers(pairs)

    def put_back(self, connection: _Connection) -> None:
        self._busy.discard(connection)
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)

    def forget(self, connection: _Connection) -> None:
        self._busy.discard(connection)

    async def _sweep(self) -> None:
        while self._busy:
            await asyncio.sleep(SWEEP)
            now = time.monotonic()
            for connection in list(self._busy):
                connection.expire(now)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(BaseException):
                await self._sweeper
        for connection in [*self._busy, *(c for idle in self._idle.values() for c in idle)]:
            connection.close()
        self._busy.clear()
        self._idle.clear()
