"""The Next.js frontend's production server, server.mjs (`npm start`, the image's CMD), over a
real `next build`, with a loopback upstream in the backend's place that answers with the
X-Forwarded-For it was sent.

The /chatkit proxy tells the backend the connection's peer as the client, never the
client's own X-Forwarded-For (the backend counts its per-IP limits by that address);
TRUSTED_PROXIES names proxies in front whose header is believed; a bad TRUSTED_PROXIES stops
the server, saying what to write. The build's hashed assets go out as the .br and .gz files
the build wrote, with the headers Next.js gives them.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

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


# What differs between two encodings of one file; every other header must be the same.
ENCODING_HEADERS = {
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "etag",
    "last-modified",
    "accept-ranges",
    "date",
    "connection",
    "keep-alive",
}


def get(
    url: str, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One request, its body as sent (not decoded); header names in lower case."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(
            method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def unbrotli(data: bytes) -> bytes:
    script = (
        "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
    )
    return subprocess.run(
        ["node", "-e", script], input=data, capture_output=True, check=True
    ).stdout


def test_hashed_assets_go_out_precompressed_with_the_headers_next_sends(
    build: FrontendBuild, upstream: str, tmp_path: Path
) -> None:
    """The build's .br goes to a browser that takes brotli, its .gz to one that takes only
    gzip, each with every header Next.js sends for the file itself (the security headers,
    the immutable Cache-Control, the type, Vary)."""
    server, url = start(build, upstream, tmp_path)
    static = build.frontend_dir / ".next" / "static"
    try:
        _, _, html = get(url, "/", Accept_Encoding="identity")
        assets = sorted(set(re.findall(r"/_next/static/[^\"']+\.(?:js|css)", html.decode())))
        assert {Path(a).suffix for a in assets} == {".js", ".css"}, assets
        for asset in assets:
            file = static / asset.removeprefix("/_next/static/")
            _, plain, source = get(url, asset, Accept_Encoding="identity")  # Next.js itself
            assert "content-encoding" not in plain and source == file.read_bytes()
            nexts = {k: v for k, v in plain.items() if k not in ENCODING_HEADERS}
            status, br, body = get(url, asset, Accept_Encoding="gzip, deflate, br, zstd")
            assert (status, br["content-encoding"]) == (200, "br"), (asset, br)
            assert body == file.with_name(file.name + ".br").read_bytes()
            assert unbrotli(body) == source, asset
            _, gz, zipped = get(url, asset, Accept_Encoding="gzip, br;q=0")
            assert gz["content-encoding"] == "gzip" and gzip.decompress(zipped) == source
            assert zipped == file.with_name(file.name + ".gz").read_bytes()
            for sent in (br, gz):
                assert {k: v for k, v in sent.items() if k not in ENCODING_HEADERS} == nexts
            assert br["cache-control"] == "public, max-age=31536000, immutable"
            assert br["x-content-type-options"] == "nosniff" and br["vary"] == "Accept-Encoding"
        asset = assets[0]
        _, br, _ = get(url, asset, Accept_Encoding="br")
        assert get(url, asset, Accept_Encoding="br", If_None_Match=br["etag"])[0] == 304
        status, head, body = get(url, asset, "HEAD", Accept_Encoding="br")
        assert (status, head["content-encoding"], body) == (200, "br", b"")
        # A condition of next.config.ts's headers holds for these responses too.
        _, https, _ = get(url, asset, Accept_Encoding="br", X_Forwarded_Proto="https")
        assert https["content-encoding"] == "br" and "strict-transport-security" in https
        assert get(url, "/_next/static/chunks/none.js", Accept_Encoding="br")[0] == 404
    finally:
        server.stop()
