"""CLIProxyAPI's ``request-scoped-errors`` (per config entry) and
``oauth-request-scoped-errors`` (per auth-file channel): rules that decide
what an upstream error means for this request and this account, before the
provider's own classification::

    request-scoped-errors:
      - status: 400
        match: ["context_length_exceeded"]        # any of these substrings...
        match-regexr: ["maximum_context_length$"] # ...or any of these expressions
        action: stop   # stop | stop-and-cooldown | continue | continue-and-cooldown

``stop`` returns the error to the client at once, ``continue`` tries the next
account; ``-and-cooldown`` also cools this account for the model. The first
rule whose status and text match wins; the text is the upstream's error code
and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from crossroads import ir
from crossroads.providers.base import Outcome

ACTIONS = ("stop", "stop-and-cooldown", "continue", "continue-and-cooldown")


@dataclass(frozen=True, slots=True)
class ErrorRule:
    status: int
    match: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    action: str

    def matches(self, error: ir.Error) -> bool:
        if error.status != self.status:
            return False
        texts = (error.message, error.code or "")
        return any(s in text for s in self.match for text in texts) or any(
            p.search(text) for p in self.patterns for text in texts)

    def outcome(self, base: Outcome) -> Outcome:
        cool = self.action.endswith("-and-cooldown")
        scope = (base.scope if base.scope != "none" else "model") if cool else "none"
        return Outcome(retry=self.action.startswith("continue"), scope=scope, seconds=base.seconds,
                       needs_login=base.needs_login)


def parse(rules: Any, where: str) -> tuple[ErrorRule, ...]:
    """The rules of one entry (raise ValueError naming the place at fault)."""
    if rules is None:
        return ()
    if not isinstance(rules, list):
        raise ValueError(f"{where}: must be a list of rules")
    parsed = []
    for index, rule in enumerate(rules):
        here = f"{where}[{index}]"
        if not isinstance(rule, dict):
            raise ValueError(f"{here}: must be a mapping of status, match, match-regexr and action")
        status, action = rule.get("status"), str(rule.get("action") or "").strip().lower()
        if isinstance(status, bool) or not isinstance(status, int) or status <= 0:
            raise ValueError(f"{here}: 'status' must be an HTTP status, got {status!r}")
        if action not in ACTIONS:
            raise ValueError(f"{here}: 'action' must be one of {', '.join(ACTIONS)}, got {action!r}")
        match = _strings(rule.get("match"), f"{here}.match")
        expressions = _strings(rule.get("match-regexr"), f"{here}.match-regexr")
        try:
            patterns = tuple(re.compile(e) for e in expressions)
        except re.error as exc:
            raise ValueError(f"{here}.match-regexr: {exc}") from None
        if not match and not patterns:
            raise ValueError(f"{here}: needs 'match' or 'match-regexr'")
        parsed.append(ErrorRule(status, match, patterns, action))
    return tuple(parsed)


def decide(rules: tuple[ErrorRule, ...], error: ir.Error, base: Outcome) -> Outcome:
    for rule in rules:
        if rule.matches(error):
            return rule.outcome(base)
    return base


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: must be a list of strings")
    return tuple(v for v in value if v)
