"""OIDC discovery for providers that publish their endpoints only there."""

from __future__ import annotations

from urllib.parse import urlsplit

from crossroads.auth import oauth
from crossroads.auth.oauth import LoginError
from crossroads.auth.spec import OAuthEntry


async def discover_endpoints(entry: OAuthEntry) -> tuple[str, str]:
    """The device and token endpoints; unless the config overrides the
    provider, they must stay on the spec's ``discovery_domain`` (a tampered
    discovery document must not send tokens elsewhere)."""
    conf = entry.settings
    if conf.device_url and conf.token_url:
        return conf.device_url, conf.token_url
    document = await oauth.get_json(conf.discovery_url, {"accept": "application/json"})
    device_url = str(document.get("device_authorization_endpoint") or "")
    token_url = str(document.get("token_endpoint") or "")
    if not device_url.startswith(("https://", "http://")) or not token_url.startswith(("https://", "http://")):
        raise LoginError("the identity server's discovery document names no device/token endpoints")
    domain = entry.spec.discovery_domain
    if domain and not entry.overridden and not all(on_domain(u, domain) for u in (device_url, token_url)):
        raise LoginError(f"the discovery document points outside {domain}; refusing it")
    return device_url, token_url


def on_domain(url: str, domain: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == domain or host.endswith("." + domain)
