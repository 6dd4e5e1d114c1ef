"""CLIProxyAPI's ``passthrough-headers: true``: the upstream's response
headers go on to the client, except those that describe the connection or
the body Crossroads sends itself, cookies, and the marks AI gateways add."""

from __future__ import annotations

from collections.abc import Iterable

_NOT_FORWARDED = frozenset({
    # hop by hop (RFC 9110 7.6.1)
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade",
    # the body and the reply are the router's own
    "content-length", "content-encoding", "content-type", "date", "server", "x-request-id", "cache-control",
    "x-accel-buffering",
    # never a client's business
    "set-cookie",
})
_GATEWAY_PREFIXES = ("x-litellm-", "helicone-", "x-portkey-", "cf-aig-", "x-kong-", "x-bt-", "access-control-")


def forwardable(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    out = []
    named_by_connection: set[str] = set()
    pairs = list(headers)
    for name, value in pairs:
        if name.lower() == "connection":
            named_by_connection.update(token.strip().lower() for token in value.split(","))
    for name, value in pairs:
        lower = name.lower()
        if lower in _NOT_FORWARDED or lower in named_by_connection or lower.startswith(_GATEWAY_PREFIXES):
            continue
        out.append((lower.encode("latin-1"), value.encode("latin-1", "replace")))
    return out
