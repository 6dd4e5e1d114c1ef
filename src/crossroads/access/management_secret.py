"""The management secret, kept as CLIProxyAPI keeps it: a bcrypt hash in
config.yaml is used as it is; a plain one is replaced by its hash when the
server starts, if the file can be written (the rest of the file, comments
included, is left as it was).

Checks are constant-time for a plain secret; a hashed one is checked with
bcrypt (slow by design), and the digest of a key that matched is kept so the
next calls with it cost a hash, not a bcrypt round.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path

import bcrypt
import yaml

log = logging.getLogger("crossroads.access")

HASH_PREFIXES = ("$2a$", "$2b$", "$2y$")
_SECRET_LINE = re.compile(r"^(?P<lead>\s+secret-key\s*:\s*)(?P<value>.*?)\s*$", re.MULTILINE)


def is_hashed(secret: str) -> bool:
    return secret.startswith(HASH_PREFIXES)


def hash_secret(plain: str) -> str:
    return bcrypt.hashpw(plain.encode(), bcrypt.gensalt()).decode()


class SecretCheck:
    def __init__(self) -> None:
        self._matched: dict[str, bytes] = {}  # stored hash -> digest of the key that matched it

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
