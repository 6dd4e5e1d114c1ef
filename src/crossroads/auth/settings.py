"""Per-provider OAuth facts (endpoints, client ids, scopes, callback ports,
refresh leads) and their overrides from the config.

The config key ``oauth-endpoints`` maps an auth-file type to overrides, e.g.::

    oauth-endpoints:
      claude: {authorize-url: ..., token-url: ..., base-url: ...}
      gemini: {client-secret: ...}

so regional/enterprise endpoints (and tests' fake identity servers) work
without code changes. ``base-url`` overrides the provider's upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Encoding = Literal["form", "json"]

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    type: str
    client_id: str = ""
    client_secret: str = ""
    authorize_url: str = ""
    token_url: str = ""
    device_url: str = ""  # device-authorization endpoint (device flows)
    verification_url: str = ""
    discovery_url: str = ""  # OIDC discovery (xAI)
    base_url: str = ""  # the upstream API
    scopes: tuple[str, ...] = ()
    callback_port: int = 0
    callback_path: str = "/callback"
    redirect_uri: str = ""  # set when the provider wants a fixed, non-loopback redirect
    lead: float = 5 * MINUTE  # refresh this long before expiry
    encoding: Encoding = "form"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def loopback_redirect(self) -> str:
        return f"http://localhost:{self.callback_port}{self.callback_path}"


GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",
                 "https://www.googleapis.com/auth/userinfo.email",
                 "https://www.googleapis.com/auth/userinfo.profile")

DEFAULTS: dict[str, OAuthSettings] = {
    "claude": OAuthSettings(
        "claude", client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        authorize_url="https://claude.ai/oauth/authorize",
        token_url="https://platform.claude.com/v1/oauth/token",
        base_url="https://api.anthropic.com",
        scopes=("user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers",
                "user:file_upload"),
        callback_port=54545, callback_path="/callback", lead=4 * HOUR, encoding="json",
        extra={"paste-redirect-uri": "https://platform.claude.com/oauth/code/callback"}),
    "codex": OAuthSettings(
        "codex", client_id="app_EMoamEEZ73f0CkXaXp7hrann",
        authorize_url="https://auth.openai.com/oauth/authorize",
        token_url="https://auth.openai.com/oauth/token",
        device_url="https://auth.openai.com/api/accounts/deviceauth/usercode",
        verification_url="https://auth.openai.com/codex/device",
        base_url="https://chatgpt.com/backend-api/codex",
        scopes=("openid", "email", "profile", "offline_access"),
        callback_port=1455, callback_path="/auth/callback", lead=5 * 24 * HOUR,
        extra={"device-token-url": "https://auth.openai.com/api/accounts/deviceauth/token",
               "device-redirect-uri": "https://auth.openai.com/deviceauth/callback"}),
    "gemini": OAuthSettings(
        "gemini", client_id="681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
        authorize_url=GOOGLE_AUTHORIZE, token_url=GOOGLE_TOKEN,
        base_url="https://cloudcode-pa.googleapis.com", scopes=GOOGLE_SCOPES,
        callback_port=8085, callback_path="/oauth2callback", lead=5 * MINUTE,
        extra={"userinfo-url": "https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
               "user-agent": "GeminiCLI/0.17.1 (linux; x64)"}),
    "antigravity": OAuthSettings(
        "antigravity", client_id="1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
        authorize_url=GOOGLE_AUTHORIZE, token_url=GOOGLE_TOKEN,
        base_url="https://daily-cloudcode-pa.googleapis.com",
        scopes=(*GOOGLE_SCOPES, "https://www.googleapis.com/auth/cclog",
                "https://www.googleapis.com/auth/experimentsandconfigs"),
        callback_port=51121, callback_path="/oauth-callback", lead=5 * MINUTE,
        extra={"userinfo-url": "https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
               "user-agent": "antigravity/1.11.5 linux/amd64",
               "fallback-base-urls": "https://daily-cloudcode-pa.googleapis.com,https://cloudcode-pa.googleapis.com"}),
    "qwen": OAuthSettings(
        "qwen", client_id="f0304373b74a44d2b584a3fb70ca9e56",
        device_url="https://chat.qwen.ai/api/v1/oauth2/device/code",
        token_url="https://chat.qwen.ai/api/v1/oauth2/token",
        base_url="https://portal.qwen.ai/v1",
        scopes=("openid", "profile", "email", "model.completion"), lead=20 * MINUTE),
    "kimi": OAuthSettings(
        "kimi", client_id="17e5f671-d194-4dfb-9706-5516cb48c098",
        device_url="https://auth.kimi.com/api/oauth/device_authorization",
        token_url="https://auth.kimi.com/api/oauth/token",
        base_url="https://api.kimi.com/coding/v1", lead=5 * MINUTE),
    "xai": OAuthSettings(
        "xai", client_id="b1a00492-073a-47ea-816f-4c329264a828",
        discovery_url="https://auth.x.ai/.well-known/openid-configuration",
        base_url="https://cli-chat-proxy.grok.com/v1",
        scopes=("openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"),
        lead=5 * MINUTE),
    "iflow": OAuthSettings(
        "iflow", client_id="10009311001",
        authorize_url="https://iflow.cn/oauth", token_url="https://iflow.cn/oauth/token",
        base_url="https://apis.iflow.cn/v1", callback_port=11451, callback_path="/oauth2callback",
        lead=24 * HOUR,
        extra={"userinfo-url": "https://iflow.cn/api/oauth/getUserInfo",
               "apikey-url": "https://platform.iflow.cn/api/openapi/apikey"}),
    "vertex": OAuthSettings(
        "vertex", token_url="https://oauth2.googleapis.com/token",
        scopes=("https://www.googleapis.com/auth/cloud-platform",), lead=5 * MINUTE),
}

_FIELDS = {"client-id": "client_id", "client-secret": "client_secret", "authorize-url": "authorize_url",
           "token-url": "token_url", "device-url": "device_url", "verification-url": "verification_url",
           "discovery-url": "discovery_url", "base-url": "base_url", "callback-port": "callback_port",
           "redirect-uri": "redirect_uri"}

_overrides: dict[str, OAuthSettings] = {}


def configure(raw: Mapping[str, Any]) -> None:
    """Apply ``oauth-endpoints`` from the raw config (call on every (re)load)."""
    section = raw.get("oauth-endpoints") or {}
    if not isinstance(section, dict):
        raise ValueError("'oauth-endpoints' must map a provider type to its endpoints")
    overrides: dict[str, OAuthSettings] = {}
    for kind, values in section.items():
        base = DEFAULTS.get(str(kind))
        if base is None:
            raise ValueError(f"oauth-endpoints: unknown provider {kind!r}; known: {', '.join(DEFAULTS)}")
        if not isinstance(values, dict):
            raise ValueError(f"oauth-endpoints.{kind} must be a mapping")
        overrides[str(kind)] = apply_overrides(base, values, f"oauth-endpoints.{kind}")
    _overrides.clear()
    _overrides.update(overrides)


def apply_overrides(base: OAuthSettings, values: Mapping[str, Any], where: str) -> OAuthSettings:
    changes: dict[str, Any] = {}
    extra = dict(base.extra)
    for key, value in values.items():
        name = _FIELDS.get(str(key))
        if name == "callback_port":
            changes[name] = int(value)
        elif name == "lead" or key == "refresh-lead":
            changes["lead"] = float(value)
        elif key == "scopes":
            changes["scopes"] = tuple(str(s) for s in (value if isinstance(value, list) else str(value).split()))
        elif name is not None:
            changes[name] = str(value).rstrip("/") if name.endswith("url") else str(value)
        elif isinstance(value, str | int | float):
            extra[str(key)] = str(value)
        else:
            raise ValueError(f"{where}.{key}: expected a string")
    return replace(base, **changes, extra=extra)


def get(kind: str) -> OAuthSettings:
    settings = _overrides.get(kind) or DEFAULTS.get(kind)
    if settings is None:
        raise KeyError(f"no OAuth settings for provider type {kind!r}")
    return settings


def overridden(kind: str) -> bool:
    return kind in _overrides
