"""Inlining remote images for upstreams that only take inline data.

Fetching a URL a client chose is a server-side request on the client's
behalf, so it is fenced:
- only http(s), only public addresses: loopback, private, link-local,
  unique-local, shared (CGNAT), multicast, unspecified and reserved addresses
  (cloud metadata endpoints among them) are refused, whether named by a
  literal address (in any spelling the resolver accepts) or by a host name,
  unless ``image-fetch.allowed-networks`` lists them;
- the address is checked by the resolver the connection itself uses, so a
  name cannot resolve to a public address for the check and a private one for
  the connection; redirects are followed by hand, at most three, each hop
  checked the same way;
- at most ``max-images`` per request, fetched a few at a time, each bounded in
  bytes and time; ``allowed-hosts`` narrows fetching to named hosts;
- the caller learns only that an image could not be fetched, never why (no
  status codes or connection errors from inside the network); the operator's
  log has the reason.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from crossroads import ir
from crossroads.config import ImageFetchPolicy

log = logging.getLogger("crossroads.images")

MAX_REDIRECTS = 3
PARALLEL_FETCHES = 4  # per request
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL is not one this router fetches (the reason stays in the log)."""


class AddressGuard:
    def __init__(self, policy: ImageFetchPolicy) -> None:
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in policy.allowed_networks]
        self.allowed_hosts = policy.allowed_hosts

    def check_url(self, url: URL) -> None:
        if url.scheme not in ("http", "https"):
            raise Refused(f"scheme {url.scheme!r}")
        host = (url.raw_host or "").lower().rstrip(".")
        if not host:
            raise Refused("no host")
        if self.allowed_hosts and not any(fnmatch.fnmatchcase(host, p) for p in self.allowed_hosts):
            raise Refused(f"host {host} is not in image-fetch.allowed-hosts")
        literal = _literal_address(host)
        if literal is not None:
            self.check_address(literal)

    def check_address(self, address: IPAddress) -> None:
        if any(address in network for network in self.allowed_networks):
            return
        for candidate in _embedded(address):
            if not candidate.is_global or candidate.is_multicast:
                raise Refused(f"address {address} is not public")


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _embedded(address: IPAddress) -> Iterator[IPAddress]:
    """The address and any IPv4 address it carries (mapped, 6to4, NAT64)."""
    yield address
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            yield address.ipv4_mapped
        if address.sixtofour is not None:
            yield address.sixtofour
        if address in _NAT64:
            yield ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


class _GuardedResolver(AbstractResolver):
    """Resolves as usual, then refuses the whole name if any of its addresses
    is not public: the connection can only go where the check looked."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = _literal_address(result["host"])
            if address is None:
                raise Refused(f"{host} resolved to {result['host']!r}")
            self._guard.check_address(address)
        return results

    async def close(self) -> None:
        await self._inner.close()


class ImageFetcher:
    """Owned by the runtime; one small connection pool of its own, so the
    guarded resolver never touches upstream traffic."""

    def __init__(self, policy: ImageFetchPolicy) -> None:
        self.policy = policy
        self._guard = AddressGuard(policy)
        self._session: aiohttp.ClientSession | None = None

    def configure(self, policy: ImageFetchPolicy) -> None:
        if policy != self.policy:
            self.policy = policy
            self._guard = AddressGuard(policy)
            if self._session is not None:  # the resolver holds the old guard
                session, self._session = self._session, None
                asyncio.get_running_loop().create_task(session.close())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=_GuardedResolver(self._guard), limit=32,
                                             use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                                  headers={"accept": "image/*"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def inline(self, request: ir.Request) -> None:
        """Fetch every http(s) image in the request and store it as base64."""
        remote = [p for p in _image_parts(request) if p.data is None and p.url
                  and p.url.startswith(("http://", "https://"))]
        if not remote:
            return
        if len(remote) > self.policy.max_images:
            raise ir.bad_request(f"the request links {len(remote)} images by URL; at most "
                                 f"{self.policy.max_images} are fetched for this model (send the others inline)")
        gate = asyncio.Semaphore(PARALLEL_FETCHES)

        async def one(number: int, part: ir.ImagePart) -> None:
            async with gate:
                await self._fetch_into(number, part)

        await asyncio.gather(*(one(n, part) for n, part in enumerate(remote, 1)))

    async def _fetch_into(self, number: int, part: ir.ImagePart) -> None:
        url = part.url or ""
        try:
            async with asyncio.timeout(self.policy.timeout):
                data, media_type = await self._fetch(URL(url, encoded=False))
        except ir.Error:
            raise
        except (Refused, aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            log.info("image %d of a request not fetched (%s): %s", number, url[:200], exc or type(exc).__name__)
            raise ir.bad_request(f"image {number} ({_short(url)}) could not be fetched: this router fetches "
                                 "only public http(s) images that answer with image data; send it inline "
                                 "(base64) instead") from None
        if not media_type.startswith("image/"):
            media_type = part.media_type or _sniff(bytes(data[:16]))
        part.media_type = media_type
        part.data = base64.b64encode(data).decode("ascii")
        part.url = None

    async def _fetch(self, url: URL) -> tuple[bytearray, str]:
        for _ in range(MAX_REDIRECTS + 1):
            self._guard.check_url(url)
            async with self._client().get(url, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                    url = url.join(URL(response.headers["location"]))
                    continue
                if response.status != 200:
                    raise Refused(f"HTTP {response.status}")
                return await self._body(response), _media_type(response.headers)
        raise Refused("too many redirects")

    async def _body(self, response: aiohttp.ClientResponse) -> bytearray:
        limit = self.policy.max_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            raise ir.bad_request(f"an image in the request is {declared} bytes; the limit is {limit}")
        data = bytearray()
        async for chunk in response.content.iter_chunked(65536):
            data += chunk
            if len(data) > limit:
                raise ir.bad_request(f"an image in the request is larger than the limit of {limit} bytes")
        return data


def _media_type(headers: Any) -> str:
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."


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
