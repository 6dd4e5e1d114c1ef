"""Load generators: a sequential keep-alive client for c=1 (latency, TTFT) and
wrk (or, without it, aiohttp) for many connections at once."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from scenarios import HOST, Target

# ---------------------------------------------------------------------------- c=1 client


@dataclass(slots=True)
class Exchange:
    status: int
    body: bytes
    total_s: float
    first_data_s: float | None  # time to the first SSE "data:" bytes, if any


class KeepAliveClient:
    """A blocking HTTP/1.1 client on one keep-alive socket, cheap enough that
    its own cost hardly shows in the numbers. Understands Content-Length,
    chunked bodies and close-delimited bodies."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._t0 = 0.0
        self._first_data: float | None = None
        self._in_body = False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def _recv(self) -> None:
        assert self._sock is not None
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self._buf += data
        if self._in_body:
            self._note_first_data()

    def _note_first_data(self) -> None:
        if self._first_data is None and b"data:" in self._buf:
            self._first_data = time.perf_counter() - self._t0

    def exchange(self, raw_request: bytes) -> Exchange:
        sock = self._sock or self._connect()
        self._first_data, self._in_body = None, False
        self._t0 = time.perf_counter()
        sock.sendall(raw_request)
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head = self._buf[:end].decode("latin-1").split("\r\n")
        self._buf = self._buf[end + 4:]
        status = int(head[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        self._in_body = True  # from here on every read looks for the first "data:"
        self._note_first_data()
        if "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self._read_until_close()
        total = time.perf_counter() - self._t0
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Exchange(status, body, total, self._first_data)

    def _read_exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._recv()
        body, self._buf = self._buf[:size], self._buf[size:]
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            while (end := self._buf.find(b"\r\n")) < 0:
                self._recv()
            size = int(self._buf[:end].split(b";", 1)[0], 16)
            if size == 0:
                while (trailer_end := self._buf.find(b"\r\n\r\n", end)) < 0:
                    self._recv()
                self._buf = self._buf[trailer_end + 4:]
                return b"".join(parts)
            while len(self._buf) < end + 2 + size + 2:
                self._recv()
            parts.append(self._buf[end + 2:end + 2 + size])
            self._buf = self._buf[end + 2 + size + 2:]

    def _read_until_close(self) -> bytes:
        with contextlib.suppress(ConnectionError):
            while True:
                self._recv()
        body, self._buf = self._buf, b""
        self.close()
        return body


# ---------------------------------------------------------------------------- statistics


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50_ms": percentile(ordered, 0.50) * 1e3, "p90_ms": percentile(ordered, 0.90) * 1e3,
            "p99_ms": percentile(ordered, 0.99) * 1e3, "mean_ms": statistics.fmean(ordered) * 1e3}


# ---------------------------------------------------------------------------- measurements


class TargetFailed(Exception):
    pass


def check_reply(target: Target, exchange: Exchange) -> None:
    missing = [e.decode() for e in target.expect if e not in exchange.body]
    if exchange.status != 200 or missing:
        snippet = exchange.body[:300].decode("utf-8", "replace")
        raise TargetFailed(f"HTTP {exchange.status}, missing {missing}: {snippet}")


def validate(target: Target) -> int:
    """One request, checked for status and content; returns the reply size."""
    client = KeepAliveClient(target.port)
    try:
        exchange = client.exchange(target.raw_request())
    except OSError as exc:
        raise TargetFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    check_reply(target, exchange)
    return len(exchange.body)


@dataclass(slots=True)
class Samples:
    """Concurrency-1 observations for one target, gathered over several slices."""

    totals: list[float] = field(default_factory=list)
    first_data: list[float] = field(default_factory=list)
    non_200: int = 0
    busy_s: float = 0.0  # time spent on this target's requests, for requests/s

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {"method": "sequential keep-alive socket client, interleaved slices",
                                  "requests": len(self.totals), "seconds": round(self.busy_s, 3),
                                  "rps": len(self.totals) / self.busy_s if self.busy_s else 0.0,
                                  "non_200": self.non_200, **latency_summary(self.totals)}
        if self.first_data:
            result["ttft"] = latency_summary(self.first_data)
        return result


def run_slice(client: KeepAliveClient, raw: bytes, samples: Samples, seconds: float, max_requests: int) -> None:
    """Back-to-back requests on one keep-alive connection for a bounded time."""
    started = time.perf_counter()
    deadline = started + seconds
    for _ in range(max_requests):
        if time.perf_counter() >= deadline:
            break
        exchange = client.exchange(raw)
        samples.non_200 += exchange.status != 200
        samples.totals.append(exchange.total_s)
        if exchange.first_data_s is not None:
            samples.first_data.append(exchange.first_data_s)
    samples.busy_s += time.perf_counter() - started


def sequential(targets: list[Target], seconds: float, max_requests: int,
               slice_s: float = 0.25) -> dict[str, Samples]:
    """Concurrency 1 for several targets, alternating short slices (forward,
    then backward) so that a slow spell of a shared machine hits every target
    alike instead of skewing whichever ran during it."""
    clients = {t.key: KeepAliveClient(t.port) for t in targets}
    samples = {t.key: Samples() for t in targets}
    rounds = max(1, round(seconds / slice_s))
    per_slice = max(1, max_requests // rounds)
    try:
        for number in range(rounds):
            for target in targets if number % 2 == 0 else targets[::-1]:
                run_slice(clients[target.key], target.raw_request(), samples[target.key], slice_s, per_slice)
    finally:
        for client in clients.values():
            client.close()
    return samples


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"connect\\":%d,\\"read\\":%d," ..
    "\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d," ..
    "\\"mean_us\\":%f,\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def wrk_script(target: Target) -> str:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers().items())
    return WRK_SCRIPT.format(body=target.body.decode(), headers=headers)


def run_wrk(target: Target, connections: int, seconds: int, workdir: Path, pin: list[str]) -> dict[str, Any]:
    script = workdir / f"wrk-{target.port}-{abs(hash(target.body))}.lua"
    script.write_text(wrk_script(target))
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
               target.url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise TargetFailed(f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout[-300:]}")
    raw = orjson.loads(line.removeprefix("BENCHJSON "))
    duration = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    return {"method": f"wrk -t1 -c{connections}", "requests": raw["requests"], "seconds": round(duration, 3),
            "rps": raw["requests"] / duration, "p50_ms": raw["p50_us"] / 1e3, "p90_ms": raw["p90_us"] / 1e3,
            "p99_ms": raw["p99_us"] / 1e3, "mean_ms": raw["mean_us"] / 1e3, "errors": errors}


async def _aiohttp_load(target: Target, connections: int, seconds: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(target.url, data=target.body, headers=target.headers()) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), seconds + 30)
        elapsed = time.perf_counter() - started
    return {"method": f"aiohttp load generator, {connections} connections", "requests": len(latencies),
            "seconds": round(elapsed, 3), "rps": len(latencies) / elapsed,
            "errors": {"status": failures} if failures else {}, **latency_summary(latencies)}


def run_concurrent(target: Target, connections: int, seconds: int, workdir: Path,
                   pin: list[str]) -> dict[str, Any]:
    if shutil.which("wrk"):
        return run_wrk(target, connections, seconds, workdir, pin)
    return asyncio.run(_aiohttp_load(target, connections, seconds))


