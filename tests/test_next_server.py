"""The Next.js frontend's production server, server.mjs (`npm start`, the image's CMD), over a
real `next build`, with a loopback upstream in the backend's place that answers with the
X-Forwarded-For it was sent.

The /chatkit proxy tells the backend the connection's peer as the client, never the
client's own X-Forwarded-For (the backend counts its per-IP limits by that address);
TRUSTED_PROXIES names proxies in front whose header is believed; a bad TRUSTED_PROXIES stops
the server, saying what to write.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser_support.frontend_build import FrontendBuild, free_port, get_build
from tests.browser_support.servers import Server, serving

# Module scope and `kind`: the same parallel group as the other users of the Next.js build.
pytestmark = pytest.mark.parametrize("kind", ["nextjs"], scope="module")

SPOOFED = "203.0.113.66"


class EchoForwardedFor(BaseHTTPRequestHandler):
    """The backend's stand-in: answers with the X-Forwarded-For the proxy sent."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"x-forwarded-for": self.headers.get("X-Forwarded-For")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def build(kind: str, tmp_path_factory: pytest.TempPathFactory) -> FrontendBuild:
    return get_build(kind, tmp_path_factory)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoForwardedFor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def server_command(port: int) -> list[str]:
    return ["node", "server.mjs", "--hostname", "127.0.0.1", "--port", str(port)]


def start(build: FrontendBuild, upstream: str, workdir: Path, **env: str) -> tuple[Server, str]:
    port = free_port()
    env = {"BACKEND_URL": upstream, "NEXT_TELEMETRY_DISABLED": "1", **env}
    server = Server(
        "next server.mjs", server_command(port), build.frontend_dir, env, workdir / "log"
    )
    return serving(server, f"http://127.0.0.1:{port}")


def forwarded_for(url: str, claimed: str | None) -> str:
    """The client address the backend is told, when the client claims `claimed`."""
    headers = {"Content-Type": "application/json"}
    if claimed is not None:
        headers["X-Forwarded-For"] = claimed
    request = urllib.request.Request(url + "/chatkit", data=b"{}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["x-forwarded-for"]


def test_the_client_cannot_name_its_own_address(
    build: FrontendBuild, upstream: str, tmp_path: Path
) -> None:
    server, url = start(build, upstream, tmp_path)
    try:
        assert forwarded_for(url, SPOOFED) == "127.0.0.1"
        assert forwarded_for(url, f"{SPOOFED}, 198.51.100.7") == "127.0.0.1"
        assert forwarded_for(url, None) == "127.0.0.1"
    finally:
        server.stop()


def test_behind_trusted_proxies_their_client_is_forwarded(
    build: FrontendBuild, upstream: str, tmp_path: Path
) -> None:
    """This test's address as a proxy in front, and a network of further proxies: the client
    is the right-most address that is none of them; what came before it is ignored."""
    server, url = start(build, upstream, tmp_path, TRUSTED_PROXIES="127.0.0.1, 192.0.2.0/24")
    try:
        claimed = f"{SPOOFED}, 198.51.100.7, 192.0.2.5"
        assert forwarded_for(url, claimed) == "198.51.100.7"
        # Only proxies in the header: the first of them is the client.
        assert forwarded_for(url, "192.0.2.9, 192.0.2.5") == "192.0.2.9"
    finally:
        server.stop()


def test_a_bad_trusted_proxies_stops_the_server(build: FrontendBuild, upstream: str) -> None:
    result = subprocess.run(
        server_command(free_port()),
        cwd=build.frontend_dir,
        env={
            **os.environ,
            "NEXT_TELEMETRY_DISABLED": "1",
            "BACKEND_URL": upstream,
            "TRUSTED_PROXIES": "10.0.0.5,10.0.0.0/",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert 'TRUSTED_PROXIES: "10.0.0.0/" is not an IP address or network' in result.stderr
    assert "e.g. 10.0.0.5,172.16.0.0/12" in result.stderr
