"""Any OpenAI chat-completions server (`openai-compatibility`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroads import quota
from crossroads.providers.base import Account, AccountContext, ProviderBase, UpstreamCall
from crossroads.providers.entries import ENTRY_KEYS, build_account


class OpenAICompatibleProvider(ProviderBase):
    list_prices: ClassVar[bool] = False  # any server: its models are priced only by ``prices:``
    config_key: ClassVar[str] = "openai-compatibility"
    dialect: ClassVar[str] = "openai-chat"
    rate_limit_families: ClassVar[tuple[str, ...]] = ("openai",)
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    entry_keys: ClassVar[Mapping[str, Any] | None] = {
        **{k: v for k, v in ENTRY_KEYS.items() if k != "api-key"}, "name": None, "api-keys": None,
        "api-key-entries": [{"api-key": None, "proxy-url": None, "weight": None, "pause-at": None}],
        "support-prompt-cache-key": "prompt_cache_key is passed on as the client sends it, never derived"}

    def accounts(self, entries: list[dict[str, Any]], ctx: AccountContext) -> list[Account]:
        accounts = []
        for i, entry in enumerate(entries):
            if entry.get("disabled"):
                continue
            if not entry.get("base-url"):
                raise ValueError(f"openai-compatibility[{i}]: 'base-url' is required")
            name = str(entry.get("name") or f"openai-compatibility[{i}]")
            keys = entry.get("api-key-entries")
            if keys is None and entry.get("api-keys"):  # older CLIProxyAPI spelling
                keys = [{"api-key": k} for k in entry["api-keys"]]
            if not keys:
                raise ValueError(f"openai-compatibility[{i}] ({name}): no 'api-key-entries'")
            for j, key_entry in enumerate(keys):
                if not isinstance(key_entry, dict):
                    raise ValueError(f"openai-compatibility[{i}].api-key-entries[{j}] must be a mapping")
                account = build_account(self, i, entry, key_entry.get("api-key", ""), label=f"{name}#{j}", sub=j,
                                        proxy_url=key_entry.get("proxy-url"))
                if key_entry.get("pause-at") is not None:  # one key of the entry keeps a reserve
                    account.pause_at = quota.fraction(key_entry["pause-at"],
                                                      f"openai-compatibility[{i}].api-key-entries[{j}].pause-at")
                if key_entry.get("weight") is not None:  # a key's own share of weighted round robin
                    account.weight = int(key_entry["weight"])
                accounts.append(account)
        return accounts

    async def call(self, account: Account, model: str, stream: bool,
                   client_headers: Mapping[str, str], dialect: str) -> UpstreamCall:
        headers = {"authorization": f"Bearer {account.secret}"}
        return UpstreamCall(url=f"{account.base_url}/chat/completions", headers=headers)

PROVIDER = OpenAICompatibleProvider()
