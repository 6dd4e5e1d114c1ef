"""Which accounts can serve which client-facing model name."""

from __future__ import annotations

from dataclasses import dataclass

from crossroads.providers.base import Account, ModelRoute


@dataclass(slots=True, frozen=True)
class Candidate:
    account: Account
    route: ModelRoute


class Registry:
    """Pools keyed by exposed model name; lookups are one dict access."""

    def __init__(self, accounts: list[Account]) -> None:
        self.accounts = accounts
        self._pools: dict[str, list[Candidate]] = {}
        for account in accounts:
            if account.disabled:
                continue
            for exposed, route in account.routes.items():
                self._pools.setdefault(exposed, []).append(Candidate(account, route))

    def pool(self, model: str) -> list[Candidate]:
        return self._pools.get(model, [])

    def models(self) -> list[tuple[str, list[Candidate]]]:
        return sorted(self._pools.items())

    def __contains__(self, model: str) -> bool:
        return model in self._pools
