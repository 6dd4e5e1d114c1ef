"""Masking secrets in text that leaves the router: relayed upstream errors,
log lines, management answers.

Two nets: every secret the current config and credentials hold (client keys,
the management secret, upstream keys and tokens), matched exactly; and
anything shaped like a credential (API-key prefixes, bearer tokens, JWTs,
Google OAuth tokens, session cookies), for secrets the router never saw in
full, such as a key an upstream echoes back after a refresh."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MIN_SECRET_LENGTH = 6  # shorter strings would mask ordinary words

_TOKEN_SHAPES = (
    r"\bsk-(?:ant-|proj-|or-|svcacct-)?[A-Za-z0-9_\-]{12,}",
    r"\bAIza[0-9A-Za-z_\-]{20,}",
    r"\bya29\.[0-9A-Za-z_\-.]{10,}",
    r"\b1//[0-9A-Za-z_\-]{20,}",
    r"\beyJ[0-9A-Za-z_\-]{8,}\.[0-9A-Za-z_\-]{8,}\.[0-9A-Za-z_\-]{4,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bxai-[A-Za-z0-9]{16,}",
    r"(?i:(?<=bearer ))[A-Za-z0-9_\-.~+/=]{12,}",
    r"(?i:(?<=api-key[=:] )|(?<=api_key[=:] )|(?<=api-key[=:])|(?<=api_key[=:]))[^\s\"',;]{8,}",
    r"__Secure-[0-9A-Za-z]+=[^;\s\"']+",
)


def mask(secret: str) -> str:
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}…{secret[-4:]}"


class Redactor:
    """Immutable: a new config or credential set builds a new one."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        exact = sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH},
                       key=len, reverse=True)
        parts = [re.escape(s) for s in exact] + list(_TOKEN_SHAPES)
        self._pattern = re.compile("|".join(f"(?:{p})" for p in parts))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(_masked, text)

    def originals(self, text: str) -> dict[str, str]:
        """What each mask this redactor would put in ``text`` stands for
        (masks shared by different secrets are left out: they cannot be told apart)."""
        found: dict[str, str] = {}
        clashes: set[str] = set()
        for match in self._pattern.finditer(text):
            masked, original = _masked(match), match.group(0)
            if found.setdefault(masked, original) != original:
                clashes.add(masked)
        return {m: o for m, o in found.items() if m not in clashes and m != o}

    def bytes(self, data: bytes) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        cleaned = self._pattern.sub(_masked, text)
        return data if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def _masked(match: re.Match[str]) -> str:
    value = match.group(0)
    if value.startswith("__Secure-") and "=" in value:
        name, _, cookie = value.partition("=")
        return f"{name}={mask(cookie)}"
    return mask(value)


class LogRedaction(logging.Filter):
    """A handler filter: each record's message (and traceback) is masked
    before it is written. ``current`` is asked each time, so it follows
    reloads."""

    def __init__(self, current: Redaction) -> None:
        super().__init__("crossroads-redaction")
        self._current = current

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "redacted", False):  # masked by whoever wrote it (the request log)
            return True
        redact = self._current.redactor
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class Redaction:
    """What the runtime holds: the redactor for the current snapshot, and the
    log filter installed on the process's handlers while a server runs."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.redactor = Redactor(secrets)
        self._filter = LogRedaction(self)
        self._handlers: list[logging.Handler] = []

    def update(self, secrets: Iterable[str]) -> None:
        self.redactor = Redactor(secrets)

    def install(self) -> None:
        for handler in logging.getLogger().handlers:
            if self._filter not in handler.filters:
                handler.addFilter(self._filter)
                self._handlers.append(handler)

    def uninstall(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self._filter)
        self._handlers.clear()
