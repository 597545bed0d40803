"""The Vite image's nginx config, run by Debian's nginx on loopback over a real `vite build`.

tests/browser_support/nginx.py renders nginx.conf.template as the image does; a tiny loopback
upstream stands in for the backend under /chatkit. Checked from outside, over HTTP: compressed
assets (gzip, and br where nginx has the module), an uncompressed and unbuffered /chatkit,
the client address the backend is told (never the client's own X-Forwarded-For), the security
headers on every page response, cache headers and the favicon.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import os
import queue
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser_support.frontend_build import FrontendBuild, free_port, get_build
from tests.browser_support.nginx import nginx_command, require_nginx
from tests.browser_support.servers import Server, serving

# Module scope, so one build and one nginx serve every test; `kind` puts them in the same
# parallel group as the other users of the Vite build (tests/conftest.py).
pytestmark = pytest.mark.parametrize("kind", ["vite"], scope="module")

BROTLI_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")
CDN = "https://cdn.platform.openai.com"
ALWAYS_ENFORCED = ("frame-ancestors 'self'", "object-src 'none'", "base-uri 'self'")
PAGE_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
EVENTS = 6
# Only a deadlock guard: each event waits for the previous one to have arrived.
EVENT_WAIT_SECONDS = 20
PREVIEW_POLICY = "default-src 'none'; sandbox"


@dataclass
class Upstream:
    """The backend's stand-in: an event stream that sends each event only once the client
    has received the one before, and an attachment preview with its own policy."""

    url: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)
    acks: queue.Queue[int] = field(default_factory=queue.Queue)
    unacked: list[int] = field(default_factory=list)


def make_handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            upstream.seen.append({"path": self.path, **dict(self.headers.items())})
            if self.path.startswith("/chatkit/attachments/"):
                body = b"\x89PNG preview bytes"
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Security-Policy", PREVIEW_POLICY)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for number in range(EVENTS):
                self.wfile.write(f"data: {number}\n\n".encode())
                self.wfile.flush()
                try:
                    upstream.acks.get(timeout=EVENT_WAIT_SECONDS)
                except queue.Empty:
                    upstream.unacked.append(number)
                    return

    return Handler


@pytest.fixture(scope="module")
def build(kind: str, tmp_path_factory: pytest.TempPathFactory) -> FrontendBuild:
    require_nginx()
    return get_build(kind, tmp_path_factory)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    state = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def start_nginx(
    frontend: Path,
    backend_url: str,
    workdir: Path,
    *,
    root: Path | None = None,
    extra_main: str = "",
    extra_server: str = "",
) -> tuple[Server, str]:
    port = free_port()
    command = nginx_command(
        frontend,
        backend_url,
        port,
        workdir / "prefix",
        root=root,
        extra_main=extra_main,
        extra_server=extra_server,
    )
    server = Server("nginx", command, workdir, {}, workdir / "nginx.log")
    return serving(server, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def served(
    build: FrontendBuild, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    server, url = start_nginx(build.frontend_dir, upstream.url, tmp_path_factory.mktemp("nginx"))
    yield url
    server.stop()


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def get(url: str, path: str, headers: dict[str, str] | None = None) -> Response:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def built_files(build: FrontendBuild, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in build.output_dir.rglob("*") if p.suffix in suffixes)


def url_path(build: FrontendBuild, path: Path) -> str:
    return "/" + path.relative_to(build.output_dir).as_posix()


# --- compression ----------------------------------------------------------------------------


def test_assets_and_page_arrive_gzipped(build: FrontendBuild, served: str) -> None:
    files = built_files(build, (".js", ".css", ".html", ".svg"))
    assert {p.suffix for p in files} >= {".js", ".css", ".html"}
    for path in files:
        raw = path.read_bytes()
        zipped = get(served, url_path(build, path), {"Accept-Encoding": "gzip"})
        assert zipped.status == 200, path.name
        assert zipped.header("Content-Encoding") == "gzip", path.name
        assert "Accept-Encoding" in (zipped.header("Vary") or ""), path.name
        assert gzip.decompress(zipped.body) == raw, path.name
        assert len(zipped.body) < len(raw), path.name
        plain = get(served, url_path(build, path))
        assert plain.header("Content-Encoding") is None, path.name
        assert plain.body == raw, path.name
    # The page itself, under its usual URL and a client-side route.
    for route in ("/", "/some/client/route"):
        page = get(served, route, {"Accept-Encoding": "gzip, deflate, br"})
        assert page.header("Content-Encoding") == "gzip"
        assert gzip.decompress(page.body) == (build.output_dir / "index.html").read_bytes()


def test_files_without_a_precompressed_copy_are_gzipped_on_the_fly(
    build: FrontendBuild, upstream: Upstream, tmp_path: Path
) -> None:
    """A compressible file the build did not compress (one added to dist/ by hand)."""
    root = tmp_path / "html"
    shutil.copytree(build.output_dir, root)
    data = '{"note": "added after the build", "items": [' + ", ".join(["1"] * 400) + "]}\n"
    (root / "extra.json").write_text(data)
    server, url = start_nginx(build.frontend_dir, upstream.url, tmp_path, root=root)
    try:
        response = get(url, "/extra.json", {"Accept-Encoding": "gzip"})
        assert response.header("Content-Type") == "application/json"
        assert response.header("Content-Encoding") == "gzip"
        assert gzip.decompress(response.body) == data.encode()
    finally:
        server.stop()


def test_brotli_where_nginx_has_the_module(
    build: FrontendBuild, upstream: Upstream, tmp_path: Path
) -> None:
    """The image's nginx has no brotli module; Debian's has one as a package. With it and the
    one line the config's comment names, the build's .br files are sent as they are."""
    if not BROTLI_MODULE.exists():
        pytest.skip(f"no {BROTLI_MODULE} (apt-get install libnginx-mod-http-brotli-static)")
    server, url = start_nginx(
        build.frontend_dir,
        upstream.url,
        tmp_path,
        extra_main=f"load_module {BROTLI_MODULE};\n",
        extra_server="brotli_static on;",
    )
    try:
        for path in built_files(build, (".js", ".css")):
            response = get(url, url_path(build, path), {"Accept-Encoding": "gzip, br"})
            assert response.header("Content-Encoding") == "br", path.name
            assert response.body == path.with_name(path.name + ".br").read_bytes()
    finally:
        server.stop()


# --- /chatkit -------------------------------------------------------------------------------


def test_chatkit_streams_event_by_event_uncompressed(served: str, upstream: Upstream) -> None:
    """Each event reaches the client before the upstream sends the next one: nothing is
    buffered or compressed on the way."""
    host, port = served.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=EVENT_WAIT_SECONDS + 10)
    try:
        headers = {"Accept-Encoding": "gzip, br", "Host": "chat.example"}
        connection.request("GET", "/chatkit/stream", headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        assert response.headers.get("Content-Encoding") is None
        assert response.headers.get("Content-Type") == "text/event-stream"
        # The page's headers stay off /chatkit: the backend sends its own.
        assert response.headers.get("Content-Security-Policy-Report-Only") is None
        received: list[int] = []
        while len(received) < EVENTS:
            line = response.readline()
            assert line, f"the stream ended after {received}"
            if line.startswith(b"data: "):
                received.append(int(line[6:]))
                upstream.acks.put(received[-1])
        assert received == list(range(EVENTS))
    finally:
        connection.close()
    assert upstream.unacked == []
    request = next(seen for seen in upstream.seen if seen["path"] == "/chatkit/stream")
    assert "Accept-Encoding" not in request
    assert request["X-Forwarded-Proto"] == "http"
    assert request["X-Forwarded-Host"] == "chat.example"


def test_attachment_previews_keep_the_backend_policy(served: str) -> None:
    response = get(served, "/chatkit/attachments/preview", {"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.headers.get_all("Content-Security-Policy") == [PREVIEW_POLICY]
    assert response.header("Content-Security-Policy-Report-Only") is None
    assert response.header("X-Frame-Options") is None


SPOOFED = "203.0.113.66"
# The realip lines the template's comment suggests for a proxy in front.
REALIP_COMMENT = re.compile(
    r"^\s*#\s+((?:set_real_ip_from|real_ip_header|real_ip_recursive)\b[^;]*;)", re.M
)


def forwarded_for(url: str, upstream: Upstream, path: str, claimed: str) -> str:
    """What the backend is told the client's address is, when the client claims `claimed`."""
    assert get(url, path, {"X-Forwarded-For": claimed}).status == 200
    return next(seen for seen in upstream.seen if seen["path"] == path)["X-Forwarded-For"]


def test_the_client_cannot_name_its_own_address(served: str, upstream: Upstream) -> None:
    """The backend gets the peer nginx saw (this test, on 127.0.0.1), never the client's own
    X-Forwarded-For, which would let it pick its address and escape the per-IP limits."""
    seen = forwarded_for(served, upstream, "/chatkit/attachments/spoof", SPOOFED)
    assert seen == "127.0.0.1"


def test_behind_a_trusted_proxy_its_client_is_forwarded(
    build: FrontendBuild, upstream: Upstream, tmp_path: Path
) -> None:
    """With the realip lines the template's comment gives, trusting this test's address as
    the proxy in front: the address that proxy appended is the client, and what the client
    wrote before it is still ignored."""
    template = (build.frontend_dir / "nginx.conf.template").read_text()
    lines = REALIP_COMMENT.findall(template)
    assert [line.split()[0] for line in lines] == [
        "set_real_ip_from",
        "real_ip_header",
        "real_ip_recursive",
    ]
    lines[0] = "set_real_ip_from 127.0.0.1;"
    server, url = start_nginx(
        build.frontend_dir, upstream.url, tmp_path, extra_server=" ".join(lines)
    )
    try:
        claimed = f"{SPOOFED}, 198.51.100.7"
        assert (
            forwarded_for(url, upstream, "/chatkit/attachments/behind", claimed) == "198.51.100.7"
        )
    finally:
        server.stop()


# --- headers, caching, favicon --------------------------------------------------------------


def page_paths(build: FrontendBuild) -> list[str]:
    assets = [url_path(build, p) for p in built_files(build, (".js", ".css"))]
    return ["/", "/index.html", "/some/client/route", "/favicon.ico", "/favicon.svg", *assets]


def inline_script_hashes(html: str) -> list[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]


def full_policy(response: Response) -> str:
    """The whole policy, enforced or report-only (CSP_ENFORCE at build time decides)."""
    report_only = response.header("Content-Security-Policy-Report-Only")
    return report_only or response.header("Content-Security-Policy") or ""


def directive(policy: str, name: str) -> list[str]:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


def test_page_headers_on_every_page_response(build: FrontendBuild, served: str) -> None:
    html = (build.output_dir / "index.html").read_text()
    hashes = inline_script_hashes(html)
    assert hashes, "index.html has the inline loader script"
    # A missing asset is a page response too (nginx's error page).
    for path in [*page_paths(build), "/assets/missing-0000.js"]:
        response = get(served, path)
        for name, value in PAGE_HEADERS.items():
            assert response.header(name) == value, (path, name)
        assert "camera=()" in (response.header("Permissions-Policy") or ""), path
        enforced = response.header("Content-Security-Policy") or ""
        for part in ALWAYS_ENFORCED:
            assert part in enforced, (path, part)
        policy = full_policy(response)
        scripts = directive(policy, "script-src")
        assert "'self'" in scripts and CDN in scripts, (path, policy)
        assert set(hashes) <= set(scripts), (path, policy)
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, path
        assert CDN in directive(policy, "frame-src"), path
        assert CDN in directive(policy, "connect-src"), path
        # Plain HTTP here; HSTS only when a TLS proxy in front says the browser used HTTPS.
        assert response.header("Strict-Transport-Security") is None, path
        over_https = get(served, path, {"X-Forwarded-Proto": "https"})
        hsts = over_https.header("Strict-Transport-Security") or ""
        max_age = re.search(r"max-age=(\d+)", hsts)
        assert max_age and int(max_age.group(1)) >= 31_536_000, (path, hsts)


def test_cache_headers(build: FrontendBuild, served: str) -> None:
    for asset in built_files(build, (".js", ".css")):
        response = get(served, url_path(build, asset))
        assert response.header("Cache-Control") == "public, max-age=31536000, immutable"
    for path in ("/", "/index.html", "/some/client/route", "/favicon.ico"):
        assert get(served, path).header("Cache-Control") == "no-cache", path
    # A missing asset must not be cached for a year.
    missing = get(served, "/assets/missing-0000.js")
    assert missing.status == 404
    assert missing.header("Cache-Control") is None


def test_favicon(build: FrontendBuild, served: str) -> None:
    icon = (build.output_dir / "favicon.svg").read_bytes()
    assert '<link rel="icon" href="/favicon.svg"' in (build.output_dir / "index.html").read_text()
    for path in ("/favicon.ico", "/favicon.svg"):
        response = get(served, path)
        assert response.status == 200, path
        assert response.header("Content-Type") == "image/svg+xml", path
        assert response.body == icon, path


# --- the policy setting ---------------------------------------------------------------------


def build_copy(build: FrontendBuild, target: Path, env: dict[str, str]) -> Path:
    """The frontend's sources (node_modules hard-linked) built again with `env`."""
    top = str(build.frontend_dir)

    def outputs(folder: str, names: list[str]) -> set[str]:
        return {"dist", "nginx"} & set(names) if folder == top else set()

    shutil.copytree(
        build.frontend_dir, target, symlinks=True, copy_function=os.link, ignore=outputs
    )
    build.npm("run", "build", env=env, name=f"build {target.name}", cwd=target)
    return target


@pytest.mark.parametrize("enforce", ["", "1"])
def test_policy_is_report_only_unless_enforced(
    build: FrontendBuild, upstream: Upstream, tmp_path: Path, enforce: str
) -> None:
    report_uri = "https://reports.example/csp"
    bucket = "https://uploads.s3.example.com"
    env = {"CSP_ENFORCE": enforce, "CSP_REPORT_URI": report_uri, "CSP_CONNECT_SRC": bucket + "/"}
    frontend = build_copy(build, tmp_path / "frontend", env)
    server, url = start_nginx(frontend, upstream.url, tmp_path)
    try:
        response = get(url, "/")
    finally:
        server.stop()
    enforced = response.header("Content-Security-Policy") or ""
    report_only = response.header("Content-Security-Policy-Report-Only")
    if enforce:
        assert report_only is None
        assert directive(enforced, "script-src") and directive(enforced, "default-src")
        assert directive(enforced, "report-uri") == [report_uri]
        assert bucket in directive(enforced, "connect-src")
    else:
        assert report_only is not None and directive(report_only, "report-uri") == [report_uri]
        assert bucket in directive(report_only, "connect-src")
        assert sorted(part.strip() for part in enforced.split(";")) == sorted(ALWAYS_ENFORCED)


def test_a_connect_source_that_is_not_an_origin_stops_the_build(
    build: FrontendBuild, tmp_path: Path
) -> None:
    message = r"CSP_CONNECT_SRC: \"uploads.example.com\" is not an origin; write origins"
    with pytest.raises(AssertionError, match=message):
        build_copy(build, tmp_path / "frontend", {"CSP_CONNECT_SRC": "uploads.example.com"})
