"""A conversation as the text turns a web chat takes in one prompt (the web
apps keep their own history; Crossroads sends the whole conversation each time)."""

from __future__ import annotations

from crossroads import ir


def turns(request: ir.Request) -> list[tuple[str, str]]:
    """(role, text) for the system prompt and each message that has text, in order
    (images, files and other non-text parts are not sent)."""
    found: list[tuple[str, str]] = []
    system = "\n".join(part.text for part in request.system)
    if system:
        found.append(("system", system))
    for message in request.messages:
        text = "\n".join(part.text for part in message.parts if isinstance(part, ir.TextPart))
        if text:
            found.append((message.role, text))
    return found
