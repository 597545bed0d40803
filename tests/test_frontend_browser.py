"""Each frontend in Debian's Chromium, in front of the generated backend and the fake LLM.

OpenAI's CDN is unreachable from test machines, so the ChatKit script URL is answered
with tests/browser_support/chatkit_standin.js: a clearly labelled TEST STAND-IN for the
<openai-chatkit> element that takes options from @openai/chatkit-react the way the real
element does and speaks the ChatKit protocol to options.api.url. Everything else the
page asks for must be served by the frontend itself. The fake LLM (the generated project's
tests/fake_provider.py) runs in this process, so a test can read what the model was sent.
The sign-in tests add the generated backend's loopback OpenID provider
(tests/oidc_issuer.py), in a process of its own, and a build of the frontend configured
for it.

Needs: chromium at /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright`
Python package (never `playwright install`); the backend's dependencies in this Python.
Screenshots go to $TEST_ARTIFACTS_DIR (default: <tmp>/chatkit-template-artifacts).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest

from tests.browser_support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser_support.frontend_build import ENV_PREFIX, FRONTENDS, FrontendBuild, get_build
from tests.browser_support.servers import (
    FAKE_CHUNK_SIZE,
    FAKE_DELAY_SECONDS,
    OTHER_MODEL,
    Server,
    Stack,
    image_summary,
)

CHATKIT_SCRIPT_URL = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js"
ALLOWLIST_URL = "https://platform.openai.com/settings/organization/security/domain-allowlist"
STAND_IN = Path(__file__).parent / "browser_support" / "chatkit_standin.js"
ARTIFACTS = Path(
    os.environ.get("TEST_ARTIFACTS_DIR")
    or Path(tempfile.gettempdir()) / "chatkit-template-artifacts"
)
TIMEOUT_MS = 20_000


def _require_browser() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the `playwright` Python package is not installed (pip install playwright)"
    if problem is None and not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if problem:
        if os.environ.get("SKIP_BROWSER_TESTS"):
            pytest.skip(f"SKIP_BROWSER_TESTS is set: {problem}")
        pytest.fail(f"{problem}; set SKIP_BROWSER_TESTS=1 to skip the browser tests")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=FRONTENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    _require_browser()
    build = get_build(request.param, tmp_path_factory)
    running = Stack(build, tmp_path_factory.mktemp(f"browser-{build.kind}"))
    yield running
    running.stop()


class Page:
    """A page of the frontend with the CDN answered by the stand-in; records what it loads."""

    def __init__(
        self,
        stack: Stack,
        context: Any,
        *,
        script: str = "stand-in",
        origin: str | None = None,
        served_by: str | None = None,
        hold: str | None = None,
        login_hint: str | None = None,
    ):
        self.stack = stack
        self.context = context
        self.console: list[str] = []
        self.foreign: list[str] = []
        # The page's own origin; `served_by` answers for it (for a public hostname, say).
        self.origin = origin or stack.frontend_url
        self.served_by = served_by
        # Requests for the path `hold` are kept unanswered in `held` until `fail_held()`.
        self.hold = hold
        self.held: list[Any] = []
        self.held_failed = False
        # With sign-in: the issuer is reachable; `login_hint` is who signs in there (the test
        # issuer signs anybody in at once); what went to the API and the token endpoint.
        self.login_hint = login_hint
        self.api_requests: list[tuple[str, str | None]] = []
        # Each token request's grant type, with how many API requests went out before it.
        self.grants: list[tuple[str, int]] = []
        context.route("**/*", self._route)
        # Every Content-Security-Policy violation the page sees (enforced or report-only).
        context.add_init_script(
            "window.__cspViolations = [];"
            " document.addEventListener('securitypolicyviolation', (e) =>"
            " window.__cspViolations.push({directive: e.effectiveDirective,"
            " blocked: e.blockedURI, disposition: e.disposition}));"
        )
        self.script = script
        self.page = context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on(
            "console", lambda message: self.console.append(f"{message.type}: {message.text}")
        )
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.split("?")[0] == CHATKIT_SCRIPT_URL:
            if self.script == "fail":
                route.abort("connectionrefused")
            else:
                route.fulfill(status=200, content_type="text/javascript", body=STAND_IN.read_text())
        elif self.hold and url.split("?")[0] == self.origin + self.hold:
            if self.held_failed:
                route.abort("connectionrefused")
            else:
                self.held.append(route)
        elif self.served_by and url.startswith(self.origin + "/"):
            # Same-origin from the server's point of view (dev servers refuse other origins).
            headers = {
                name: value
                for name, value in route.request.headers.items()
                if name not in ("origin", "referer") and not name.startswith("sec-fetch-")
            }
            response = route.fetch(url=self.served_by + url[len(self.origin) :], headers=headers)
            route.fulfill(response=response)
        elif url.startswith(self.origin + "/"):
            if url.startswith(self.origin + "/chatkit"):
                self.api_requests.append((url, route.request.headers.get("authorization")))
            route.continue_()
        elif self.stack.issuer_url and url.startswith(self.stack.issuer_url + "/"):
            path = url[len(self.stack.issuer_url) :].split("?")[0]
            if path == "/token":
                grant = parse_qs(route.request.post_data or "")["grant_type"][0]
                self.grants.append((grant, len(self.api_requests)))
            if path == "/authorize" and self.login_hint:
                route.continue_(url=f"{url}&{urlencode({'login_hint': self.login_hint})}")
            else:
                route.continue_()
        else:
            self.foreign.append(url)
            route.abort("blockedbyclient")

    def open(self, wait_ready: bool = True) -> Page:
        self.page.goto(self.origin + "/")
        if wait_ready:
            self.wait_for(
                "window.__chatkitStandIn && window.__chatkitStandIn.ready", "the stand-in to start"
            )
        return self

    def reload(self) -> Page:
        self.page.reload()
        self.wait_for(
            "window.__chatkitStandIn && window.__chatkitStandIn.ready", "the stand-in to restart"
        )
        return self

    def record(self) -> dict[str, Any]:
        data = self.page.evaluate(
            "() => { const r = window.__chatkitStandIn; if (!r) return null;"
            " const { element, ...rest } = r; return JSON.parse(JSON.stringify(rest)); }"
        )
        assert data is not None, "the stand-in did not load"
        return data

    def diagnostics(self) -> str:
        try:
            record = json.dumps(self.record(), indent=1)[-6000:]
        except Exception as error:
            record = f"(no record: {error})"
        return (
            f"stand-in record: {record}\nconsole:\n"
            + "\n".join(self.console[-40:])
            + f"\nblocked requests: {self.foreign}\n{self.stack.logs()}"
        )

    def wait_for(self, expression: str, what: str, timeout: int = TIMEOUT_MS) -> None:
        try:
            # As a function: a string expression would be eval'd, which the enforced CSP refuses.
            self.page.wait_for_function(f"() => ({expression})", timeout=timeout)
        except Exception as error:
            raise AssertionError(
                f"timed out waiting for {what}: {error}\n{self.diagnostics()}"
            ) from None

    def fail_held(self) -> None:
        """The held requests (a dev build's StrictMode sends two), and later ones, fail."""
        self.held_failed = True
        for route in self.held:
            route.abort("connectionrefused")

    def wait_for_console(self, text: str, timeout: float = TIMEOUT_MS / 1000) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.console if text in line), None)
            if found:
                return found
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no console message with {text!r}\n{self.diagnostics()}")

    def send(self, text: str) -> dict[str, Any]:
        """Type `text` into the composer, send it, wait for the stream to finish."""
        count = len(self.record()["turns"])
        self.page.locator("[data-standin=input]").fill(text)
        self.page.locator("[data-standin=send]").click()
        turns = "window.__chatkitStandIn.turns"
        self.wait_for(
            f"{turns}.length > {count} && {turns}[{count}].done", f"the reply to {text!r}"
        )
        return self.record()["turns"][count]

    def csp_violations(self) -> list[dict[str, str]]:
        violations: list[dict[str, str]] = self.page.evaluate("window.__cspViolations")
        return violations

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.stack.build.kind}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def session_cookie(self) -> dict[str, Any]:
        cookies = [c for c in self.context.cookies() if c["name"] == "chatkit_session"]
        assert len(cookies) == 1, (
            f"expected one chatkit_session cookie, got {self.context.cookies()}"
        )
        return cookies[0]


@pytest.fixture
def new_page(browser: Any, stack: Stack) -> Iterator[Any]:
    contexts = []

    def make(
        color_scheme: str = "light",
        on: Stack | None = None,
        timezone_id: str | None = None,
        permissions: list[str] | None = None,
        **options: Any,
    ) -> Page:
        context = browser.new_context(
            color_scheme=color_scheme,
            viewport={"width": 1100, "height": 800},
            timezone_id=timezone_id,
            permissions=permissions,
        )
        contexts.append(context)
        return Page(on or stack, context, **options)

    yield make
    for context in contexts:
        context.close()


def test_settings_reach_the_component(stack: Stack, new_page: Any) -> None:
    build: FrontendBuild = stack.build
    page = new_page().open()
    record = page.record()
    options = record["options"]
    assert options["api"]["url"] == build.api_url, f"{build.api_url_var} did not reach useChatKit"
    assert options["api"]["domainKey"] == build.domain_key, (
        f"{build.domain_key_var} did not reach useChatKit"
    )
    assert record["hasCustomFetch"] is True
    assert options["history"] == {"enabled": True, "showRename": True, "showDelete": True}
    assert options["header"]["enabled"] is True
    assert options["startScreen"]["greeting"]
    assert len(options["startScreen"]["prompts"]) >= 2
    assert options["theme"]["colorScheme"] == "light"
    # Beyond text: thumbs and retry on each reply, client tools and client widget actions.
    assert options["threadItemActions"] == {"feedback": True, "retry": True}
    assert options["onClientTool"] == "[function]"
    assert options["widgets"] == {"onAction": "[function]"}
    assert page.page.title() == "My ChatKit App"
    assert page.page.get_by_text("TEST STAND-IN").first.is_visible()
    assert page.page.get_by_text(options["startScreen"]["greeting"]).is_visible()
    # The theme follows the system, live.
    page.page.emulate_media(color_scheme="dark")
    page.wait_for(
        "window.__chatkitStandIn.options.theme.colorScheme === 'dark'",
        "the dark theme to reach ChatKit",
    )
    assert page.foreign == [], f"the page requested outside resources: {page.foreign}"
    dark = new_page(color_scheme="dark").open()
    assert dark.record()["options"]["theme"]["colorScheme"] == "dark"


def test_conversation_streams_persists_and_stays_private(stack: Stack, new_page: Any) -> None:
    page = new_page().open()
    first = page.send("hello there")
    assert first["error"] is None, page.diagnostics()
    assert first["request"] == "threads.create"
    assert first["status"] == 200 and first["contentType"].startswith("text/event-stream")
    assert first["threadId"], "no thread.created event"
    deltas = first["deltas"]
    assert len(deltas) >= 5, f"expected the reply in several deltas, got {deltas}"
    assert "".join(d["delta"] for d in deltas) == first["assistantText"]
    assert 'you said "hello there"' in first["assistantText"]
    # Streamed through the frontend's proxy: the first delta long before the end.
    expected_span_ms = (len(deltas) - 1) * FAKE_DELAY_SECONDS * 1000
    assert first["endMs"] - first["firstDeltaMs"] >= 0.6 * expected_span_ms, (
        f"deltas arrived together (buffered by the proxy?): first at {first['firstDeltaMs']} ms, "
        f"end at {first['endMs']} ms, arrivals {[d['ms'] for d in deltas]}"
    )
    assert len({d["ms"] for d in deltas}) >= len(deltas) // 2
    cookie = page.session_cookie()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"

    second = page.send("and one more")
    assert second["error"] is None, page.diagnostics()
    assert second["request"] == "threads.add_user_message"
    assert second["threadId"] == first["threadId"]
    assert 'you said "and one more"' in second["assistantText"]
    assert len(first["assistantItemIds"]) == len(second["assistantItemIds"]) == 1
    assert second["assistantItemIds"] != first["assistantItemIds"], (
        "the second reply reused the first's id"
    )
    shown = page.page.locator("[data-role=assistant]")
    assert shown.count() == 2
    assert {shown.nth(i).get_attribute("data-item-id") for i in range(2)} == {
        first["assistantItemIds"][0],
        second["assistantItemIds"][0],
    }

    # A reload keeps the conversation: same cookie, the thread listed and reopened.
    page.reload()
    initial = page.record()["initial"]
    assert initial["error"] is None, page.diagnostics()
    assert first["threadId"] in [t["id"] for t in initial["threads"]["data"]]
    assert initial["initialThread"] == first["threadId"], "the page did not reopen the last thread"
    assert [item["role"] for item in initial["items"]] == ["user", "assistant", "user", "assistant"]
    assert [item["id"] for item in initial["items"] if item["role"] == "assistant"] == [
        first["assistantItemIds"][0],
        second["assistantItemIds"][0],
    ]
    assert page.session_cookie()["value"] == cookie["value"]
    page.wait_for("document.querySelector('openai-chatkit')", "the widget")
    shot = page.screenshot("conversation")
    assert shot.stat().st_size > 10_000

    # Another browser is another user: none of the first one's threads.
    other = new_page().open()
    other_initial = other.record()["initial"]
    assert other_initial["initialThread"] is None
    assert other_initial["threads"]["data"] == []
    assert other.session_cookie()["value"] != cookie["value"]
    status = other.page.evaluate(
        """async (threadId) => {
            const params = {thread_id: threadId, limit: 50, order: 'asc'};
            const response = await fetch('/chatkit', {
                method: 'POST', headers: {'content-type': 'application/json'},
                body: JSON.stringify({type: 'items.list', params}),
            });
            return response.status;
        }""",
        first["threadId"],
    )
    assert status in (403, 404), f"another user's thread answered HTTP {status}"


def test_domain_verification_error_shows_guidance(stack: Stack, new_page: Any) -> None:
    page = new_page().open()
    page.page.evaluate(
        "window.__chatkitStandIn.element"
        ".emitError('IntegrationError', 'Domain verification failed')"
    )
    problem = page.page.locator("[data-testid=chat-problem]")
    problem.wait_for(state="visible")
    text = problem.inner_text()
    assert "127.0.0.1" in text, text  # window.location.hostname: the domain to register
    assert ALLOWLIST_URL in text, text
    assert stack.build.domain_key_var in text, text
    assert problem.get_by_role("link").get_attribute("href") == ALLOWLIST_URL
    page.screenshot("domain-verification-error")


def test_script_load_failure_is_explained(stack: Stack, new_page: Any) -> None:
    page = new_page(script="fail").open(wait_ready=False)
    problem = page.page.locator("[data-testid=chat-problem]")
    problem.wait_for(state="visible")
    text = problem.inner_text()
    assert "The ChatKit script did not load" in text
    assert "cdn.platform.openai.com" in text
    assert page.page.locator("openai-chatkit").count() == 0, "an empty chat frame is still shown"
    page.screenshot("script-failed")


def test_domain_key_falls_back_only_on_local_hosts(stack: Stack, new_page: Any) -> None:
    """No key configured: local hosts get the development key, a public host the guidance."""
    unkeyed_url = stack.unkeyed_server()
    local = new_page(origin=unkeyed_url).open()
    assert local.record()["options"]["api"]["domainKey"] == "domain_pk_localhost_dev"
    assert local.record()["options"]["api"]["url"] == "/chatkit"

    public = new_page(origin="http://chat.example.test", served_by=unkeyed_url).open(
        wait_ready=False
    )
    public.wait_for(
        "document.querySelector('[data-testid=chat-problem]')", "the missing-key notice"
    )
    problem = public.page.locator("[data-testid=chat-problem]")
    text = problem.inner_text()
    assert "chat.example.test" in text, text
    assert ALLOWLIST_URL in text, text
    assert stack.build.domain_key_var in text, text
    assert public.page.locator("openai-chatkit").count() == 0
    public.screenshot("missing-domain-key")


# --- attachments ----------------------------------------------------------------------------

POLICY_PATH = "/chatkit/attachments/policy"


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A real PNG (the backend decides the type from the bytes), one colour per row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([40 * y, 200, 90]) * width for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def backend_policy(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.backend_url + POLICY_PATH, timeout=10) as response:
        return json.load(response)


def fetch_in_page(page: Page, url: str) -> dict[str, Any]:
    """GET `url` from the page (its cookies): status, headers and the body's length."""
    return page.page.evaluate(
        """async (url) => {
            const response = await fetch(url, {credentials: 'include'});
            const body = await response.arrayBuffer();
            return {status: response.status, headers: Object.fromEntries(response.headers),
                    size: body.byteLength};
        }""",
        url,
    )


@contextlib.contextmanager
def quick_replies(stack: Stack) -> Iterator[None]:
    """Replies in a few deltas (streaming has its own test): keeps the later tests short."""
    stack.fake.chunk_size = 64
    try:
        yield
    finally:
        stack.fake.chunk_size = FAKE_CHUNK_SIZE


def assert_model_saw(stack: Stack, page: Page, reply: str, image: bytes) -> None:
    """The model got the image's bytes (the fake provider's record) and the reply, which names
    each image the fake was sent, reached the page."""
    call = stack.fake.requests[-1]
    assert call.images() == [("image/png", image)], (
        f"the model call did not carry the image: {call.json}"
    )
    assert image_summary(image) in reply, (
        f"the reply does not name the image {image_summary(image)}: {reply!r}\n{page.diagnostics()}"
    )


def attach_picture(page: Any, png: bytes) -> dict[str, Any]:
    """Picks `png` in the widget's file input; the stand-in's record of the finished upload."""
    page.page.locator("[data-standin=file]").set_input_files(
        files=[{"name": "dots.png", "mimeType": "image/png", "buffer": png}]
    )
    page.wait_for(
        "window.__chatkitStandIn.attachments.length === 1"
        " && window.__chatkitStandIn.attachments[0].done",
        "the upload",
    )
    upload: dict[str, Any] = page.record()["attachments"][0]
    assert upload["error"] is None and upload["refused"] is None, page.diagnostics()
    return upload


def signed_link_path(url: str) -> str:
    """The URL without its query, once the query is seen to be a signed link's."""
    path, _, query = url.partition("?")
    assert sorted(name for name, _ in parse_qsl(query)) == ["expires", "signature", "user"], url
    return path


def test_image_attachment_goes_through_the_proxy_to_the_model(stack: Stack, new_page: Any) -> None:
    """The stand-in does what ChatKit's composer does: attachments.create, the upload to the
    descriptor (multipart field `file`), the message naming the id; the preview is shown."""
    png = tiny_png()
    page = new_page().open()
    page.wait_for(
        "window.__chatkitStandIn.options.composer.attachments",
        "the backend's attachment policy to reach ChatKit",
    )
    options = page.record()["options"]
    policy = backend_policy(stack)
    assert policy["enabled"] is True and "image/png" in policy["accept"]
    assert options["composer"]["attachments"] == policy, "the page changed the backend's policy"
    assert options["api"]["uploadStrategy"] == {"type": "two_phase"}

    upload = attach_picture(page, png)
    attachment = upload["attachment"]
    own = stack.frontend_url + "/chatkit/attachments/"
    # The backend built its URLs on the page's origin, from the proxy's forwarded headers.
    # Both are signed links (user, expires, signature): they need no cookie or token.
    assert upload["upload"]["method"] == "POST"
    assert signed_link_path(upload["upload"]["url"]) == f"{own}{attachment['id']}/upload", upload
    assert upload["upload"]["status"] == 200
    assert attachment["type"] == "image" and attachment["upload_descriptor"] is None
    assert signed_link_path(attachment["preview_url"]) == f"{own}{attachment['id']}"
    preview = page.page.locator("[data-standin=preview]")
    preview.wait_for(state="visible")
    page.wait_for(
        "(() => { const img = window.__chatkitStandIn.element.shadowRoot"
        ".querySelector('[data-standin=preview]');"
        " return img && img.complete && img.naturalWidth === 3 && img.naturalHeight === 2; })()",
        "the preview image to load through the proxy",
    )

    with quick_replies(stack):
        turn = page.send("what is in this picture?")
    assert turn["error"] is None, page.diagnostics()
    assert turn["attachments"] == [attachment["id"]]
    assert_model_saw(stack, page, turn["assistantText"], png)
    shown = page.page.locator("[data-role=user] [data-standin=message-image]")
    assert shown.count() == 1 and shown.get_attribute("src") == attachment["preview_url"]

    served = fetch_in_page(page, attachment["preview_url"])
    assert served["status"] == 200 and served["size"] == len(png), served
    headers = served["headers"]
    assert headers["content-type"] == "image/png"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"].startswith("private")
    assert "sandbox" in headers["content-security-policy"]
    assert headers["content-disposition"].startswith("inline")
    page.screenshot("attachment")

    assert page.csp_violations() == [], "the page's policy got in the attachment's way"

    # Another browser is another user: without the signed link the file is not there for it.
    other = new_page().open()
    assert fetch_in_page(other, signed_link_path(attachment["preview_url"]))["status"] == 404


def test_without_the_policy_the_chat_works_without_attachments(stack: Stack, new_page: Any) -> None:
    """The widget does not wait for the policy; when it fails, attachments stay off."""
    page = new_page(hold=POLICY_PATH).open()
    record = page.record()
    assert page.held, "the page never asked for the attachment policy"
    assert "attachments" not in record["options"]["composer"]
    assert "uploadStrategy" not in record["options"]["api"]
    assert page.page.locator("[data-standin=file]").count() == 0
    page.fail_held()
    page.wait_for_console("Attachments are off")
    assert page.page.locator("[data-testid=chat-problem]").count() == 0
    with quick_replies(stack):
        turn = page.send("hello without files")
    assert turn["error"] is None and turn["attachments"] == [], page.diagnostics()
    assert "attachments" not in page.record()["options"]["composer"]


# --- on the wire: compression, headers, caching, the widget in the first HTML ---------------

CDN_ORIGIN = "https://cdn.platform.openai.com"
PAGE_HEADERS = {
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}
ALWAYS_ENFORCED = {"frame-ancestors": ["'self'"], "object-src": ["'none'"], "base-uri": ["'self'"]}


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain GET from outside the browser (no Accept-Encoding): status, headers, body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw, body = error.code, error.headers, error.read()
    return status, {name.lower(): value for name, value in raw.items()}, body


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def assert_full_policy(policy: str) -> None:
    """The policy the ChatKit widget needs: its script and frame from the CDN, requests to
    the page's own origin, nothing else by default."""
    found = directives(policy)
    assert found["default-src"] == ["'self'"], policy
    assert CDN_ORIGIN in found["script-src"] and "'self'" in found["script-src"], policy
    assert found["frame-src"] == [CDN_ORIGIN], policy
    assert "'self'" in found["connect-src"], policy
    for name, value in ALWAYS_ENFORCED.items():
        assert found[name] == value, policy


class HeadTags(HTMLParser):
    """The elements of the document head, in order, and whether <openai-chatkit> is in the body."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[tuple[str, dict[str, str | None], str]] = []
        self.in_head = False
        self.widget_in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self.in_head = True
        elif self.in_head:
            self.head.append((tag, dict(attrs), ""))
        elif tag == "openai-chatkit":
            self.widget_in_body = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False

    def handle_data(self, data: str) -> None:
        if self.in_head and self.head and self.head[-1][0] == "script":
            tag, attrs, text = self.head[-1]
            self.head[-1] = (tag, attrs, text + data)


def distinct(violations: list[dict[str, str]]) -> list[dict[str, str]]:
    return [dict(items) for items in dict.fromkeys(tuple(v.items()) for v in violations)]


def test_assets_arrive_compressed(stack: Stack, new_page: Any) -> None:
    page = new_page()
    responses: list[Any] = []
    page.page.on("response", lambda response: responses.append(response))
    page.open()
    assets = [
        response
        for response in responses
        if response.url.startswith(page.origin + "/")
        and response.request.resource_type in ("script", "stylesheet")
    ]
    kinds = {response.request.resource_type for response in assets}
    assert kinds == {"script", "stylesheet"}, [response.url for response in responses]
    wire = decoded = 0
    for response in assets:
        encoding = response.all_headers().get("content-encoding")
        assert encoding in ("gzip", "br"), (
            f"{response.url} arrived with Content-Encoding {encoding}"
        )
        wire += response.request.sizes()["responseBodySize"]
        decoded += len(response.body())
    assert wire < decoded, f"{wire} bytes on the wire for {decoded} bytes of JS and CSS"


def test_chat_stream_through_the_proxy_is_neither_compressed_nor_buffered(
    stack: Stack, new_page: Any
) -> None:
    """The proxy compresses pages, not chat events: they arrive one by one, as sent."""
    page = new_page()
    streams: list[Any] = []

    def on_response(response: Any) -> None:
        if "text/event-stream" in response.headers.get("content-type", ""):
            streams.append(response)

    page.page.on("response", on_response)
    page.open()
    # Send once the policy has re-rendered the composer (the draft survives it either way).
    page.wait_for("window.__chatkitStandIn.options.composer.attachments", "the policy")
    turn = page.send("stream this one")
    assert turn["error"] is None, page.diagnostics()
    assert [response.url for response in streams] == [stack.build.api_url]
    headers = streams[0].all_headers()
    assert headers.get("content-encoding", "identity") == "identity", headers
    assert "no-transform" in headers.get("cache-control", ""), headers
    arrivals = [delta["ms"] for delta in turn["deltas"]]
    assert len(arrivals) >= 5, turn
    # One event per fake chunk, each at its own time (a buffer would deliver them together).
    assert len(set(arrivals)) >= len(arrivals) // 2 + 1, f"deltas arrived at {arrivals}"
    assert 'you said "stream this one"' in turn["assistantText"]


def test_page_responses_carry_the_security_headers(stack: Stack) -> None:
    """On the keyed build (CSP_ENFORCE=1) the full policy is enforced; on the default build it
    is report-only, with frame-ancestors, object-src and base-uri enforced all the same."""
    for path in ("/", "/favicon.ico", "/no-such-page"):
        status, headers, _ = http_get(stack.frontend_url + path)
        assert status in (200, 404), (path, status)
        for name, value in PAGE_HEADERS.items():
            assert headers.get(name) == value, (path, name, headers)
        assert "camera=()" in headers.get("permissions-policy", ""), (path, headers)
        assert "microphone" not in headers["permissions-policy"], "the widget's dictation needs it"
        assert_full_policy(headers["content-security-policy"])
        assert "content-security-policy-report-only" not in headers, (path, headers)
        assert "strict-transport-security" not in headers, f"HSTS over plain HTTP on {path}"

    _, https, _ = http_get(stack.frontend_url + "/", {"X-Forwarded-Proto": "https"})
    hsts = https.get("strict-transport-security", "")
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31_536_000

    status, headers, body = http_get(stack.frontend_url + "/favicon.ico")
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert body.lstrip().startswith(b"<svg")

    # The /chatkit proxy keeps the backend's own headers (attachment previews have theirs).
    status, headers, _ = http_get(stack.frontend_url + POLICY_PATH)
    assert status == 200
    assert "frame-src" not in headers.get("content-security-policy", ""), headers

    _, default, _ = http_get(stack.unkeyed_server() + "/")
    assert directives(default["content-security-policy"]) == ALWAYS_ENFORCED, default
    assert_full_policy(default["content-security-policy-report-only"])


def test_html_revalidates_and_hashed_assets_are_immutable(stack: Stack) -> None:
    _, headers, body = http_get(stack.frontend_url + "/")
    assert "no-cache" in headers.get("cache-control", ""), headers
    scripts = re.findall(r'<script[^>]+src="(/[^"]+\.js)"', body.decode())
    assert scripts, body[:2000]
    for src in scripts:
        _, asset, _ = http_get(stack.frontend_url + src)
        cache = asset.get("cache-control", "")
        assert "immutable" in cache and "max-age=31536000" in cache, (src, cache)


def test_the_first_html_has_the_widget_and_asks_for_its_script(stack: Stack) -> None:
    """The server's HTML: <openai-chatkit> in the body (no second render needed), and in the
    head a preconnect to the CDN, the loader that records a script failure, then the script."""
    for url in (stack.frontend_url, stack.unkeyed_server()):
        _, _, body = http_get(url + "/")
        tags = HeadTags()
        tags.feed(body.decode())
        assert tags.widget_in_body, f"no <openai-chatkit> in the HTML of {url}:\n{body[:3000]!r}"
        preconnects = [
            a.get("href") for t, a, _ in tags.head if t == "link" and a.get("rel") == "preconnect"
        ]
        assert CDN_ORIGIN in preconnects, tags.head
        scripts = [(a, text) for t, a, text in tags.head if t == "script"]
        position = next(
            (i for i, (a, _) in enumerate(scripts) if a.get("src") == CHATKIT_SCRIPT_URL), None
        )
        assert position is not None, f"the ChatKit script is not requested from the head: {scripts}"
        loaders = [i for i, (a, text) in enumerate(scripts) if "chatkit-script-failed" in text]
        assert loaders and loaders[0] < position, f"no loader before the script tag: {scripts}"
        attributes = scripts[position][0]
        assert "async" in attributes or "defer" in attributes, attributes


def test_the_page_works_under_the_enforced_policy(stack: Stack, new_page: Any) -> None:
    """CSP_ENFORCE=1: the stand-in, served from the CDN address, loads and chats with no
    violation; the policy is live (a request to an unlisted origin is refused). The default
    build only reports the same request."""
    page = new_page().open()
    page.wait_for("window.__chatkitStandIn.options.composer.attachments", "the policy")
    with quick_replies(stack):
        turn = page.send("hello under the policy")
    assert turn["error"] is None, page.diagnostics()
    assert page.csp_violations() == [], page.diagnostics()
    blocked = "https://elsewhere.example/x"
    script = f"fetch({json.dumps(blocked)}).catch(() => null)"
    page.page.evaluate(script)
    page.wait_for("window.__cspViolations.length > 0", "the refused request's violation")
    # (Chromium may report one refusal more than once: compare the distinct ones.)
    assert distinct(page.csp_violations()) == [
        {"directive": "connect-src", "blocked": blocked, "disposition": "enforce"}
    ]

    reported = new_page(origin=stack.unkeyed_server()).open()
    assert reported.csp_violations() == [], reported.diagnostics()
    reported.page.evaluate(script)
    reported.wait_for("window.__cspViolations.length > 0", "the reported request's violation")
    assert distinct(reported.csp_violations()) == [
        {"directive": "connect-src", "blocked": blocked, "disposition": "report"}
    ]


# --- sign-in with OpenID Connect; turns the backend refuses -------------------------------

# The generated backend's loopback OpenID provider (tests/oidc_issuer.py), run from the
# backend folder in a process of its own; it writes its URL to the file it is given.
ISSUER_SCRIPT = """
import sys, threading
from pathlib import Path
from tests.oidc_issuer import OidcIssuer
with OidcIssuer(audience=sys.argv[2]) as issuer:
    Path(sys.argv[1]).write_text(issuer.url)
    threading.Event().wait()
"""
AUDIENCE = "chatkit-api"
CLIENT_ID = "chatkit-web"
# Small limits, so a few turns reach them (per IP off: every page here is 127.0.0.1).
MAX_MESSAGE_CHARS = 200
USER_TURNS_PER_MINUTE = 2
SIGN_IN_BACKEND = {
    "AUTH_MODE": "oidc",
    "OIDC_AUDIENCE": AUDIENCE,
    "MAX_MESSAGE_CHARS": str(MAX_MESSAGE_CHARS),
    "RATE_LIMIT_USER_TURNS_PER_MINUTE": str(USER_TURNS_PER_MINUTE),
    "RATE_LIMIT_IP_TURNS_PER_MINUTE": "0",
}
READY = "window.__chatkitStandIn && window.__chatkitStandIn.ready"


def start_issuer(build: FrontendBuild, workdir: Path) -> tuple[Server, str]:
    url_file = workdir / "issuer-url"
    command = [sys.executable, "-c", ISSUER_SCRIPT, str(url_file), AUDIENCE]
    issuer = Server("oidc issuer", command, build.backend_dir, {}, workdir / "oidc-issuer.log")
    deadline = time.monotonic() + 30
    while not url_file.exists() or not url_file.read_text():
        if issuer.process.poll() is not None or time.monotonic() > deadline:
            issuer.stop()
            raise AssertionError(f"the OpenID issuer did not start\n{issuer.log_tail()}")
        time.sleep(0.1)
    return issuer, url_file.read_text()


@pytest.fixture(scope="module")
def signin_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The frontend built with sign-in (CSP enforced), the backend in AUTH_MODE=oidc with
    small limits, and the loopback issuer both trust. It takes `stack` for its build, so
    its tests share that build's worker (tests/conftest.py groups by frontend build)."""
    build = stack.build
    workdir = tmp_path_factory.mktemp(f"signin-{build.kind}")
    issuer, issuer_url = start_issuer(build, workdir)
    prefix = ENV_PREFIX[build.kind]
    public = {
        f"{prefix}OIDC_ISSUER": issuer_url,
        f"{prefix}OIDC_CLIENT_ID": CLIENT_ID,
        build.domain_key_var: "",
        build.api_url_var: "",
        "CSP_ENFORCE": "1",
    }
    try:
        frontend = build.variant("signin", public)
        running = Stack(
            build,
            workdir,
            frontend_dir=frontend,
            backend_env={**SIGN_IN_BACKEND, "OIDC_ISSUER": issuer_url},
            frontend_env=public,
        )
    except BaseException:
        issuer.stop()
        raise
    running.servers.insert(0, issuer)  # stopped last
    running.issuer_url = issuer_url
    yield running
    running.stop()


def sign_in(page: Page, name: str) -> None:
    """Click "Sign in" in the header; the issuer signs the user in and sends the browser
    back with a code; the page takes the tokens and shows the chat."""
    page.page.get_by_test_id("auth").get_by_role("button", name="Sign in").click()
    user = page.page.get_by_test_id("auth-user")
    user.wait_for()
    assert user.inner_text() == name
    page.wait_for(READY, f"the chat after {name} signed in")


def grant_types(page: Page) -> list[str]:
    return [grant for grant, _ in page.grants]


def change_stored_user(page: Page, **fields: object) -> None:
    """Changes the signed-in user's stored tokens (oidc-client-ts keeps them in sessionStorage)."""
    page.page.evaluate(
        """(fields) => {
            const key = Object.keys(sessionStorage).find((k) => k.startsWith('oidc.user:'));
            const user = JSON.parse(sessionStorage.getItem(key));
            sessionStorage.setItem(key, JSON.stringify({ ...user, ...fields }));
        }""",
        fields,
    )


def test_sign_in_with_pkce_then_chat_then_sign_out(signin_stack: Stack, new_page: Any) -> None:
    page = new_page(on=signin_stack).open(wait_ready=False)
    page.page.get_by_test_id("auth").get_by_role("button", name="Sign in").wait_for()
    assert page.page.locator("openai-chatkit").count() == 0
    assert page.api_requests == [], "the page asked the API before anyone signed in"

    sign_in(page, "Alice")
    assert "code=" not in page.page.url and "state=" not in page.page.url, page.page.url
    assert grant_types(page) == ["authorization_code"]
    with quick_replies(signin_stack):
        turn = page.send("hello, signed in")
    assert turn["error"] is None, page.diagnostics()
    assert 'you said "hello, signed in"' in turn["assistantText"]
    sent = {authorization for _, authorization in page.api_requests}
    assert len(sent) == 1 and next(iter(sent), "").startswith("Bearer "), page.api_requests
    assert not [c for c in page.context.cookies() if c["name"] == "chatkit_session"]
    assert page.csp_violations() == [], "the enforced policy got in the sign-in's way"
    page.screenshot("signed-in")

    # Back after the access token expired: the refresh token renews it, no new sign-in.
    change_stored_user(page, expires_at=int(time.time()) - 10)
    page.api_requests.clear()
    page.reload()
    # Renewed before the page asked the API anything (the requests were cleared above).
    assert page.grants[1:] == [("refresh_token", 0)], page.grants
    assert page.page.get_by_test_id("auth-user").inner_text() == "Alice"
    initial = page.record()["initial"]
    assert initial["error"] is None, page.diagnostics()
    assert initial["initialThread"] == turn["threadId"]
    # (The issuer mints the same token twice in one second: no comparison with the first.)
    renewed = {authorization for _, authorization in page.api_requests}
    assert len(renewed) == 1 and next(iter(renewed), "").startswith("Bearer "), renewed

    # Expired while the page is open: renewed before the next request goes out.
    change_stored_user(page, expires_at=int(time.time()) - 10)
    requests_before = len(page.api_requests)
    with quick_replies(signin_stack):
        later = page.send("after the token expired")
    assert later["error"] is None, page.diagnostics()
    assert page.grants[2:] == [("refresh_token", requests_before)], page.grants

    # A token the backend refuses (here a forged one) is explained above the chat.
    token = str(page.api_requests[-1][1]).removeprefix("Bearer ")
    change_stored_user(page, access_token=token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"))
    refused = page.send("with a forged token")
    assert refused["status"] == 401, page.diagnostics()
    assert (
        "The backend did not accept your sign-in"
        in page.page.get_by_test_id("chat-problem").inner_text()
    )

    page.page.get_by_role("button", name="Sign out").click()
    page.page.get_by_test_id("auth").get_by_role("button", name="Sign in").wait_for()
    assert page.page.locator("openai-chatkit").count() == 0

    # Another user in the same browser sees none of Alice's threads, nor is sent to one.
    page.login_hint = "bob"
    sign_in(page, "Bob")
    initial = page.record()["initial"]
    assert initial["error"] is None, page.diagnostics()
    assert initial["threads"]["data"] == [] and initial["initialThread"] is None


def test_refused_turns_say_why(signin_stack: Stack, new_page: Any) -> None:
    """A message over MAX_MESSAGE_CHARS (413) and a turn past the per-user rate (429, with
    Retry-After) each put a notice above the chat that says what happened and when to retry."""
    page = new_page(on=signin_stack, login_hint="carol").open(wait_ready=False)
    refused: list[Any] = []
    page.page.on("response", lambda r: refused.append(r) if r.status in (413, 429) else None)
    sign_in(page, "Carol")
    notice = page.page.get_by_test_id("chat-problem")

    long = page.send("x" * (MAX_MESSAGE_CHARS + 1))
    assert long["status"] == 413, page.diagnostics()
    notice.wait_for()
    text = notice.inner_text()
    assert "That message is too long" in text
    assert f"{MAX_MESSAGE_CHARS + 1} characters; the most is {MAX_MESSAGE_CHARS}" in text, text

    # Past the limit; a minute's window may turn over in between: then one window more.
    statuses = []
    with quick_replies(signin_stack):
        for n in range(2 * USER_TURNS_PER_MINUTE + 1):
            statuses.append(page.send(f"turn {n}")["status"])
            if statuses[-1] == 429:
                break
    assert statuses[-1] == 429 and statuses.count(200) >= USER_TURNS_PER_MINUTE, statuses
    notice.wait_for()
    text = notice.inner_text()
    assert "You're sending messages faster than this app allows" in text, text
    wait = re.search(r"Try again in (\d+) s\.", text)
    assert wait and 1 <= int(wait.group(1)) <= 60, text
    # The frontend's server passed the backend's Retry-After on.
    assert [r.status for r in refused] == [413, 429]
    assert refused[1].all_headers().get("retry-after") == wait.group(1)
    page.screenshot("rate-limited")
    page.page.get_by_role("button", name="Dismiss").click()
    assert notice.count() == 0


def test_attachments_work_signed_in(signin_stack: Stack, new_page: Any) -> None:
    """Under AUTH_MODE=oidc: the upload (through the page's fetch, with the bearer token) and
    the preview (a plain <img src>, no header: the backend's signed link) both work, and the
    model gets the image."""
    png = tiny_png()
    page = new_page(on=signin_stack, login_hint="dave").open(wait_ready=False)
    sign_in(page, "Dave")
    page.wait_for("window.__chatkitStandIn.options.composer.attachments", "the policy")
    upload = attach_picture(page, png)
    signed_link_path(upload["attachment"]["preview_url"])
    page.wait_for(
        "(() => { const img = window.__chatkitStandIn.element.shadowRoot"
        ".querySelector('[data-standin=preview]');"
        " return img && img.complete && img.naturalWidth === 3 && img.naturalHeight === 2; })()",
        "the signed preview to load without a bearer header",
    )
    with quick_replies(signin_stack):
        turn = page.send("what is in this picture?")
    assert turn["error"] is None, page.diagnostics()
    assert image_summary(png) in turn["assistantText"], turn["assistantText"]
    shown = page.page.locator("[data-role=user] [data-standin=message-image]")
    assert shown.count() == 1
    assert page.csp_violations() == []


# --- beyond text: client tools, widgets and their actions, feedback, retry, model choice -----

BROWSER_ZONE = "Pacific/Auckland"  # not the machine's: the answer can only come from the browser
MODELS_PATH = "/chatkit/models"
# The backend's store of thumbs up/down (migration 0004), in the stack's SQLite file.
FEEDBACK_TABLE = "chatkit_feedback"


def zone_from_tool_output(output: str | None) -> str:
    """The zone in the client tool's output as the model got it (the page's JSON result)."""
    try:
        zone = json.loads(output or "")["time_zone"]
    except (ValueError, KeyError, TypeError):
        return f"no time_zone in the tool output {output!r}"
    return str(zone)


def wait_for_turn(page: Page, count: int, what: str) -> dict[str, Any]:
    """The stand-in's turn number `count` (0-based), once it is done."""
    turns = "window.__chatkitStandIn.turns"
    page.wait_for(f"{turns}.length > {count} && {turns}[{count}].done", what)
    turn: dict[str, Any] = page.record()["turns"][count]
    assert turn["error"] is None, f"{what}: {turn['error']}\n{page.diagnostics()}"
    return turn


def click_widget_button(page: Page, action_type: str) -> dict[str, Any]:
    """Clicks the card's button for `action_type`; the stand-in's record of the action."""
    count = len(page.record()["widgetActions"])
    page.page.locator(f"[data-standin=widget-button][data-action-type='{action_type}']").click()
    actions = "window.__chatkitStandIn.widgetActions"
    page.wait_for(f"{actions}.length > {count} && {actions}[{count}].done", f"{action_type}")
    action: dict[str, Any] = page.record()["widgetActions"][count]
    assert action["error"] is None, f"{action_type}: {action['error']}\n{page.diagnostics()}"
    return action


def card_times(zone: str) -> set[str]:
    """What the card may show as the time in `zone` now (HH:MM, a minute either side)."""
    now = datetime.now(ZoneInfo(zone))
    return {f"{now + timedelta(minutes=m):%H:%M}" for m in (-1, 0, 1)}


def stored_feedback(stack: Stack, item_id: str) -> list[str]:
    """The kinds stored for `item_id` in the backend's feedback table."""
    with contextlib.closing(sqlite3.connect(stack.workdir / "chat.db")) as db:
        rows = db.execute(f"SELECT kind FROM {FEEDBACK_TABLE} WHERE item_id = ?", (item_id,))
        return [kind for (kind,) in rows.fetchall()]


def test_time_zone_comes_from_the_browser_and_the_card_acts(stack: Stack, new_page: Any) -> None:
    """The question "what time is it for me?": the agent asks the page (onClientTool) for its
    zone, the server tool shows a card in that zone, Refresh updates it in place without the
    model, and Copy (a client action, widgets.onAction) puts its text on the clipboard."""
    page = new_page(
        timezone_id=BROWSER_ZONE, permissions=["clipboard-read", "clipboard-write"]
    ).open()
    steps, seen = stack.steps, []

    def current_time(request: Any) -> Any:
        seen.append(request.last_tool_output())
        return steps.call("current_time", timezone=zone_from_tool_output(seen[-1]))

    stack.fake.script(steps.call("get_browser_time_zone"), current_time, steps.say("Here it is."))
    calls_before = len(stack.fake.requests)
    with quick_replies(stack):
        turn = page.send("what time is it for me?")
    assert turn["error"] is None, page.diagnostics()
    record = page.record()
    # The page answered the client tool, and the stream went on from its answer.
    answers = record["clientToolCalls"]
    assert [(a["name"], a["params"], a["result"]) for a in answers] == [
        ("get_browser_time_zone", {}, {"time_zone": BROWSER_ZONE})
    ], page.diagnostics()
    assert [r["type"] for r in turn["requests"]] == [
        "threads.create",
        "threads.add_client_tool_output",
    ]
    assert all(r["status"] == 200 for r in turn["requests"]), turn["requests"]
    # The model saw the browser's zone as the tool's output and passed it on to current_time.
    assert len(seen) == 1 and zone_from_tool_output(seen[0]) == BROWSER_ZONE, seen
    assert len(stack.fake.requests) - calls_before == 3
    assert stack.fake.script_left == 0
    assert record["progress"], "current_time showed no progress"
    assert record["streamOptions"] == {"allow_cancel": True}, "the stop button is off"
    assert turn["assistantText"] == "Here it is."
    # The card, in the browser's zone.
    assert len(turn["widgetItemIds"]) == 1, turn["events"]
    card_id = turn["widgetItemIds"][0]
    card = page.page.locator(f"[data-role=widget][data-item-id='{card_id}']")
    shown = card.inner_text()
    assert BROWSER_ZONE in shown and any(t in shown for t in card_times(BROWSER_ZONE)), shown
    page.screenshot("time-card")

    # Refresh: a server action; the same card comes back refreshed, with no model call.
    calls_before = len(stack.fake.requests)
    refresh = click_widget_button(page, "time.refresh")
    assert refresh["handler"] == "server" and refresh["payload"] == {"timezone": BROWSER_ZONE}
    assert refresh["status"] == 200
    action_turn = page.record()["turns"][-1]
    assert action_turn["request"] == "threads.custom_action", action_turn
    replaced = [e for e in action_turn["events"] if e["type"] == "thread.item.replaced"]
    assert [e["itemId"] for e in replaced] == [card_id], action_turn["events"]
    assert len(stack.fake.requests) == calls_before, "Refresh called the model"
    assert page.page.locator("[data-role=widget]").count() == 1, "the card was not replaced"
    shown = card.inner_text()
    assert BROWSER_ZONE in shown and any(t in shown for t in card_times(BROWSER_ZONE)), shown

    # Copy: handled in the page (widgets.onAction), never sent to the backend.
    requests_before = len(page.record()["requests"])
    copy = click_widget_button(page, "time.copy")
    assert copy["handler"] == "client"
    assert len(page.record()["requests"]) == requests_before, "Copy went to the backend"
    copied = page.page.evaluate("navigator.clipboard.readText()")
    assert copied == copy["payload"]["text"] and BROWSER_ZONE in copied, copied

    # The card is stored: a reload shows it again, with its buttons.
    page.reload()
    items = page.record()["initial"]["items"]
    assert [i["role"] for i in items if i["role"] != "client_tool_call"] == [
        "user",
        "widget",
        "assistant",
    ], items
    assert BROWSER_ZONE in card.inner_text()
    assert card.locator("[data-standin=widget-button]").count() == 2
    assert page.csp_violations() == [], page.csp_violations()


def test_client_tools_and_actions_unknown_to_the_page_say_so(stack: Stack, new_page: Any) -> None:
    """An unknown client tool gets an error result at once (the model is told; the turn goes
    on); an unknown client action is a console error naming where to add it."""
    page = new_page().open()
    result = page.page.evaluate(
        "window.__chatkitStandIn.element._options.onClientTool({name: 'no_such_tool', params: {}})"
    )
    assert set(result) == {"error"}, result
    assert "no_such_tool" in result["error"] and "src/lib/client-tools.ts" in result["error"]
    assert "get_browser_time_zone" in result["error"], "the error does not list the known tools"
    page.page.evaluate(
        "window.__chatkitStandIn.element._options.widgets.onAction("
        "{type: 'no.such.action', payload: {}}, {id: 'x', widget: {type: 'Card', children: []}})"
    )
    line = page.wait_for_console("no.such.action")
    assert line.startswith("error:") and "src/lib/widget-actions.ts" in line, line


def test_thumbs_up_persists_across_a_reload(stack: Stack, new_page: Any) -> None:
    page = new_page().open()
    with quick_replies(stack):
        turn = page.send("rate this reply")
    assert turn["error"] is None, page.diagnostics()
    reply = turn["assistantItemIds"][0]
    page.page.locator(f"[data-standin=thumbs-up][data-item-id='{reply}']").click()
    page.wait_for("window.__chatkitStandIn.feedback[0]?.done", "the thumbs up")
    sent = page.record()["feedback"]
    assert [(f["itemIds"], f["kind"], f["status"], f["error"]) for f in sent] == [
        ([reply], "positive", 200, None)
    ], page.diagnostics()
    page.reload()
    assert reply in [item["id"] for item in page.record()["initial"]["items"]]
    assert stored_feedback(stack, reply) == ["positive"]
    # The reloaded reply takes a change of mind: the same row, now negative.
    page.page.locator(f"[data-standin=thumbs-down][data-item-id='{reply}']").click()
    page.wait_for("window.__chatkitStandIn.feedback[0]?.done", "the thumbs down")
    assert page.record()["feedback"][0]["kind"] == "negative"
    assert page.record()["feedback"][0]["status"] == 200, page.diagnostics()
    assert stored_feedback(stack, reply) == ["negative"]


def test_retry_gives_a_new_reply(stack: Stack, new_page: Any) -> None:
    page = new_page().open()
    with quick_replies(stack):
        first = page.send("tell me something")
        assert first["error"] is None, page.diagnostics()
        old = first["assistantItemIds"][0]
        stack.fake.script(stack.steps.say("A second try."))
        count = len(page.record()["turns"])
        page.page.locator(f"[data-standin=retry][data-item-id='{old}']").click()
        retried = wait_for_turn(page, count, "the retried reply")
    assert retried["request"] == "threads.retry_after_item"
    assert retried["assistantText"] == "A second try."
    assert len(retried["assistantItemIds"]) == 1 and retried["assistantItemIds"] != [old]
    assert stack.fake.requests[-1].last_user_text() == "tell me something"
    assert page.page.locator(f"[data-item-id='{old}']").count() == 0
    page.reload()
    items = page.record()["initial"]["items"]
    assert [(i["role"], i["id"]) for i in items] == [
        ("user", items[0]["id"]),
        ("assistant", retried["assistantItemIds"][0]),
    ], "the old reply is still stored"


def test_model_picker_offers_the_backends_models(stack: Stack, new_page: Any) -> None:
    page = new_page().open()
    page.wait_for("window.__chatkitStandIn.options.composer.models", "the model list")
    with urllib.request.urlopen(stack.backend_url + MODELS_PATH, timeout=10) as response:
        offered = json.load(response)["models"]
    assert [m["id"] for m in offered] == ["fake-model", OTHER_MODEL]
    assert page.record()["options"]["composer"]["models"] == offered
    page.page.locator("[data-standin=model]").select_option(OTHER_MODEL)
    with quick_replies(stack):
        turn = page.send("which model are you?")
    assert turn["error"] is None and turn["model"] == OTHER_MODEL, page.diagnostics()
    assert stack.fake.requests[-1].json["model"] == OTHER_MODEL


def test_without_models_there_is_no_picker_and_no_wait(stack: Stack, new_page: Any) -> None:
    """The widget does not wait for the model list; without one there is no picker."""
    page = new_page(hold=MODELS_PATH).open()
    assert page.held, "the page never asked for the model list"
    assert "models" not in page.record()["options"]["composer"]
    page.fail_held()
    page.wait_for_console("The model picker is off")
    assert page.page.locator("[data-standin=model]").count() == 0
    with quick_replies(stack):
        turn = page.send("hello with the default model")
    assert turn["error"] is None and turn["model"] is None, page.diagnostics()
    # A backend that offers no choice (an empty MODEL_CHOICES): no picker either. The policy
    # waits until the empty list is in, so the options it brings come after the list's.
    empty = new_page(hold=POLICY_PATH)
    empty.context.route(
        f"{empty.origin}{MODELS_PATH}", lambda route: route.fulfill(json={"models": []})
    )
    with empty.page.expect_response(f"{empty.origin}{MODELS_PATH}"):
        empty.open()
    for held in empty.held:
        held.continue_()
    empty.wait_for("window.__chatkitStandIn.options.composer.attachments", "the policy")
    assert "models" not in empty.record()["options"]["composer"]
    assert empty.page.locator("[data-standin=model]").count() == 0
