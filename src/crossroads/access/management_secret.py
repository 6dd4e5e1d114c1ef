"""The management secret, kept as CLIProxyAPI keeps it: a bcrypt hash in
config.yaml is used as it is; a plain one is replaced by its hash when the
server starts, if the file can be written (the rest of the file, comments
included, is left as it was).

Checks are constant-time for a plain secret; a hashed one is checked with
bcrypt (slow by design), and the digest of a key that matched is kept so the
next calls with it cost a hash, not a bcrypt round.

Local tools (``crossroads auth list``) cannot send a secret the file only
holds hashed, so ``serve`` writes a fresh random token to
``<auth-dir>/.management-token`` (owner-only) at every start; it is accepted
from loopback clients only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

import bcrypt
import yaml

log = logging.getLogger("crossroads.access")

HASH_PREFIXES = ("$2a$", "$2b$", "$2y$")
LOCAL_TOKEN_FILE = ".management-token"
LOOPBACK = ("127.0.0.1", "::1")
PASSWORD_ENV = "MANAGEMENT_PASSWORD"
_SECRET_LINE = re.compile(r"^(?P<lead>\s+secret-key\s*:\s*)(?P<value>.*?)\s*$", re.MULTILINE)


def is_hashed(secret: str) -> bool:
    return secret.startswith(HASH_PREFIXES)


def hash_secret(plain: str) -> str:
    return bcrypt.hashpw(plain.encode(), bcrypt.gensalt()).decode()


class SecretCheck:
    def __init__(self, auth_dir: str) -> None:
        # CLIProxyAPI's MANAGEMENT_PASSWORD: an extra secret, read once at start, that also
        # turns management on (from anywhere) when the config has no secret-key
        self.env_secret = os.environ.get(PASSWORD_ENV, "").strip()
        self._matched: dict[str, bytes] = {}  # stored hash -> digest of the key that matched it
        self._token_path = Path(auth_dir).expanduser() / LOCAL_TOKEN_FILE
        self._local_token: str | None = None

    def matches_local(self, presented: str, client_host: str | None) -> bool:
        """The token ``serve`` left for local tools, from a loopback client."""
        if client_host not in LOOPBACK:
            return False
        if self._local_token is None:
            self._local_token = read_local_token(self._token_path) or ""
        return bool(self._local_token) and hmac.compare_digest(presented.encode(), self._local_token.encode())

    def matches_env(self, presented: str) -> bool:
        return bool(self.env_secret) and hmac.compare_digest(presented.encode(), self.env_secret.encode())

    def matches(self, presented: str, stored: str) -> bool:
        if not is_hashed(stored):
            return hmac.compare_digest(presented.encode(), stored.encode())
        digest = hashlib.sha256(presented.encode()).digest()
        known = self._matched.get(stored)
        if known is not None and hmac.compare_digest(known, digest):
            return True
        try:
            ok = bcrypt.checkpw(presented.encode(), stored.encode())
        except ValueError:  # not a usable hash
            return False
        if ok:
            self._matched[stored] = digest
        return ok


def hash_in_file(path: Path) -> bool:
    """Replace a plain ``remote-management.secret-key`` in ``path`` by its
    hash; True when the file was rewritten."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the server's own loading reports it
    section = data.get("remote-management") if isinstance(data, dict) else None
    secret = section.get("secret-key") if isinstance(section, dict) else None
    if not isinstance(secret, str) or not secret or is_hashed(secret):
        return False
    hashed = hash_secret(secret)
    rewritten, count = _SECRET_LINE.subn(lambda m: f'{m.group("lead")}"{hashed}"', text, count=1)
    try:
        check = yaml.safe_load(rewritten) if count else None
    except yaml.YAMLError:
        check = None
    if not (isinstance(check, dict) and (check.get("remote-management") or {}).get("secret-key") == hashed
            and {k: v for k, v in check.items() if k != "remote-management"}
            == {k: v for k, v in data.items() if k != "remote-management"}):
        log.warning("the management secret in %s is stored in plain text (its line could not be rewritten "
                    "safely); replace it with a bcrypt hash", path)
        return False
    temp = path.with_name(f".{path.name}.{os.getpid()}.hashing")
    try:
        temp.write_text(rewritten, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        log.warning("the management secret in %s stays in plain text: the file cannot be written (%s)",
                    path, exc.strerror)
        return False
    log.info("the management secret in %s is now stored as a bcrypt hash", path)
    return True


def write_local_token(auth_dir: str) -> None:
    """A fresh token for local tools, readable by this user only."""
    path = Path(auth_dir).expanduser() / LOCAL_TOKEN_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{path.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32))
        os.replace(temp, path)
    except OSError as exc:
        log.warning("no local management token (%s): local tools need the plain secret", exc.strerror)


def read_local_token(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def local_token(auth_dir: str) -> str | None:
    return read_local_token(Path(auth_dir).expanduser() / LOCAL_TOKEN_FILE)
