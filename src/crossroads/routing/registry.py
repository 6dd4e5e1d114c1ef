"""Which accounts can serve which client-facing model name."""

from __future__ import annotations

from dataclasses import dataclass, field

from crossroads.providers.base import Account, ModelRoute


@dataclass(slots=True, frozen=True)
class Candidate:
    account: Account
    route: ModelRoute


@dataclass(slots=True)
class Pool:
    """All candidates for one model, split into priority tiers (highest first)."""

    model: str
    tiers: list[list[Candidate]] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    by_account: dict[str, Candidate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.candidates = [c for tier in self.tiers for c in tier]
        self.by_account = {c.account.id: c for c in self.candidates}

    def __len__(self) -> int:
        return len(self.candidates)

    def __bool__(self) -> bool:
        return bool(self.tiers)


class Registry:
    """Pools keyed by exposed model name; a lookup is one dict access."""

    def __init__(self, accounts: list[Account], force_model_prefix: bool = False) -> None:
        self.accounts = accounts
        flat: dict[str, list[Candidate]] = {}
        for account in accounts:
            if account.disabled:
                continue
            for exposed, route in account.routes.items():
                if force_model_prefix and account.prefix and "/" not in exposed:
                    continue  # prefixed credentials answer only to prefix/model
                flat.setdefault(exposed, []).append(Candidate(account, route))
        self._pools: dict[str, Pool] = {}
        for model, candidates in flat.items():
            priorities = sorted({c.account.priority for c in candidates}, reverse=True)
            tiers = [[c for c in candidates if c.account.priority == p] for p in priorities]
            self._pools[model] = Pool(model, tiers)

    def pool(self, model: str) -> Pool | None:
        return self._pools.get(model)

    def models(self) -> list[tuple[str, Pool]]:
        """The pools to list (a pool whose every route is unlisted, e.g. a side
        service that is down, is still routed but not offered)."""
        return sorted(((model, pool) for model, pool in self._pools.items()
                       if any(c.route.listed for c in pool.candidates)), key=lambda item: item[0])

    def __contains__(self, model: str) -> bool:
        return model in self._pools
