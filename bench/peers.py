"""Peer gateways measured beside Crossroads in the same run, on the same cores.

Each peer is installed by ``bench/peers/setup.sh`` into ``.bench-peers/`` at
the repository root (never committed, never needed by the tests) and run with
its production settings:

- LiteLLM's proxy (PyPI ``litellm[proxy]``, its own virtual environment),
  one worker, error-level logs, no debug; models from a generated config.
- Portkey's AI gateway (npm ``@portkey-ai/gateway``, Node), headless,
  ``NODE_ENV=production``; the provider and the upstream's address are given
  per request in its ``x-portkey-*`` headers, as its documentation says.

Both take OpenAI chat requests and translate to Anthropic Messages when the
model is an Anthropic one, so both appear in every scenario.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / ".bench-peers"


@dataclass(frozen=True, slots=True)
class PeerRoute:
    path: str
    model: str
    headers: tuple[tuple[str, str], ...] = ()


class Peer:
    key: str
    label: str

    def missing(self) -> str | None:
        """Why this peer cannot run here (None: it can)."""
        raise NotImplementedError

    def command(self, port: int, upstream: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def route(self, translated: bool, upstream: str) -> PeerRoute:
        raise NotImplementedError


class LiteLLM(Peer):
    key = "litellm"
    label = "LiteLLM proxy"
    binary = PEERS_DIR / "litellm" / "bin" / "litellm"
    master_key = "sk-bench-0123456789abcdef0123456789abcdef"  # it refuses to start without one

    def missing(self) -> str | None:
        return None if self.binary.exists() else f"{self.binary} not found (bash bench/peers/setup.sh)"

    def command(self, port: int, upstream: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        config = workdir / "litellm.yaml"
        config.write_text(f"""\
model_list:
  - model_name: peer-chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{upstream}/v1", api_key: up-key}}
  - model_name: peer-claude
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{upstream}", api_key: up-key}}
litellm_settings:
  set_verbose: false
  telemetry: false
general_settings:
  master_key: {self.master_key}
""")
        env = {"LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "LITELLM_TELEMETRY": "False",
               "DISABLE_ADMIN_UI": "True", "NO_DOCS": "True"}
        return [str(self.binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                "--num_workers", "1"], env

    def route(self, translated: bool, upstream: str) -> PeerRoute:
        return PeerRoute("/v1/chat/completions", "peer-claude" if translated else "peer-chat",
                         (("Authorization", f"Bearer {self.master_key}"),))


class Portkey(Peer):
    key = "portkey"
    label = "Portkey gateway"
    script = PEERS_DIR / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"

    def missing(self) -> str | None:
        if shutil.which("node") is None:
            return "node not found"
        return None if self.script.exists() else f"{self.script} not found (bash bench/peers/setup.sh)"

    def command(self, port: int, upstream: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        return ["node", str(self.script), f"--port={port}", "--headless"], {"NODE_ENV": "production"}

    def route(self, translated: bool, upstream: str) -> PeerRoute:
        provider = "anthropic" if translated else "openai"
        model = "claude-sonnet-4-5" if translated else "gpt-4o-mini"
        return PeerRoute("/v1/chat/completions", model,
                         (("x-portkey-provider", provider), ("x-portkey-custom-host", f"{upstream}/v1")))


PEERS: dict[str, Peer] = {peer.key: peer for peer in (LiteLLM(), Portkey())}
