"""Run one fake standalone: `python -m tests.fakes anthropic|openai-chat|openai-responses|gemini --port N`."""

from __future__ import annotations

import argparse
import importlib
import threading

from .common import FakeServer

# Imported lazily: each fake pulls in its SDK's (large) type modules.
FAKES: dict[str, tuple[str, str]] = {
    "anthropic": ("anthropic", "FakeAnthropic"),
    "openai-chat": ("openai_chat", "FakeOpenAIChat"),
    "openai-responses": ("openai_responses", "FakeOpenAIResponses"),
    "gemini": ("gemini", "FakeGemini"),
    "aistudio": ("side_services", "FakeAIStudio"),
    "webai": ("side_services", "FakeWebAI"),
    "ctonew": ("side_services", "FakeCtonew"),
}


def fake_class(kind: str) -> type[FakeServer]:
    module_name, class_name = FAKES[kind]
    module = importlib.import_module(f"{__package__}.{module_name}")
    fake: type[FakeServer] = getattr(module, class_name)
    return fake


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("kind", choices=sorted(FAKES))
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", action="append", dest="api_keys", help="accepted key (repeatable)")
    args = parser.parse_args()
    fake = fake_class(args.kind)(api_keys=args.api_keys or ["test-key"], host=args.host, port=args.port)
    fake.start()
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
