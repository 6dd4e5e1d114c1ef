"""Vertex AI service accounts: import the JSON key, mint access tokens with a
signed JWT (RFC 7523 ``jwt-bearer`` grant)."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from crossroads.auth import oauth, settings
from crossroads.auth.tokens import TokenGrant

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def record_from_service_account(account: dict[str, Any], location: str = "us-central1") -> dict[str, Any]:
    """The auth-file data for a service-account key (raises ValueError when it is not one)."""
    missing = [key for key in ("client_email", "private_key", "project_id") if not account.get(key)]
    if account.get("type") != "service_account" or missing:
        detail = f"missing {', '.join(missing)}" if missing else "its 'type' is not 'service_account'"
        raise ValueError(f"not a Google service-account key: {detail}")
    return {"type": "vertex", "service_account": account, "project_id": account["project_id"],
            "email": account["client_email"], "location": location}


def signed_assertion(account: dict[str, Any], audience: str, scope: str, now: float | None = None) -> str:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    issued = int(time.time() if now is None else now)
    header = _b64(orjson.dumps({"alg": "RS256", "typ": "JWT", "kid": account.get("private_key_id", "")}))
    claims = _b64(orjson.dumps({"iss": account["client_email"], "scope": scope, "aud": audience,
                                "iat": issued, "exp": issued + LIFETIME}))
    key = serialization.load_pem_private_key(str(account["private_key"]).encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise oauth.OAuthError("invalid_grant", "the service account's private key is not an RSA key")
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64(signature)}"


async def mint_token(data: dict[str, Any]) -> TokenGrant:
    account = data.get("service_account")
    if not isinstance(account, dict):
        raise oauth.OAuthError("invalid_grant", "the vertex credential holds no service_account")
    kind = settings.get("vertex")
    token_url = kind.token_url if settings.overridden("vertex") else str(account.get("token_uri") or kind.token_url)
    try:
        assertion = signed_assertion(account, token_url, " ".join(kind.scopes))
    except (ValueError, TypeError, KeyError) as exc:
        raise oauth.OAuthError("invalid_grant", f"cannot sign with the service-account key: "
                                                f"{type(exc).__name__}") from None
    reply = await oauth.post(token_url, {"grant_type": JWT_GRANT, "assertion": assertion})
    return oauth.grant_from(reply)
