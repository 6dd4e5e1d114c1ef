"""Encryption at rest for any store.

Each secret field of a record (tokens, keys, cookies) is replaced by
``{"encrypted": "aes-256-gcm", "kid": KEY_ID, "data": BASE64(nonce + ciphertext)}``.
The key id beside each field lets keys rotate: a keyring holds the current key
(used for every write) and older keys (still read), so plaintext, old-key and
new-key records coexist while ``crossroads auth rotate-key`` re-encrypts them.

Keys (32 random bytes, base64 or hex) come from ``$CROSSROADS_STORE_KEY``
(comma-separated, current first) or a key file (one key a line, current
first; ``$CROSSROADS_STORE_KEY_FILE`` or the config's ``store: {key-file: ...}``).

:class:`EncryptedStore` wraps any store. A record it cannot decrypt (wrong or
missing key) is reported by name, like a corrupt file, and is never
overwritten by a put.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from crossroads.credentials.base import (
    Change,
    Conflict,
    CorruptRecord,
    Record,
    Store,
    StoreError,
    problems_of,
)

log = logging.getLogger("crossroads.credentials")

ALGORITHM = "aes-256-gcm"
KEY_ENV = "CROSSROADS_STORE_KEY"
KEY_FILE_ENV = "CROSSROADS_STORE_KEY_FILE"

SECRET_FIELDS = frozenset({
    "access_token", "refresh_token", "id_token", "token", "api_key", "api-key", "apiKey",
    "client_secret", "password", "secret", "cookie", "cookies", "session_key", "sessionKey",
    "secure_1psid", "secure_1psidts", "__Secure-1PSID", "__Secure-1PSIDTS",
})


class KeyProblem(StoreError):
    """A key that cannot be used (bad encoding, wrong length)."""


@dataclass(slots=True, frozen=True)
class Key:
    kid: str
    secret: bytes

    @classmethod
    def parse(cls, text: str, where: str) -> Key:
        text = text.strip()
        secret: bytes | None = None
        if len(text) == 64:
            try:
                secret = bytes.fromhex(text)
            except ValueError:
                secret = None
        if secret is None:
            try:
                secret = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
            except (binascii.Error, ValueError):
                raise KeyProblem(f"{where}: an encryption key must be 32 bytes in base64 or hex") from None
        if len(secret) != 32:
            raise KeyProblem(f"{where}: an encryption key must be 32 bytes (base64 or hex), got {len(secret)}")
        return cls(key_id(secret), secret)

    @classmethod
    def generate(cls) -> Key:
        secret = secrets.token_bytes(32)
        return cls(key_id(secret), secret)

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.secret).decode().rstrip("=")


def key_id(secret: bytes) -> str:
    return hashlib.sha256(b"crossroads key id\x00" + secret).hexdigest()[:12]


class Keyring:
    """The current key (first) and older keys still accepted for reading."""

    def __init__(self, keys: list[Key], source: str = "") -> None:
        if not keys:
            raise KeyProblem("a keyring needs at least one key")
        # imported here: a server that encrypts nothing never loads the cryptography library (8 MB resident)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.keys = keys
        self.source = source
        self._by_id = {k.kid: k for k in keys}
        self._ciphers = {k.kid: AESGCM(k.secret) for k in keys}
        self._invalid_tag = InvalidTag

    @property
    def current(self) -> Key:
        return self.keys[0]

    def knows(self, kid: str) -> bool:
        return kid in self._by_id

    def seal(self, field_name: str, value: Any) -> dict[str, str]:
        key = self.current
        nonce = secrets.token_bytes(12)
        ciphertext = self._ciphers[key.kid].encrypt(nonce, orjson.dumps(value), field_name.encode())
        return {"encrypted": ALGORITHM, "kid": key.kid,
                "data": base64.b64encode(nonce + ciphertext).decode()}

    def open(self, record_id: str, field_name: str, sealed: Mapping[str, Any]) -> Any:
        kid = str(sealed.get("kid", ""))
        key = self._by_id.get(kid)
        if key is None:
            raise CorruptRecord(record_id, f"field {field_name!r} is encrypted with key {kid!r}, which is not "
                                           f"in the configured keyring ({', '.join(self._by_id)})")
        try:
            blob = base64.b64decode(str(sealed.get("data", "")), validate=True)
            plain = self._ciphers[kid].decrypt(blob[:12], blob[12:], field_name.encode())
            return orjson.loads(plain)
        except (self._invalid_tag, binascii.Error, ValueError, orjson.JSONDecodeError):
            raise CorruptRecord(record_id, f"field {field_name!r} does not decrypt with key {kid!r} "
                                           "(wrong key, or the stored value was altered)") from None


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("encrypted") == ALGORITHM and "kid" in value and "data" in value


def sealed_kids(data: Mapping[str, Any]) -> set[str]:
    return {str(v["kid"]) for v in data.values() if is_sealed(v)}


def plaintext_secrets(data: Mapping[str, Any]) -> list[str]:
    return [k for k, v in data.items() if k in SECRET_FIELDS and v not in (None, "") and not is_sealed(v)]


def encrypt_data(keyring: Keyring, data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name in SECRET_FIELDS and value not in (None, "") and not is_sealed(value):
            out[name] = keyring.seal(name, value)
        else:
            out[name] = value
    return out


def decrypt_data(keyring: Keyring | None, record_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        if is_sealed(value):
            if keyring is None:
                raise CorruptRecord(record_id, f"field {name!r} is encrypted (key {value['kid']!r}) but no "
                                               f"encryption key is configured (set ${KEY_ENV} or a key file)")
            out[name] = keyring.open(record_id, name, value)
        else:
            out[name] = value
    return out


# -- where keys come from --------------------------------------------------------

def read_key_file(path: Path) -> list[Key]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KeyProblem(f"{path}: key file not found") from None
    keys = [Key.parse(line, f"{path}:{n}") for n, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not keys:
        raise KeyProblem(f"{path}: the key file holds no key")
    return keys


def write_key_file(path: Path, keys: list[Key]) -> None:
    from crossroads.credentials.file import _write_atomically

    text = "# crossroads store keys: the first encrypts, the others are still read\n"
    text += "".join(k.encoded() + "\n" for k in keys)
    previous = path.stat().st_mtime_ns if path.exists() else 0
    _write_atomically(path, text.encode(), previous)


def key_file_from(settings: Mapping[str, Any] | None, environ: Mapping[str, str]) -> Path | None:
    configured = (settings or {}).get("key-file") or environ.get(KEY_FILE_ENV)
    return Path(str(configured)).expanduser() if configured else None


def load_keyring(settings: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> Keyring | None:
    """The configured keyring, or None when encryption is off."""
    env = os.environ if environ is None else environ
    from_env = env.get(KEY_ENV, "").strip()
    if from_env:
        return Keyring([Key.parse(part, f"${KEY_ENV}") for part in from_env.split(",") if part.strip()],
                       f"${KEY_ENV}")
    path = key_file_from(settings, env)
    if path is not None:
        return Keyring(read_key_file(path), str(path))
    return None


# -- the wrapper -------------------------------------------------------------------

class EncryptedStore:
    """Encrypts secret fields on the way in, decrypts them on the way out."""

    def __init__(self, inner: Store, keyring: Keyring | None) -> None:
        self.inner = inner
        self.keyring = keyring
        self.problems: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r})" if self.keyring else repr(self.inner)

    def _open(self, record: Record) -> Record:
        return Record(record.id, decrypt_data(self.keyring, record.id, record.data), record.version)

    async def list(self) -> list[Record]:
        opened: list[Record] = []
        stored = await self.inner.list()
        problems = problems_of(self.inner)
        for record in stored:
            try:
                opened.append(self._open(record))
            except CorruptRecord as exc:
                problems[record.id] = exc.cause
                log.error("%s; the other accounts still load", exc)
        self.problems = problems
        return opened

    async def get(self, record_id: str) -> Record | None:
        record = await self.inner.get(record_id)
        return None if record is None else self._open(record)

    async def put(self, record: Record, expected_version: int | None = None) -> Record:
        existing = await self.inner.get(record.id)
        if existing is not None:
            try:
                decrypt_data(self.keyring, existing.id, existing.data)
            except CorruptRecord as exc:
                raise StoreError(f"refusing to overwrite credential {record.id!r}: its stored copy cannot be "
                                 f"decrypted with the configured key ({exc.cause}); delete it first to "
                                 "replace it") from None
        data = encrypt_data(self.keyring, record.data) if self.keyring else dict(record.data)
        stored = await self.inner.put(Record(record.id, data, record.version), expected_version)
        return Record(record.id, dict(record.data), stored.version)

    async def delete(self, record_id: str) -> None:
        await self.inner.delete(record_id)

    async def watch(self) -> AsyncIterator[Change]:
        async for change in self.inner.watch():
            if change.record is None:
                yield change
                continue
            try:
                yield Change(change.kind, change.id, self._open(change.record))
            except CorruptRecord as exc:
                self.problems[change.id] = exc.cause
                log.error("%s; the running copy (if any) stays in use", exc)

    async def read_config(self) -> str | None:
        return await self.inner.read_config()

    async def write_config(self, text: str) -> None:
        await self.inner.write_config(text)

    async def close(self) -> None:
        await self.inner.close()


@dataclass(slots=True)
class RotationReport:
    rewritten: int = 0
    current: int = 0
    failed: dict[str, str] = field(default_factory=dict)


async def reencrypt_all(inner: Store, keyring: Keyring) -> RotationReport:
    """Rewrite every record whose secrets are plaintext or sealed with an older
    key so that all use the keyring's current key. Records that do not decrypt
    are left untouched and reported."""
    report = RotationReport()
    for stored in await inner.list():
        if sealed_kids(stored.data) <= {keyring.current.kid} and not plaintext_secrets(stored.data):
            report.current += 1
            continue
        error = await _reencrypt_one(inner, keyring, stored)
        if error is None:
            report.rewritten += 1
        else:
            report.failed[stored.id] = error
    report.failed.update(problems_of(inner))
    return report


async def _reencrypt_one(inner: Store, keyring: Keyring, stored: Record) -> str | None:
    store = EncryptedStore(inner, keyring)
    for _attempt in range(5):
        try:
            opened = decrypt_data(keyring, stored.id, stored.data)
        except CorruptRecord as exc:
            return exc.cause
        try:
            await store.put(Record(stored.id, opened), expected_version=stored.version)
        except Conflict:  # written meanwhile (e.g. a token refresh): read again
            fresh = await inner.get(stored.id)
            if fresh is None:
                return None
            stored = fresh
            continue
        check = await inner.get(stored.id)
        if check is None or decrypt_data(keyring, stored.id, check.data) != opened:
            return "verification after re-encryption failed"
        return None
    return "kept changing during re-encryption; run rotate-key again"
