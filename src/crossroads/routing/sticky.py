"""Session affinity: a conversation keeps landing on the same account, so the
provider's prompt cache keeps hitting."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import orjson

from crossroads.state import State

# Claude Code, Codex (session_id, conversation_id), OpenCode (x-opencode-session, x-session-affinity), others
SESSION_HEADERS = ("x-claude-code-session-id", "session_id", "session-id", "x-session-id", "x-opencode-session",
                   "x-session-affinity", "conversation_id", "x-conversation-id")
MAX_ENTRIES = 100_000


def session_key(headers: Mapping[str, str], body: dict[str, Any]) -> str | None:
    """The conversation's identity, from the most specific signal available:
    the client's session header, ``prompt_cache_key``, Anthropic
    ``metadata.user_id``, else a hash of the conversation's opening."""
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value:
            return f"h:{value}"
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return f"p:{cache_key}"
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return f"u:{user_id}"
    return opening_hash(body)


def opening_hash(body: dict[str, Any]) -> str | None:
    """The conversation's opening (system prompt and first user turn), hashed:
    the same on every turn of a conversation from a client that names none."""
    opening = _opening(body)
    if opening is None:
        return None
    try:
        encoded = orjson.dumps(opening)
    except orjson.JSONEncodeError:  # nesting or numbers beyond what the encoder takes: no affinity, no failure
        return None
    return "c:" + hashlib.blake2b(encoded, digest_size=12).hexdigest()


def _opening(body: dict[str, Any]) -> Any:
    for field in ("messages", "input", "contents"):
        turns = body.get(field)
        if isinstance(turns, list) and turns:
            first_user = next((t for t in turns if isinstance(t, dict) and t.get("role") == "user"), turns[0])
            return [body.get("system") or body.get("instructions") or body.get("systemInstruction"), first_user]
        if isinstance(turns, str) and turns:
            return [body.get("instructions"), turns]
    prompt = body.get("prompt")
    return prompt if prompt else None


class Affinity:
    """Which account each conversation sticks to. Lookups are local; with a
    shared state, ``recall`` fetches a conversation this replica has not seen
    (once), and ``remember`` writes through in the background."""

    def __init__(self, ttl: float = 3600.0, state: State | None = None) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._state = state if state is not None and state.shared else None

    async def recall(self, model: str, session: str) -> None:
        """Make ``get`` know what other replicas remembered for this conversation."""
        if self._state is None or self.get(model, session) is not None:
            return
        account_id = await self._state.get_affinity(model, session)
        if account_id is not None:
            self._store(model, session, account_id, time.monotonic())

    def get(self, model: str, session: str) -> str | None:
        entry = self._entries.get((model, session))
        if entry is None:
            return None
        account_id, expires = entry
        if expires < time.monotonic():
            del self._entries[(model, session)]
            return None
        return account_id

    def remember(self, model: str, session: str, account_id: str) -> None:
        now = time.monotonic()
        if self._state is not None:
            known = self._entries.get((model, session))
            # write through when the account changes or half the TTL has passed, not on every turn
            if known is None or known[0] != account_id or known[1] - now < self.ttl / 2:
                self._state.set_affinity(model, session, account_id, self.ttl)
        self._store(model, session, account_id, now)

    def _store(self, model: str, session: str, account_id: str, now: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {k: v for k, v in self._entries.items() if v[1] >= now}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[(model, session)] = (account_id, now + self.ttl)
