"""ChatGPT Plus/Pro subscriptions (auth-file type ``codex``): the ChatGPT
backend's Responses endpoint, as the Codex CLI uses it.

The backend only streams (``stream: true``; the pipeline assembles replies
for non-streaming clients), stores nothing (``store: false``, so encrypted
reasoning travels in ``include``), wants the account id and originator
headers, and refuses sampling knobs it does not support. The client's own
system prompt is kept: it is the request's ``instructions`` (other dialects'
system prompts are rendered there too).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads.auth import accounts
from crossroads.credentials.base import Record
from crossroads.providers.base import Account, UpstreamCall
from crossroads.providers.subscription import SubscriptionProvider

CODEX_VERSION = "0.58.0"
ORIGINATOR = "codex_cli_rs"
UNSUPPORTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "service_tier")
ENCRYPTED_REASONING = "reasoning.encrypted_content"
MODELS = ["gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max", "gpt-5", "gpt-5-codex",
          "gpt-5-codex-mini"]
# What each ChatGPT plan may use (the plan is read from the id token at login
# and on every refresh). Free accounts get the smaller models; the paid plans
# everything. Unknown plans (business, enterprise, edu, go...) count as team.
PLAN_MODELS: dict[str, list[str]] = {
    "free": ["gpt-5.1", "gpt-5.1-codex-mini", "gpt-5", "gpt-5-codex-mini"],
    "plus": MODELS,
    "pro": MODELS,
    "team": MODELS,
}
PLAN_ALIASES = {"prolite": "pro", "pro_lite": "pro"}


def plan_models(plan: str | None) -> list[str]:
    """The model list for a ChatGPT plan (no plan known: every model)."""
    if not plan:
        return MODELS
    key = PLAN_ALIASES.get(plan.lower(), plan.lower())
    return PLAN_MODELS.get(key, PLAN_MODELS["team"])


class CodexProvider(SubscriptionProvider):
    config_key: ClassVar[str] = "codex"
    dialect: ClassVar[str] = "openai-responses"
    default_base_url: ClassVar[str] = "https://chatgpt.com/backend-api/codex"
    forwarded_headers: ClassVar[tuple[str, ...]] = ("session_id", "conversation_id")
    auth_types: ClassVar[tuple[str, ...]] = ("codex",)
    models: ClassVar[list[str]] = MODELS

    def account_from_record(self, record: Record) -> Account:
        if not record.data.get("account_id"):
            raise ValueError("the codex credential has no account_id (log in again)")
        plan = record.data.get("plan_type")
        label = f"codex:{record.data.get('email') or record.id}" + (f" ({plan})" if plan else "")
        return accounts.oauth_account(self, record, plan_models(str(plan or "")), label=label)

    def upstream_stream(self, client_stream: bool) -> bool:
        return True

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str]) -> UpstreamCall:
        token = await accounts.bearer(account)
        session = client_headers.get("session_id") or client_headers.get("conversation_id") or str(uuid.uuid4())
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "authorization": f"Bearer {token}",
            "chatgpt-account-id": str(accounts.extra(account).get("account_id", "")),
            "originator": ORIGINATOR,
            "openai-beta": "responses=experimental",
            "version": CODEX_VERSION,
            "session_id": session,
            "user-agent": f"{ORIGINATOR}/{CODEX_VERSION} (crossroads)",
        }
        headers.update(account.headers)
        return UpstreamCall(url=f"{account.base_url}/responses", headers=headers)

    def adapt_body(self, account: Account, body: dict[str, Any]) -> dict[str, Any] | None:
        out = {key: value for key, value in body.items() if key not in UNSUPPORTED}
        out["stream"] = True
        out["store"] = False
        if not isinstance(out.get("instructions"), str):
            out["instructions"] = ""
        include = out.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        out["include"] = include
        out.pop("previous_response_id", None)  # nothing is stored upstream to point at
        reasoning = out.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none") \
                and "summary" not in reasoning:
            out["reasoning"] = {**reasoning, "summary": "auto"}  # so reasoning reaches every dialect
        return out



PROVIDER = CodexProvider()
