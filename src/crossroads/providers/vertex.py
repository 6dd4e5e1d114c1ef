"""Vertex AI with an imported service account (auth-file type ``vertex``):
Gemini on the publisher-model endpoints, with access tokens minted from the
service account's key (signed JWT), kept in memory.

Login: ``crossroads login vertex --service-account KEY.json [--location R]``
imports the key; access tokens are minted from it with the RFC 7523
``jwt-bearer`` grant, never written back.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import orjson

from crossroads import quota
from crossroads.auth import oauth
from crossroads.auth.flows import safe_id
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.spec import MINUTE, LoginResult, OAuthEntry, OAuthSettings, OAuthSpec
from crossroads.auth.tokens import TokenGrant
from crossroads.credentials.base import Record
from crossroads.providers import google_quota
from crossroads.providers import oauth_accounts as accounts
from crossroads.providers.base import Account, AccountContext, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview"]
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME = 3600
DEFAULT_LOCATION = "us-central1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def record_from_service_account(account: dict[str, Any], location: str = DEFAULT_LOCATION) -> dict[str, Any]:
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
        raise OAuthError("invalid_grant", "the service account's private key is not an RSA key")
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64(signature)}"


class ServiceAccountImport:
    option: ClassVar[str] = "service_account"

    async def run(self, entry: OAuthEntry, options: Mapping[str, Any]) -> list[LoginResult]:
        path = options.get("service_account")
        if not path:
            raise LoginError("vertex login needs --service-account FILE (a Google service-account JSON key)")
        try:
            account = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise LoginError(f"cannot read the service-account file {path}: {exc}") from None
        if not isinstance(account, dict):
            raise LoginError("the service-account file must hold a JSON object")
        data = record_from_service_account(account, str(options.get("location") or DEFAULT_LOCATION))
        return [LoginResult(safe_id("vertex", str(data["project_id"])), data)]


class MintToken:
    """A fresh token from the key itself: nothing rotates, nothing is stored."""

    def can_refresh(self, data: Mapping[str, Any]) -> bool:
        return isinstance(data.get("service_account"), dict)

    async def refresh(self, data: dict[str, Any], entry: OAuthEntry, token_url: str) -> TokenGrant:
        account = data.get("service_account")
        if not isinstance(account, dict):
            raise OAuthError("invalid_grant", "the vertex credential holds no service_account")
        # the key names its own token endpoint unless the config overrides it
        audience = token_url if entry.overridden else str(account.get("token_uri") or token_url)
        try:
            assertion = signed_assertion(account, audience, " ".join(entry.settings.scopes))
        except (ValueError, TypeError, KeyError) as exc:
            raise OAuthError("invalid_grant", f"cannot sign with the service-account key: "
                                              f"{type(exc).__name__}") from None
        reply = await oauth.post(audience, {"grant_type": JWT_GRANT, "assertion": assertion})
        return oauth.grant_from(reply)


OAUTH = OAuthSpec(
    "vertex",
    OAuthSettings("vertex", token_url="https://oauth2.googleapis.com/token",
                  scopes=("https://www.googleapis.com/auth/cloud-platform",), lead=5 * MINUTE),
    login_names=("vertex",),
    imports=(ServiceAccountImport(),),
    refresh=MintToken(),
    options=frozenset({"service_account", "location"}),
    memory_only=True,
)


def regional_base(location: str) -> str:
    return "https://aiplatform.googleapis.com" if location == "global" else f"https://{location}-aiplatform.googleapis.com"


class VertexProvider(SubscriptionProvider):
    prompt_cache: ClassVar[bool] = True  # reports cached tokens: hits and misses are explained
    billing: ClassVar[str] = "per-token"  # a service account bills the project by the token
    config_key: ClassVar[str] = "vertex"
    dialect: ClassVar[str] = "gemini"
    credential_wide_markers: ClassVar[tuple[str, ...]] = ("quota exceeded for quota metric",)
    default_base_url: ClassVar[str] = "https://us-central1-aiplatform.googleapis.com"
    auth_types: ClassVar[tuple[str, ...]] = ("vertex",)
    models: ClassVar[list[str]] = MODELS
    oauth: ClassVar[OAuthSpec | None] = OAUTH

    def account_from_record(self, record: Record, ctx: AccountContext) -> Account:
        if not isinstance(record.data.get("service_account"), dict) or not record.data.get("project_id"):
            raise ValueError("the vertex credential needs service_account and project_id")
        location = str(record.data.get("location") or DEFAULT_LOCATION)
        base = None if ctx.oauth.settings("vertex").base_url else regional_base(location)
        return accounts.oauth_account(self, record, MODELS, ctx, base_url=base,
                                      label=f"vertex:{record.data.get('project_id')}")

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        token = await accounts.bearer(account)
        data = accounts.extra(account)
        location = str(data.get("location") or DEFAULT_LOCATION)
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = (f"{account.base_url}/v1/projects/{data.get('project_id')}/locations/{location}"
               f"/publishers/google/models/{model}:{action}")
        headers = {"authorization": f"Bearer {token}"}
        return UpstreamCall(url=url, headers=headers)

    def error_windows(self, status: int, body: bytes) -> list[quota.Window]:
        return google_quota.error_windows(status, body)  # RESOURCE_EXHAUSTED names the quota and its delay


PROVIDER = VertexProvider()
