"""The lean upstream HTTP client (crossroads.httpclient) against a raw
loopback server that answers exactly the bytes each test scripts: framing,
keep-alive, deadlines, broken connections, back-pressure."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from crossroads import httpclient
from crossroads.httpclient import Client
from tests.core.test_dropin import _self_signed

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Reads one request head (and its content-length body) per turn and runs the script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                await self.script(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def call(client: Client, url: str, first_byte: float = 5, idle: float = 5,
               headers: dict[str, str] | None = None) -> httpclient.Response:
    return await client.request("POST", url, b'{"a":1}', headers or {"content-type": "application/json"},
                                5, first_byte, idle)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def test_length_framed_bodies_reuse_one_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b'{"ok":true}', "content-type: application/json", "x-a: 1", "x-a: 2"))

    async def test() -> None:
        client = Client()
        async with RawServer(script) as server:
            for _ in range(3):
                response = await call(client, server.url, headers={"Authorization": "Bearer k", "x-request-id": "r"})
                assert response.status == 200 and await response.read() == b'{"ok":true}'
                assert response.headers.get("X-A") == "1" and response.headers.getall("x-a") == ["1", "2"]
                assert ("x-a", "2") in response.headers.items()
                response.release()
            assert server.connections == 1
            assert client.connections() == (0, 1)
            request = server.requests[0]
            assert request.startswith(b"POST /v1/x HTTP/1.1\r\n")
            assert b"Authorization: Bearer k\r\n" in request and b"content-length: 7\r\n" in request
            assert request.endswith(b'\r\n\r\n{"a":1}') and b"accept-encoding" not in request.lower()
        await client.close()

    run(test)


def test_chunked_stream_arrives_piece_by_piece() -> None:
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"7\r\ndata: 1\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"8;ext=1\r\ndata: 22\r\n" + b"0\r\nx-trailer: t\r\n\r\n")

    async def test() -> None:
        client = Client()
        async with RawServer(script) as server:
            response = await call(client, server.url)
            pieces = response.content.iter_any()
            assert await pieces.__anext__() == b"data: 1"  # before the stream has ended
            release.set()
            assert [p async for p in pieces] == [b"data: 22"]
            assert client.connections() == (0, 1)  # read to its end: back in the pool
        await client.close()

    run(test)


def test_a_body_that_ends_with_the_connection_and_gzip() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-encoding: gzip\r\n\r\n" + gzip.compress(b"x" * 5000))
        await writer.drain()
        writer.close()

    async def test() -> None:
        client = Client()
        async with RawServer(script) as server:
            response = await call(client, server.url)
            assert await response.read() == b"x" * 5000
            response.release()
            assert client.connections() == (0, 0)  # ended by closing: nothing to reuse
        await client.close()

    run(test)


def test_first_byte_and_idle_deadlines() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(10)

    async def test() -> None:
        client = Client()
        async with RawServer(silent) as server:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await call(client, server.url, first_byte=0.3)
            assert 0.25 < time.monotonic() - started < 0.3 + 3 * httpclient.SWEEP
        async with RawServer(stalls) as server:
            response = await call(client, server.url, idle=0.3)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await response.read()
            assert time.monotonic() - started < 0.3 + 3 * httpclient.SWEEP
            response.release()
        assert client.connections() == (0, 0)
        await client.close()

    run(test)


def test_broken_and_refused_connections_raise_aiohttp_errors() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")
        await writer.drain()
        writer.close()

    async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def test() -> None:
        client = Client()
        async with RawServer(cut) as server:
            response = await call(client, server.url)
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        async with RawServer(hangs_up) as server:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await call(client, server.url)
            url = server.url
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(client, url)  # nothing listens there any more
        with pytest.raises(ValueError):
            await call(client, url, headers={"x-bad": "a\r\nx-injected: 1"})
        assert client.connections() == (0, 0)
        await client.close()

    run(test)


def test_unread_and_closing_answers_are_not_reused_and_idle_ones_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        close = len(server.requests) == 2
        writer.write(answer(b"0123456789", *(["connection: close"] if close else [])))
        await writer.drain()
        if close:
            writer.close()

    async def test() -> None:
        nonlocal server
        client = Client()
        async with RawServer(script) as server:
            response = await call(client, server.url)
            response.release()  # not read: its connection cannot serve another request
            response = await call(client, server.url)  # says "connection: close"
            assert await response.read() == b"0123456789"
            response.release()
            assert server.connections == 2 and client.connections() == (0, 0)
            response = await call(client, server.url)
            await response.read()
            response.release()
            monkeypatch.setattr(httpclient, "IDLE_REUSE", 0.0)  # as if it had idled too long
            response = await call(client, server.url)
            await response.read()
            response.release()
            assert server.connections == 4
        await client.close()

    server: RawServer
    run(test)


def test_a_reader_that_falls_behind_pauses_the_socket() -> None:
    sent = 0

    async def floods(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 50000000\r\n\r\n")
        block = b"y" * 65536
        try:
            while sent < 50_000_000:
                writer.write(block)
                sent += len(block)
                await writer.drain()
        except ConnectionError:
            return

    async def test() -> None:
        client = Client()
        async with RawServer(floods) as server:
            response = await call(client, server.url)
            pieces: AsyncIterator[bytes] = response.content.iter_any()
            await pieces.__anext__()
            await asyncio.sleep(0.5)  # nobody reads
            buffered = len(response._connection.buffer)
            assert buffered <= httpclient.HIGH_WATER + 256 * 1024  # at most one socket read past the mark
            assert sent < 10_000_000  # the server was held back, not drained into memory
            response.close()
        await client.close()

    run(test)


def test_https_verifies_the_server_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b"secret"))

    async def serve(trusted: bool) -> None:
        client = Client()
        server = await asyncio.start_server(RawServer(script)._serve, "127.0.0.1", 0, ssl=tls)
        url = f"https://localhost:{server.sockets[0].getsockname()[1]}/v1/x"
        try:
            if trusted:
                response = await call(client, url)
                assert response.status == 200 and await response.read() == b"secret"
                response.release()
            else:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await call(client, url)
        finally:
            server.close()
            await client.close()

    run(lambda: serve(trusted=False))  # a certificate nobody vouches for
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    run(lambda: serve(trusted=True))


def test_chunked_bodies_split_anywhere_and_bad_sizes_refused() -> None:
    body = b"7\r\ndata: 1\r\n8;x=y\r\ndata: 22\r\n0\r\nt: 1\r\n\r\n"

    def response() -> tuple[httpclient._Connection, httpclient.Response]:
        connection = httpclient._Connection("http://127.0.0.1:1")
        return connection, httpclient.Response(Client(), connection, "u", 200, "OK",
                                               httpclient.Headers([("transfer-encoding", "chunked")]), 5, "POST")

    for cut in range(1, len(body)):
        connection, answer_ = response()
        out = b""
        for piece in (body[:cut], body[cut:]):
            connection.buffer += piece
            out += answer_._take()
        assert out == b"data: 1data: 22" and answer_._done and not connection.buffer, cut
    for bad in (b"-5\r\nabc", b"zz\r\nabc"):
        connection, answer_ = response()
        connection.buffer += bad
        with pytest.raises(aiohttp.ClientPayloadError):
            answer_._take()


def test_a_kept_alive_connection_closed_under_the_request_is_retried_once() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(server.requests) == 2:  # the server drops the idle connection as the request arrives
            writer.close()
            return
        writer.write(answer(b"ok"))

    async def test() -> None:
        nonlocal server
        client = Client()
        async with RawServer(script) as server:
            for _ in range(2):
                response = await call(client, server.url)
                assert await response.read() == b"ok"
                response.release()
            assert server.connections == 2 and len(server.requests) == 3  # sent again, on a new connection
        async with RawServer(script) as server:
            server.requests.append(b"")  # a new connection closed at once: nothing to retry
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await call(client, server.url)
            assert server.connections == 1
        await client.close()

    server: RawServer
    run(test)
