"""What the benchmark measures: the request bodies, the targets (direct, the
bare ASGI and bare RSGI pass-throughs, crossroads, peers) and the four scenarios.

Shared by bench/run.py, bench/hotpath.py, bench/soak.py and bench/streams.py
(the bench directory is not a package: each script puts it on sys.path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from peers import PEERS

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
CLIENT_KEY = "bench-key"
UPSTREAM_KEY = "up-key"
OPENAI_UPSTREAM_MODEL = "gpt-4o-mini"
ANTHROPIC_UPSTREAM_MODEL = "claude-sonnet-4-5"
CHAT_ALIAS = "bench-chat"
CLAUDE_ALIAS = "bench-claude"
CONCURRENCY = (32, 64)  # the loaded levels, each measured with wrk
HIGH_CONCURRENCY = CONCURRENCY[0]  # the level the goals are checked at (and --profile loads with)

# The two bare pass-throughs (bench/rawproxy.py): the ceiling a Python proxy can reach
# on each of granian's interfaces. "raw_proxy" keeps its old key in results.json.
BARES = ("raw_proxy", "raw_proxy_rsgi")
BASELINE = "raw_proxy"  # the goals are checked against bare ASGI (and shown against bare RSGI)
# The translated scenarios also carry Crossroads' own pass-through, measured in the same
# rounds, so the translated goal is a ratio taken within a round (as every other goal is).
OWN_PASSTHROUGH = "crossroads_passthrough"
NAMES = {"direct": "direct", "raw_proxy": "bare ASGI", "raw_proxy_rsgi": "bare RSGI", "crossroads": "Crossroads",
         OWN_PASSTHROUGH: "Crossroads pass-through"}


def short_name(key: str) -> str:
    """A target's name in the summary: the same in every scenario."""
    return NAMES[key] if key in NAMES else PEERS[key].label if key in PEERS else key


# ---------------------------------------------------------------------------- request bodies

SYSTEM_PROMPT = "You are a concise assistant. Answer in plain prose."
USER_PROMPT = "Summarise the plot of Hamlet in two sentences, naming the main characters."


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                     {"role": "user", "content": USER_PROMPT}],
        "max_tokens": 256, "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def messages_body(stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": ANTHROPIC_UPSTREAM_MODEL, "system": SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": USER_PROMPT}],
        "max_tokens": 256, "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


# ---------------------------------------------------------------------------- scenarios


@dataclass(frozen=True, slots=True)
class Target:
    key: str  # "direct" | "raw_proxy" | "raw_proxy_rsgi" | "crossroads" | OWN_PASSTHROUGH | a peer's key
    label: str
    port: int
    path: str
    body: bytes
    expect: tuple[bytes, ...]  # substrings a correct reply contains
    extra_headers: tuple[tuple[str, str], ...] = ()  # a peer gateway's routing headers

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    def headers(self) -> dict[str, str]:
        # The same headers everywhere: each hop ignores what it does not need.
        return {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}",
                "x-api-key": UPSTREAM_KEY, "anthropic-version": "2023-06-01", **dict(self.extra_headers)}

    def raw_request(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in self.headers().items()]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    family: str  # "passthrough" | "translated": which targets apply
    stream: bool
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Ports:
    upstream: int
    raw_proxy: int  # bare ASGI
    crossroads: int
    raw_proxy_rsgi: int = 0  # bare RSGI
    peers: dict[str, int] = field(default_factory=dict)  # peer gateway key -> port


def build_scenarios(ports: Ports) -> list[Scenario]:
    scenarios = []
    for stream in (False, True):
        suffix = "_stream" if stream else ""
        words = " (stream)" if stream else ""
        chat_done = (b"[DONE]", b"tok19") if stream else (b'"chat.completion"', b"Crossroads benchmark reply")
        direct_chat = chat_body(OPENAI_UPSTREAM_MODEL, stream)
        scenarios.append(Scenario(
            f"passthrough{suffix}", f"pass-through{words}: OpenAI chat -> OpenAI-compatible",
            "passthrough", stream, (
                Target("direct", "direct", ports.upstream, "/v1/chat/completions", direct_chat, chat_done),
                Target("raw_proxy", "bare ASGI", ports.raw_proxy, "/v1/chat/completions", direct_chat,
                       chat_done),
                Target("raw_proxy_rsgi", "bare RSGI", ports.raw_proxy_rsgi, "/v1/chat/completions",
                       direct_chat, chat_done),
                Target("crossroads", "crossroads", ports.crossroads, "/v1/chat/completions",
                       chat_body(CHAT_ALIAS, stream), chat_done),
                *peer_targets(ports, False, stream, chat_done),
            )))
        anthropic_done = (b"message_stop", b"tok19") if stream else (b'"type":"message"',)
        direct_messages = messages_body(stream)
        scenarios.append(Scenario(
            f"translated{suffix}", f"translated{words}: OpenAI chat -> Anthropic",
            "translated", stream, (
                Target("direct", "direct (Anthropic body)", ports.upstream, "/v1/messages",
                       direct_messages, anthropic_done),
                Target("raw_proxy", "bare ASGI (Anthropic body, no translation)", ports.raw_proxy,
                       "/v1/messages", direct_messages, anthropic_done),
                Target("raw_proxy_rsgi", "bare RSGI (Anthropic body, no translation)", ports.raw_proxy_rsgi,
                       "/v1/messages", direct_messages, anthropic_done),
                Target("crossroads", "crossroads (translates)", ports.crossroads, "/v1/chat/completions",
                       chat_body(CLAUDE_ALIAS, stream), chat_done),
                Target(OWN_PASSTHROUGH, "crossroads (pass-through, for the ratio)", ports.crossroads,
                       "/v1/chat/completions", chat_body(CHAT_ALIAS, stream), chat_done),
                *peer_targets(ports, True, stream, chat_done),
            )))
    return scenarios


def peer_targets(ports: Ports, translated: bool, stream: bool, expect: tuple[bytes, ...]) -> list[Target]:
    upstream = f"http://{HOST}:{ports.upstream}"
    found = []
    for key, port in ports.peers.items():
        peer = PEERS[key]
        route = peer.route(translated, upstream)
        found.append(Target(key, peer.label + (" (translates)" if translated else ""), port, route.path,
                            chat_body(route.model, stream), expect, route.headers))
    return found

