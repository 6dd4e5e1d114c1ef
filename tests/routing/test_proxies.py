"""Upstream calls through HTTP and SOCKS5 proxies (a real proxy server on
loopback), per account and globally; ``direct`` bypasses the global proxy."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.harness import RouterProcess, free_port

KEY = "test-key"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """pproxy serving http + socks5 on one loopback port, logging each tunnel."""
    port = free_port()
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    with log.open("wb") as out:
        # pproxy asks for a current loop at start, which uvloop refuses: run it on asyncio's own
        launcher = ("import sys, asyncio; sys.modules['uvloop'] = None; "
                    "asyncio.set_event_loop(asyncio.new_event_loop()); from pproxy.server import main; "
                    f"sys.argv = ['pproxy', '-l', 'http+socks5://127.0.0.1:{port}', '-v']; main()")
        process = subprocess.Popen([sys.executable, "-u", "-c", launcher], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            import socket

            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield port, log
        finally:
            process.kill()
            process.wait()


def ask(router: RouterProcess, model: str) -> str:
    client = anthropic.Anthropic(base_url=router.base_url, api_key="x", max_retries=0)
    reply = client.messages.create(model=model, max_tokens=32, messages=[{"role": "user", "content": model}])
    return reply.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "http"])
def test_account_proxy_carries_the_upstream_call(upstream: FakeAnthropic, proxy: tuple[int, Path],
                                                 scheme: str) -> None:
    port, log = proxy
    before = log.read_text(errors="replace").count(f":{upstream.port}")
    config = {"claude-api-key": [{"api-key": KEY, "base-url": upstream.base_url, "proxy-url": f"{scheme}://127.0.0.1:{port}",
                                  "models": [{"name": "claude-sonnet-4-5", "alias": "proxied"}]}]}
    with RouterProcess(config) as router:
        assert "You said: proxied" in ask(router, "proxied")
    time.sleep(0.2)
    assert log.read_text(errors="replace").count(f":{upstream.port}") > before, "the call did not go through the proxy"


def test_global_proxy_and_direct_bypass(upstream: FakeAnthropic) -> None:
    dead = free_port()  # nothing listens here: a call through it must fail
    config = {"proxy-url": f"socks5://127.0.0.1:{dead}", "request-retry": 0, "claude-api-key": [
        {"api-key": KEY, "base-url": upstream.base_url, "models": [{"name": "claude-sonnet-4-5", "alias": "via-global"}]},
        {"api-key": KEY, "base-url": upstream.base_url, "proxy-url": "direct",
         "models": [{"name": "claude-sonnet-4-5", "alias": "bypass"}]}]}
    with RouterProcess(config) as router:
        assert "You said: bypass" in ask(router, "bypass")
        with pytest.raises(anthropic.APIStatusError, match="unreachable"):
            ask(router, "via-global")
