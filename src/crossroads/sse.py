"""Server-sent-events framing."""

from __future__ import annotations


def frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE event. ``data`` must be a single line (compact JSON is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
