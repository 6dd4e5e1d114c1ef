"""S3-compatible object store (AWS S3, MinIO, ...): CLIProxyAPI's objectstore
layout, ``config/config.yaml`` and ``auths/<id>.json`` under an optional prefix.

A lean AWS Signature V4 client on the shared aiohttp stack (path-style URLs,
so any endpoint works) instead of a botocore dependency: five calls are all a
store needs.

Versions live in object metadata (``x-amz-meta-crossroads-version``); a put
with ``expected_version`` re-reads the head and writes with ``If-Match`` on
the ETag it saw (``If-None-Match: *`` to create), so a concurrent writer
makes it fail with :class:`Conflict` rather than being overwritten. Changes
by other replicas are seen by listing every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from crossroads.credentials.base import Change, Conflict, CorruptRecord, Record, StoreError, check_id

log = logging.getLogger("crossroads.credentials")

VERSION_HEADER = "x-amz-meta-crossroads-version"
AUTHS = "auths/"
CONFIG_KEY = "config/config.yaml"
SUFFIX = ".json"
Records = list[Record]


class S3Error(StoreError):
    pass


@dataclass(slots=True)
class S3Reply:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


class S3Client:
    """Signs and sends path-style S3 requests (SigV4)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 timeout: float = 30.0) -> None:
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        self.endpoint = URL(endpoint.rstrip("/"))
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                      body: bytes = b"", headers: Mapping[str, str] | None = None) -> S3Reply:
        canonical_uri = quote(path, safe="/-_.~")
        canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                                   for k, v in sorted((query or {}).items()))
        signed = self._sign(method, canonical_uri, canonical_query, body)
        url = URL(str(self.endpoint) + canonical_uri + ("?" + canonical_query if canonical_query else ""),
                  encoded=True)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.request(method, url, data=body if body else None,
                                             headers={**(headers or {}), **signed}) as response:
                payload = await response.read()
                return S3Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, payload)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise S3Error(f"S3 store unreachable at {self.endpoint}: {exc}") from None

    def _sign(self, method: str, canonical_uri: str, canonical_query: str, body: bytes) -> dict[str, str]:
        now = dt.datetime.now(dt.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = now.strftime("%Y%m%d")
        payload_hash = hashlib.sha256(body).hexdigest()
        host = self.endpoint.host or ""
        if self.endpoint.explicit_port:
            host = f"{host}:{self.endpoint.port}"
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed_names = ";".join(sorted(headers))
        canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
        canonical_request = "\n".join([method, canonical_uri, canonical_query, canonical_headers, signed_names,
                                       payload_hash])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = ("AWS4" + self.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {"x-amz-content-sha256": payload_hash, "x-amz-date": amz_date,
                "authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                 f"SignedHeaders={signed_names}, Signature={signature}"}

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _error_text(reply: S3Reply) -> str:
    try:
        root = ET.fromstring(reply.body)
        code = next((el.text for el in root.iter() if el.tag.endswith("Code")), None)
        message = next((el.text for el in root.iter() if el.tag.endswith("Message")), None)
        return f"HTTP {reply.status} {code or ''} {message or ''}".strip()
    except ET.ParseError:
        return f"HTTP {reply.status}"


class S3Store:
    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *,
                 region: str = "us-east-1", prefix: str = "", poll_interval: float = 1.0) -> None:
        self.client = S3Client(endpoint, access_key, secret_key, region)
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.poll_interval = poll_interval
        self.problems: dict[str, str] = {}
        self._ready_done = False

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _path(self, key: str) -> str:
        return f"/{self.bucket}/{self.prefix}{key}"

    def _record_key(self, record_id: str) -> str:
        return f"{AUTHS}{record_id}{SUFFIX}"

    async def _ready(self) -> None:
        if self._ready_done:
            return
        reply = await self.client.request("HEAD", f"/{self.bucket}")
        if reply.status == 404:
            created = await self.client.request("PUT", f"/{self.bucket}")
            if created.status not in (200, 409):  # 409: someone created it meanwhile
                raise S3Error(f"cannot create bucket {self.bucket!r}: {_error_text(created)}")
        elif reply.status >= 300:
            raise S3Error(f"cannot use bucket {self.bucket!r}: HTTP {reply.status} (check endpoint and keys)")
        self._ready_done = True

    async def _list_keys(self) -> dict[str, str]:
        """key (relative to the prefix) -> ETag, for everything under auths/ and the config."""
        await self._ready()
        found: dict[str, str] = {}
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": self.prefix}
            if token:
                query["continuation-token"] = token
            reply = await self.client.request("GET", f"/{self.bucket}", query=query)
            if reply.status != 200:
                raise S3Error(f"listing bucket {self.bucket!r} failed: {_error_text(reply)}")
            root = ET.fromstring(reply.body)
            for item in root.iter():
                if not item.tag.endswith("Contents"):
                    continue
                key = etag = ""
                for child in item:
                    if child.tag.endswith("Key"):
                        key = child.text or ""
                    elif child.tag.endswith("ETag"):
                        etag = child.text or ""
                relative = key[len(self.prefix):]
                if relative == CONFIG_KEY or (relative.startswith(AUTHS) and relative.endswith(SUFFIX)
                                              and "/" not in relative[len(AUTHS):]):
                    found[relative] = etag
            truncated = next((el.text for el in root if el.tag.endswith("IsTruncated")), "false")
            token = next((el.text for el in root if el.tag.endswith("NextContinuationToken")), None)
            if truncated != "true" or not token:
                return found

    async def _get_object(self, key: str) -> S3Reply | None:
        await self._ready()
        reply = await self.client.request("GET", self._path(key))
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise S3Error(f"reading {key} failed: {_error_text(reply)}")
        return reply

    def _record(self, record_id: str, reply: S3Reply) -> Record:
        try:
            data = orjson.loads(reply.body)
        except orjson.JSONDecodeError as exc:
            raise CorruptRecord(record_id, f"object {self.prefix}{self._record_key(record_id)} is not valid "
                                           f"JSON ({exc})") from None
        if not isinstance(data, dict):
            raise CorruptRecord(record_id, f"object {self.prefix}{self._record_key(record_id)} must hold a "
                                           "JSON object")
        return Record(record_id, data, _version(reply.headers))

    # -- records ---------------------------------------------------------------------------

    async def list(self) -> Records:
        keys = await self._list_keys()
        ids = sorted(k[len(AUTHS): -len(SUFFIX)] for k in keys if k.startswith(AUTHS))
        replies = await asyncio.gather(*(self._get_object(self._record_key(i)) for i in ids))
        records: Records = []
        problems: dict[str, str] = {}
        for record_id, reply in zip(ids, replies, strict=True):
            if reply is None:
                continue
            try:
                records.append(self._record(record_id, reply))
            except CorruptRecord as exc:
                problems[record_id] = exc.cause
                log.error("%s; the other accounts still load", exc)
        self.problems = problems
        return records

    async def get(self, record_id: str) -> Record | None:
        check_id(record_id)
        reply = await self._get_object(self._record_key(record_id))
        return None if reply is None else self._record(record_id, reply)

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        check_id(record.id)
        await self._ready()
        path = self._path(self._record_key(record.id))
        head = await self.client.request("HEAD", path)
        exists = head.status == 200
        if head.status not in (200, 404):
            raise S3Error(f"credential {record.id!r}: reading its head failed: HTTP {head.status}")
        current = _version(head.headers) if exists else 0
        if expected_version is not None and current != expected_version:
            raise Conflict(f"credential {record.id!r} changed meanwhile "
                           f"(stored version {current}, expected {expected_version})")
        headers = {VERSION_HEADER: str(current + 1), "content-type": "application/json"}
        if expected_version is not None:
            if exists:
                headers["if-match"] = head.headers.get("etag", "")
            else:
                headers["if-none-match"] = "*"
        body = orjson.dumps(record.data, option=orjson.OPT_INDENT_2)
        reply = await self.client.request("PUT", path, body=body, headers=headers)
        if reply.status in (409, 412):
            raise Conflict(f"credential {record.id!r} changed meanwhile (expected version {expected_version})")
        if reply.status != 200:
            raise S3Error(f"writing credential {record.id!r} failed: {_error_text(reply)}")
        return Record(record.id, record.data, current + 1)

    async def delete(self, record_id: str) -> None:
        check_id(record_id)
        await self._ready()
        reply = await self.client.request("DELETE", self._path(self._record_key(record_id)))
        if reply.status not in (200, 204, 404):
            raise S3Error(f"deleting credential {record_id!r} failed: {_error_text(reply)}")

    # -- config -------------------------------------------------------------------------------

    async def read_config(self) -> str | None:
        reply = await self._get_object(CONFIG_KEY)
        return None if reply is None else reply.body.decode("utf-8")

    async def write_config(self, text: str) -> None:
        await self._ready()
        reply = await self.client.request("PUT", self._path(CONFIG_KEY), body=text.encode(),
                                          headers={"content-type": "application/yaml"})
        if reply.status != 200:
            raise S3Error(f"writing the config failed: {_error_text(reply)}")

    # -- watching -----------------------------------------------------------------------------

    async def watch(self) -> AsyncIterator[Change]:
        seen = await self._list_keys()
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                now = await self._list_keys()
            except StoreError as exc:
                log.warning("S3 store: listing failed (%s); will retry", exc)
                continue
            for key, etag in now.items():
                if seen.get(key) == etag:
                    continue
                if key == CONFIG_KEY:
                    yield Change("config", "config")
                    continue
                record_id = key[len(AUTHS): -len(SUFFIX)]
                try:
                    record = await self.get(record_id)
                except CorruptRecord as exc:
                    self.problems[record_id] = exc.cause
                    log.error("%s; the running copy (if any) stays in use", exc)
                    continue
                except StoreError as exc:
                    log.warning("S3 store: %s", exc)
                    now[key] = seen.get(key, "")  # try again next round
                    continue
                if record is not None:
                    self.problems.pop(record_id, None)
                    yield Change("put", record_id, record)
            for key in seen.keys() - now.keys():
                if key == CONFIG_KEY:
                    yield Change("config", "config")
                else:
                    yield Change("delete", key[len(AUTHS): -len(SUFFIX)])
            seen = now

    async def close(self) -> None:
        await self.client.close()


def _version(headers: Mapping[str, str]) -> int:
    try:
        return max(1, int(headers.get(VERSION_HEADER, "1")))
    except ValueError:
        return 1
