"""Names, enums and wire tables of the openai_chat dialect."""

from __future__ import annotations

from typing import Any

NAME = "openai-chat"


FORM = "openai-chat:form"


JSON = dict[str, Any]
