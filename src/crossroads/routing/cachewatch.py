"""Why a turn did or did not read the provider's prompt cache.

Per conversation this replica remembers its last turn: the account that
answered, the cache key the client sent (``prompt_cache_key``) and a hash of
everything the turn sent (system, tools, messages). The next turn is hashed
in one pass, taking the hash at the previous turn's length on the way: if
that differs from the previous turn's hash, the cacheable prefix changed.

A turn that read cached tokens (the upstream's own usage fields) is a
``hit``. One that did not, though the conversation continued, gets the
likeliest reason, in this order: ``different account`` than the previous
turn, ``changed cache key``, ``changed prefix``, else ``upstream's decision``
(same account, key and prefix: the provider evicted or declined). The first
turn of a conversation is ``new conversation``. An upstream that does not
report cached tokens says nothing (None).

Conversations are known by the client's session header (Claude Code,
Codex, OpenCode...) or, failing that, by their opening (system prompt and
first user turn), never by the cache key, so a changed key is seen.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from crossroads import ir
from crossroads.routing.sticky import SESSION_HEADERS, opening_hash

MAX_CONVERSATIONS = 100_000
_TURNS = ("messages", "input", "contents")
_FIXED = ("system", "instructions", "systemInstruction", "tools")


@dataclass(slots=True, frozen=True)
class _Last:
    account: str
    cache_key: str | None
    length: int  # how many turns it sent
    digest: bytes  # hash of all it sent
    seen: float


@dataclass(slots=True, frozen=True)
class Turn:
    conversation: str
    previous: _Last | None
    prefix_kept: bool  # the previous turn's content is this turn's prefix
    cache_key: str | None
    length: int
    digest: bytes


class CacheWatch:
    def __init__(self, ttl: float = 3600.0) -> None:
        self.ttl = ttl
        self._last: dict[str, _Last] = {}

    def begin(self, headers: Mapping[str, str], body: dict[str, Any]) -> Turn | None:
        """The turn ``body`` makes (None when it cannot be followed: no conversation to name, or
        content the encoder cannot take — the request was answered; only the explanation is lost)."""
        try:
            return self._begin(headers, body)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return None

    def _begin(self, headers: Mapping[str, str], body: dict[str, Any]) -> Turn | None:
        conversation = _conversation(headers, body)
        if conversation is None:
            return None
        previous = self._last.get(conversation)
        if previous is not None and time.monotonic() - previous.seen > self.ttl:
            previous = None
        turns = next((body[f] for f in _TURNS if isinstance(body.get(f), list)), None)
        turns = turns if turns is not None else [body.get("input") or body.get("prompt")]
        digest = hashlib.blake2b(digest_size=16)
        for name in _FIXED:
            value = body.get(name)
            if value is not None:
                digest.update(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
        at_previous = digest.digest() if previous is not None and previous.length == 0 else None
        for index, turn in enumerate(turns):
            digest.update(orjson.dumps(turn, option=orjson.OPT_SORT_KEYS))
            if previous is not None and index + 1 == previous.length:
                at_previous = digest.digest()
        cache_key = body.get("prompt_cache_key")
        return Turn(conversation, previous, previous is not None and at_previous == previous.digest,
                    cache_key if isinstance(cache_key, str) else None, len(turns), digest.digest())

    def explain(self, turn: Turn, account_id: str, usage: ir.Usage | None) -> str | None:
        """The explanation for the answered turn, remembered for the next one."""
        self._remember(turn, account_id)
        if usage is None or usage.cache_read_tokens is None:
            return None  # the upstream does not say: nothing to explain
        if usage.cache_read_tokens > 0:
            return "hit"
        previous = turn.previous
        if previous is None:
            return "miss: new conversation"
        if previous.account != account_id:
            return "miss: different account than the previous turn"
        if previous.cache_key != turn.cache_key:
            return "miss: changed cache key"
        if not turn.prefix_kept:
            return "miss: changed prefix"
        return "miss: upstream's decision"

    def _remember(self, turn: Turn, account_id: str) -> None:
        entries = self._last
        if len(entries) >= MAX_CONVERSATIONS and turn.conversation not in entries:
            cutoff = time.monotonic() - self.ttl
            self._last = entries = {k: v for k, v in entries.items() if v.seen >= cutoff}
            if len(entries) >= MAX_CONVERSATIONS:
                entries.clear()
        entries[turn.conversation] = _Last(account_id, turn.cache_key, turn.length, turn.digest, time.monotonic())


def _conversation(headers: Mapping[str, str], body: dict[str, Any]) -> str | None:
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value:
            return f"h:{value}"
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        return f"u:{metadata['user_id']}"  # Claude Code: its session is part of it
    return opening_hash(body)
