"""Which store to use: the config's ``store:`` section, else CLIProxyAPI's
environment variables (so a CLIProxyAPI deployment moves over unchanged; same
precedence: Postgres, object store, git), else files in ``auth-dir``.

```yaml
store:
  type: postgres        # file | postgres | git | s3
  dsn: postgresql://...  # postgres; schema: public
  # git:  url, username, token, branch, local-path, poll-interval
  # s3:   endpoint, bucket, access-key, secret-key, region, prefix, poll-interval
  key-file: ~/.crossroads/store.key   # encryption at rest (or $CROSSROADS_STORE_KEY)
```

Every store comes wrapped in :class:`~crossroads.credentials.crypto.EncryptedStore`
(a pass-through when no key is configured, which still names records that are
encrypted and cannot be read).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from crossroads.config import Config
from crossroads.credentials.base import Store, StoreError
from crossroads.credentials.crypto import EncryptedStore, load_keyring
from crossroads.credentials.file import FileStore

log = logging.getLogger("crossroads.credentials")

CLIPROXYAPI_AUTH_DIR = "~/.cli-proxy-api"
DEFAULT_AUTH_DIR = "~/.crossroads"


def settings_of(cfg: Config | None) -> dict[str, Any]:
    section = (cfg.raw.get("store") if cfg is not None else None) or {}
    if not isinstance(section, dict):
        raise StoreError("config key 'store' must be a mapping, e.g. {type: postgres, dsn: ...}")
    return section


def auth_dir(cfg: Config | None) -> Path:
    """``auth-dir`` from the config; without one, ``~/.crossroads``, or an
    existing CLIProxyAPI ``~/.cli-proxy-api`` when ``~/.crossroads`` does not exist."""
    if cfg is not None and "auth-dir" in cfg.raw:
        return Path(cfg.auth_dir).expanduser()
    default = Path(DEFAULT_AUTH_DIR).expanduser()
    legacy = Path(CLIPROXYAPI_AUTH_DIR).expanduser()
    if not default.exists() and legacy.is_dir():
        return legacy
    return default


def open_store(cfg: Config | None = None, config_path: str | os.PathLike[str] | None = None,
               environ: Mapping[str, str] | None = None) -> Store:
    """The store the running server uses, wrapped for encryption at rest."""
    env = os.environ if environ is None else environ
    settings = settings_of(cfg)
    inner = _inner_store(settings, cfg, config_path, env)
    return EncryptedStore(inner, load_keyring(settings, env))


def _inner_store(settings: Mapping[str, Any], cfg: Config | None, config_path: str | os.PathLike[str] | None,
                 env: Mapping[str, str]) -> Store:
    kind = str(settings.get("type") or "").lower()
    if not kind:
        if env.get("PGSTORE_DSN"):
            kind = "postgres"
        elif env.get("OBJECTSTORE_ENDPOINT"):
            kind = "s3"
        elif env.get("GITSTORE_GIT_URL"):
            kind = "git"
        else:
            kind = "file"
    if kind == "file":
        return FileStore(Path(str(settings["dir"])).expanduser() if settings.get("dir") else auth_dir(cfg),
                         config_path=config_path)
    if kind in ("postgres", "postgresql", "pg"):
        return _postgres(str(settings.get("dsn") or env.get("PGSTORE_DSN") or ""),
                         str(settings.get("schema") or env.get("PGSTORE_SCHEMA") or "public"))
    if kind == "git":
        return _git(settings, env)
    if kind in ("s3", "object", "objectstore", "minio"):
        return _s3(settings, env)
    raise StoreError(f"unknown store type {kind!r}: use file, postgres, git or s3")


def _postgres(dsn: str, schema: str) -> Store:
    if not dsn:
        raise StoreError("the postgres store needs a DSN (store.dsn or $PGSTORE_DSN)")
    from crossroads.credentials.postgres import PostgresStore

    return PostgresStore(dsn, schema)


def _git(settings: Mapping[str, Any], env: Mapping[str, str]) -> Store:
    from crossroads.credentials.git import GitStore

    url = str(settings.get("url") or env.get("GITSTORE_GIT_URL") or "")
    if not url:
        raise StoreError("the git store needs a repository URL or path (store.url or $GITSTORE_GIT_URL)")
    local = settings.get("local-path") or env.get("GITSTORE_LOCAL_PATH") or None
    poll = settings.get("poll-interval")
    return GitStore(url, local, branch=str(settings.get("branch") or env.get("GITSTORE_GIT_BRANCH")
                                           or env.get("GITSTORE_BRANCH") or "main"),
                    username=settings.get("username") or env.get("GITSTORE_GIT_USERNAME") or None,
                    token=settings.get("token") or env.get("GITSTORE_GIT_TOKEN") or None,
                    poll_interval=float(poll) if poll is not None else None)


def _s3(settings: Mapping[str, Any], env: Mapping[str, str]) -> Store:
    from crossroads.credentials.s3 import S3Store

    endpoint = str(settings.get("endpoint") or env.get("OBJECTSTORE_ENDPOINT") or "")
    bucket = str(settings.get("bucket") or env.get("OBJECTSTORE_BUCKET") or "")
    access = str(settings.get("access-key") or env.get("OBJECTSTORE_ACCESS_KEY") or env.get("AWS_ACCESS_KEY_ID")
                 or "")
    secret = str(settings.get("secret-key") or env.get("OBJECTSTORE_SECRET_KEY")
                 or env.get("AWS_SECRET_ACCESS_KEY") or "")
    if not (endpoint and bucket and access and secret):
        raise StoreError("the s3 store needs endpoint, bucket, access-key and secret-key "
                         "(store.* or $OBJECTSTORE_ENDPOINT/_BUCKET/_ACCESS_KEY/_SECRET_KEY)")
    if "://" not in endpoint:
        insecure = env.get("OBJECTSTORE_USE_SSL", "").lower() in ("0", "false", "no")
        endpoint = ("http://" if insecure else "https://") + endpoint
    region = str(settings.get("region") or env.get("OBJECTSTORE_REGION") or env.get("AWS_REGION") or "us-east-1")
    poll = settings.get("poll-interval")
    return S3Store(endpoint, bucket, access, secret, region=region,
                   prefix=str(settings.get("prefix") or env.get("OBJECTSTORE_PREFIX") or ""),
                   poll_interval=float(poll) if poll is not None else 1.0)


def open_spec(spec: str, cfg: Config | None = None, config_path: str | os.PathLike[str] | None = None,
              environ: Mapping[str, str] | None = None) -> Store:
    """A store named on the command line:

    ``config`` (the configured one), ``file:PATH`` or a plain path,
    ``postgres://...?schema=NAME``, ``git:URL-OR-PATH``,
    ``s3://BUCKET/PREFIX?endpoint=URL&region=R`` (keys from $OBJECTSTORE_ACCESS_KEY /
    $OBJECTSTORE_SECRET_KEY or $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY).
    """
    env = os.environ if environ is None else environ
    settings = settings_of(cfg)
    keyring = load_keyring(settings, env)
    if spec == "config":
        return EncryptedStore(_inner_store(settings, cfg, config_path, env), keyring)
    inner: Store
    if spec.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(spec)
        query = parse_qs(parts.query)
        schema = (query.pop("schema", None) or ["public"])[0]
        rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
        inner = _postgres(urlunsplit(parts._replace(query=rest)), schema)
    elif spec.startswith(("git:", "git+")):
        url = spec[4:]
        inner = _git({"url": url}, env)
    elif spec.startswith("s3://"):
        parts = urlsplit(spec)
        options = {k: v[0] for k, v in parse_qs(parts.query).items()}
        inner = _s3({"bucket": parts.netloc, "prefix": parts.path.strip("/"), "endpoint": options.get("endpoint"),
                     "region": options.get("region")}, env)
    else:
        path = spec[5:] if spec.startswith("file:") else spec
        inner = FileStore(Path(path).expanduser())
    return EncryptedStore(inner, keyring)
