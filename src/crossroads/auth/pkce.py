"""PKCE (RFC 7636, S256) and OAuth ``state`` values."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def challenge_for(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str = field(default_factory=lambda: _b64(secrets.token_bytes(32)))

    @property
    def challenge(self) -> str:
        return challenge_for(self.verifier)

    method = "S256"


def new_state() -> str:
    return _b64(secrets.token_bytes(24))
