"""Image URLs in requests cannot reach the router's own network: every
address form of loopback, private and metadata addresses, and redirects to
them, through every door whose requests get their images inlined."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import urllib3

from tests.conformance.drivers import PNG
from tests.fakes.gemini import FakeGemini
from tests.harness import CLIENT_KEY, RouterProcess

FAKE_KEY = "test-key"
http = urllib3.PoolManager(retries=False)


class _Target:
    """A loopback service that must never be reached; it counts every hit."""

    def __init__(self, host: str, family: int = socket.AF_INET, redirect_to: str | None = None) -> None:
        self.hits = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if redirect_to is not None and self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("location", redirect_to + self.path.removeprefix("/redirect"))
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                target.hits += 1
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = family

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, _Target]]:
    inside = _Target("127.0.0.1")
    found = {"v4": inside,
             # an allowed image host (127.0.0.2 is listed in allowed-networks) that redirects inside
             "redirector": _Target("127.0.0.2", redirect_to=f"http://127.0.0.1:{inside.port}")}
    with contextlib.suppress(OSError):
        found["v6"] = _Target("::1", socket.AF_INET6)
    yield found
    for target in found.values():
        target.close()


@pytest.fixture(scope="module")
def router(targets: dict[str, _Target]) -> Iterator[RouterProcess]:
    gemini = FakeGemini(api_keys=[FAKE_KEY]).start()
    config = {"api-keys": [CLIENT_KEY], "image-fetch": {"allowed-networks": ["127.0.0.2/32"], "timeout": 3},
              "gemini-api-key": [{"api-key": FAKE_KEY, "base-url": gemini.base_url,
                                  "models": ["gemini-2.5-flash"]}]}
    with RouterProcess(config) as r:
        yield r
    gemini.stop()


def _forms(targets: dict[str, _Target]) -> list[str]:
    p = targets["v4"].port
    forms = [f"http://127.0.0.1:{p}/a.png", f"http://localhost:{p}/a.png", f"http://0.0.0.0:{p}/a.png",
             f"http://user@127.0.0.1:{p}/a.png", f"http://user:pw@localhost:{p}/a.png",
             f"http://2130706433:{p}/a.png", f"http://0x7f000001:{p}/a.png", f"http://127.1:{p}/a.png",
             f"http://017700000001:{p}/a.png", f"http://127.000.000.001:{p}/a.png",
             f"http://[::ffff:127.0.0.1]:{p}/a.png", f"http://[::ffff:7f00:1]:{p}/a.png",
             f"http://LOCALHOST.:{p}/a.png", f"https://127.0.0.1:{p}/a.png",
             f"http://127.0.0.2:{targets['redirector'].port}/redirect/a.png",
             "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a.png", "http://192.168.1.1/a.png",
             "http://172.16.0.1/a.png", "http://100.64.0.1/a.png", "http://224.0.0.1/a.png",
             "http://[fd00::1]/a.png", "http://[fe80::1]/a.png", "http://[64:ff9b::7f00:1]/a.png"
             ]
    if "v6" in targets:
        forms += [f"http://[::1]:{targets['v6'].port}/a.png", f"http://[0:0:0:0:0:0:0:1]:{targets['v6'].port}/a.png"]
    return forms


def _bodies(url: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "openai-chat": ("/v1/chat/completions", {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}]}),
        "openai-responses": ("/v1/responses", {"model": "gemini-2.5-flash", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": url}]}]}),
        "anthropic": ("/v1/messages", {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image", "source": {"type": "url", "url": url}}]}]}),
    }


@pytest.mark.parametrize("door", ["openai-chat", "openai-responses", "anthropic"])
def test_no_image_url_reaches_inside(router: RouterProcess, targets: dict[str, _Target], door: str) -> None:
    for url in _forms(targets):
        path, body = _bodies(url)[door]
        started = time.monotonic()
        r = http.request("POST", f"{router.base_url}{path}", body=orjson.dumps(body),
                         headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
        assert time.monotonic() - started < 4, url
        assert r.status == 400, (url, r.status, r.data[:300])
        text = r.data.decode()
        for leak in ("refused", "HTTP 200", "Errno", "resolve", "timeout", "ClientConnector", "not public"):
            assert leak not in text, (url, text)
    assert all(t.hits == 0 for name, t in targets.items() if name != "redirector"), \
        {name: t.hits for name, t in targets.items()}


def test_an_allowed_network_is_fetched(router: RouterProcess, targets: dict[str, _Target]) -> None:
    path, body = _bodies(f"http://127.0.0.2:{targets['redirector'].port}/pixel.png")["openai-chat"]
    r = http.request("POST", f"{router.base_url}{path}", body=orjson.dumps(body),
                     headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
    assert r.status == 200, r.data[:300]
    assert targets["redirector"].hits == 1


def test_too_many_image_urls_are_refused_before_any_fetch(router: RouterProcess, targets: dict[str, _Target]) -> None:
    url = f"http://127.0.0.2:{targets['redirector'].port}/pixel.png"
    before = targets["redirector"].hits
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": f"{url}?{n}"}} for n in range(200)]
    r = http.request("POST", f"{router.base_url}/v1/chat/completions",
                     body=orjson.dumps({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": content}]}),
                     headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
    assert r.status == 400 and b"at most 16" in r.data
    assert targets["redirector"].hits == before
