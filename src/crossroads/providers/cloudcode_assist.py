"""Google logins for the Cloud Code Assist subscriptions (shared by
:mod:`~crossroads.providers.gemini_cli` and :mod:`~crossroads.providers.antigravity`):
Google OAuth with offline access, then the account's Cloud Code project —
``loadCodeAssist``, and ``onboardUser`` when the account has no tier yet (a
long-running operation polled until done). One record per project."""

from __future__ import annotations

import asyncio
from typing import Any

from crossroads.auth import oauth
from crossroads.auth.flows import PkceBrowserFlow
from crossroads.auth.oauth import LoginError, OAuthError
from crossroads.auth.spec import BrowserLogin, LoginResult

GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",
                 "https://www.googleapis.com/auth/userinfo.email",
                 "https://www.googleapis.com/auth/userinfo.profile")
USERINFO_URL = "https://www.googleapis.com/oauth2/v1/userinfo?alt=json"

METADATA = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
ONBOARD_POLLS = 30
POLL_SECONDS = 2.0


def _project_id(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if isinstance(value, str) and value else ""


async def _call(base_url: str, method: str, token: str, body: dict[str, Any], user_agent: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}", "user-agent": user_agent}
    try:
        return await oauth.post(f"{base_url}/v1internal:{method}", body, encoding="json", headers=headers)
    except OAuthError as exc:
        raise LoginError(f"Cloud Code Assist {method} failed: {exc}") from None


async def discover_project(base_url: str, token: str, wanted: str | None = None,
                           poll_seconds: float = POLL_SECONDS, user_agent: str = "") -> str:
    """The Cloud Code project for this account (onboarding it if needed)."""
    metadata = {**METADATA, **({"duetProject": wanted} if wanted else {})}
    load_body: dict[str, Any] = {"metadata": metadata}
    if wanted:
        load_body["cloudaicompanionProject"] = wanted
    loaded = await _call(base_url, "loadCodeAssist", token, load_body, user_agent)
    if loaded.get("currentTier"):
        project = _project_id(loaded.get("cloudaicompanionProject")) or (wanted or "")
        if project:
            return project
    tiers = [t for t in loaded.get("allowedTiers") or [] if isinstance(t, dict)]
    tier = next((t for t in tiers if t.get("isDefault")), tiers[0] if tiers else {"id": "legacy-tier"})
    if tier.get("userDefinedCloudaicompanionProject") and not wanted:
        raise LoginError("this Google account needs a Google Cloud project for Gemini Code Assist: "
                         "pass --project-id PROJECT")
    onboard: dict[str, Any] = {"tierId": tier.get("id") or "legacy-tier", "metadata": metadata}
    if wanted:
        onboard["cloudaicompanionProject"] = wanted
    for _ in range(ONBOARD_POLLS):
        operation = await _call(base_url, "onboardUser", token, onboard, user_agent)
        if operation.get("done"):
            response = operation.get("response") if isinstance(operation.get("response"), dict) else {}
            project = _project_id((response or {}).get("cloudaicompanionProject")) or (wanted or "")
            if not project:
                raise LoginError("onboarding finished without a project; pass --project-id PROJECT")
            return project
        await asyncio.sleep(poll_seconds)
    raise LoginError("Cloud Code Assist onboarding did not finish in time; try again later")


class GoogleFlow(PkceBrowserFlow):
    """Google OAuth (offline access, consent every time so a refresh token
    comes back), then the Cloud Code project(s); the provider shapes the
    record (``record``)."""

    def authorize_params(self, login: BrowserLogin) -> dict[str, str]:
        return {**super().authorize_params(login), "access_type": "offline", "prompt": "consent"}

    def record(self, reply: dict[str, Any], email: str, project: str, auto: bool) -> LoginResult:
        raise NotImplementedError(f"{type(self).__name__} must shape its record")

    async def finish(self, login: BrowserLogin, reply: dict[str, Any]) -> list[LoginResult]:
        conf = login.settings
        token = str(reply["access_token"])
        email = ""
        if conf.extra.get("userinfo-url"):
            try:
                info = await oauth.get_json(conf.extra["userinfo-url"], {"authorization": f"Bearer {token}"})
                email = str(info.get("email") or "")
            except oauth.OAuthError:
                email = ""  # the email only names the record
        wanted = list(login.options.get("project_ids") or []) or [None]
        results = []
        for project_wanted in wanted:
            project = await discover_project(conf.base_url, token, project_wanted,
                                             float(login.options.get("poll_seconds", POLL_SECONDS)),
                                             conf.extra.get("user-agent", ""))
            results.append(self.record(reply, email, project, auto=project_wanted is None))
        return results
