"""The smoke test: `python -m tests.smoke` from backend/ (or `make smoke`).

Boots the real app the way production does (`uvicorn app.main:app` in a subprocess, on a
loopback port), points the configured provider's real client at the loopback fake
provider (tests/fake_provider.py) with a dummy key, and holds a two-turn conversation
over HTTP as the ChatKit widget would. It checks that:

* both turns stream a reply, with no error event;
* the second request to the model carries the first exchange (history reached the model);
* the two replies have distinct ids (not the SDK's shared `__fake_id__`);
* the store kept all four items (`items.list`);
* with attachments on: an image uploaded as the widget does (`attachments.create`, then
  the upload descriptor) reaches the model byte for byte, and its preview is served;
* with AUTH_MODE=oidc: a request without a token gets 401, and the conversation runs
  signed in with a token of the loopback OpenID provider (tests/oidc_issuer.py).

The store is the configured one (DATABASE_URL from the environment, backend/.env or .env):
memory:// stays in the app process; SQLite uses a temporary file, never your database;
PostgreSQL uses DATABASE_URL itself, once it answers. No API key and no network needed.

Exit status: 0 passed; 1 the app misbehaved (the output names the check); 2 the
environment is not ready (e.g. PostgreSQL is down): fix that, then run it again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from app.provider_table import KEY_VARIABLES
from tests.chatkit_client import ChatKitClient, Turn
from tests.fake_provider import FakeProvider
from tests.oidc_issuer import OidcIssuer

BACKEND = Path(__file__).resolve().parents[1]
DUMMY_KEY = "smoke-test-key"
BOOT_TIMEOUT_SECONDS = 60
FIRST = "Hello from the smoke test"
SECOND = "What did I say first?"
PICTURE = "What is in this picture?"
# The smallest PNG: one transparent pixel.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)

EXIT_PASSED, EXIT_FAILED, EXIT_ENVIRONMENT = 0, 1, 2


class SmokeFailure(Exception):
    """The app misbehaved: a defect."""


class EnvironmentNotReady(Exception):
    """Something outside the app is missing (e.g. the database server)."""


_started = time.perf_counter()


def say(message: str) -> None:
    print(f"smoke [{time.perf_counter() - _started:5.1f}s] {message}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def configured() -> tuple[str, str, str, str]:
    """(provider, model, database URL, auth mode) as the app would read them, without
    starting it."""
    from app.config import ConfigError, load_settings

    # Only the values the app would use are read here; the secret, the key and the
    # issuer are placeholders because the smoke run supplies its own.
    try:
        settings = load_settings(
            session_secret="s" * 40,
            llm_base_url="http://127.0.0.1:9/v1",
            oidc_issuer="http://127.0.0.1:9",
            oidc_audience="smoke",
        )
    except ConfigError as error:
        raise SmokeFailure(f"configuration error: {error}") from None
    return settings.llm_provider, settings.model_name, settings.database_url, settings.auth_mode


def store_kind(url: str) -> str:
    scheme = url.strip().split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "memory":
        return "memory"
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgres", "postgresql"):
        return "postgres"
    raise SmokeFailure(f"DATABASE_URL has an unknown scheme {scheme!r}")


def check_postgres(url: str) -> None:
    """Connect once, so a server that is down is reported as such, not as an app failure."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    async def connect() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        asyncio.run(connect())
    except Exception as error:
        raise EnvironmentNotReady(
            f"PostgreSQL is not reachable at {where} ({type(error).__name__}: {error}).\n"
            f"Start the server and create the database (e.g. `createdb -h {parsed.host} "
            f"-U {parsed.username or 'postgres'} {parsed.database}`), or point DATABASE_URL "
            "(in .env or the environment) at one; then run `make smoke` again."
        ) from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_app(env: dict[str, str], log: IO[str]) -> Iterator[str]:
    """`uvicorn app.main:app` on a free loopback port; yields its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-server-header",
        "--proxy-headers",
    ]
    process = subprocess.Popen(
        command, cwd=BACKEND, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise SmokeFailure(f"the app exited with status {process.returncode} on start")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SmokeFailure(f"the app did not answer /health in {BOOT_TIMEOUT_SECONDS} s")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def assistant_reply(turn: Turn, label: str) -> dict[str, Any]:
    check(turn.status == 200, f"{label}: HTTP {turn.status}: {turn.events}")
    check(turn.errors == [], f"{label}: the stream carried an error: {turn.errors}")
    messages = turn.assistant_messages
    check(len(messages) == 1, f"{label}: expected one assistant message, got {len(messages)}")
    check(bool(turn.reply_text.strip()), f"{label}: the reply is empty")
    return messages[0]


def converse(url: str, fake: FakeProvider, token: str | None = None) -> None:
    with ChatKitClient(url) as browser:
        if token is not None:
            anonymous = browser.post({"type": "threads.list", "params": {}})
            check(anonymous.status_code == 401, f"no token: HTTP {anonymous.status_code}")
            browser.http.headers["authorization"] = f"Bearer {token}"
            say("signed in with a bearer token; without one: 401")
        first = browser.create_thread(FIRST)
        first_reply = assistant_reply(first, "turn 1")
        thread_id = first.thread_id
        say(f"turn 1: {first.reply_text!r}")

        second = browser.send(thread_id, SECOND)
        second_reply = assistant_reply(second, "turn 2")
        say(f"turn 2: {second.reply_text!r}")

        model_calls = [request for request in fake.requests if request.api is not None]
        check(len(model_calls) == 2, f"expected 2 model requests, the fake got {len(model_calls)}")
        last = model_calls[-1]
        check(
            last.authorization == f"Bearer {DUMMY_KEY}",
            "the provider's key did not reach the model request",
        )
        seen = last.messages_text()
        check(("user", FIRST) in seen, f"turn 2: the model did not see the first message: {seen}")
        check(
            ("assistant", first.reply_text) in seen,
            f"turn 2: the model did not see the first reply: {seen}",
        )
        check(seen[-1] == ("user", SECOND), f"turn 2: the new message is not last: {seen}")
        say(f"history reached the model ({last.api} API, {len(seen)} messages)")

        ids = [first_reply["id"], second_reply["id"]]
        check(ids[0] != ids[1], f"both replies have the id {ids[0]!r}: one overwrote the other")
        check("__fake_id__" not in ids, "a reply kept the SDK's placeholder id __fake_id__")
        check(second.delta_item_ids <= {ids[1]}, "turn 2's text deltas point at another item")
        say(f"reply ids are distinct: {ids[0]}, {ids[1]}")

        items = browser.all_items(thread_id)
        kinds = [item["type"] for item in items]
        check(
            kinds == ["user_message", "assistant_message"] * 2,
            f"items.list returned {kinds}, expected two user/assistant pairs",
        )
        stored_replies = [item["id"] for item in items if item["type"] == "assistant_message"]
        check(stored_replies == ids, f"stored replies {stored_replies} differ from {ids}")
        say(f"the store kept all {len(items)} items (items.list)")

        policy = browser.http.get("/chatkit/attachments/policy").json()
        if policy.get("enabled") and "image/png" in policy.get("accept", {}):
            send_picture(browser, fake)
        else:
            say("attachments are off or take no PNG: no picture sent")


def send_picture(browser: ChatKitClient, fake: FakeProvider) -> None:
    created = browser.create_attachment("pixel.png", "image/png", len(PIXEL_PNG))
    check(created.status_code == 200, f"attachments.create: HTTP {created.status_code}")
    attachment = created.json()
    uploaded = browser.upload(attachment["upload_descriptor"], PIXEL_PNG, "pixel.png")
    check(uploaded.status_code == 200, f"upload: HTTP {uploaded.status_code}: {uploaded.text}")
    turn = browser.create_thread(PICTURE, [attachment["id"]])
    assistant_reply(turn, "picture turn")
    images = fake.requests[-1].images()
    check(images == [("image/png", PIXEL_PNG)], f"the model got {len(images)} images, not the PNG")
    preview = browser.http.get(attachment["preview_url"])
    check(
        preview.status_code == 200 and preview.content == PIXEL_PNG,
        f"the preview answered HTTP {preview.status_code}",
    )
    say(f"picture turn: {turn.reply_text!r}; the preview is served")


def run() -> int:
    provider, model, database_url, auth_mode = configured()
    kind = store_kind(database_url)
    with tempfile.TemporaryDirectory(prefix="smoke-") as scratch:
        if kind == "sqlite":
            database_url = f"sqlite+aiosqlite:///{Path(scratch) / 'smoke.db'}"
        elif kind == "postgres":
            check_postgres(database_url)
        say(f"provider {provider} (model {model}), store {kind}, sign-in {auth_mode}")
        with FakeProvider() as fake, ExitStack() as stack:
            env = {
                **os.environ,
                # Whichever provider is configured finds its key; the fake checks it arrived.
                **dict.fromkeys(KEY_VARIABLES, DUMMY_KEY),
                "LLM_BASE_URL": fake.base_url,
                "LLM_MAX_RETRIES": "0",
                "LLM_TIMEOUT_SECONDS": "30",
                "DATABASE_URL": database_url,
                "SESSION_SECRET": secrets.token_urlsafe(32),
                # The smoke test checks the app, not the MCP server it may be pointed at.
                "MCP_SERVER_URL": "",
                "OPENAI_AGENTS_DISABLE_TRACING": "1",
                "LOG_LEVEL": "WARNING",
            }
            token = None
            if auth_mode == "oidc":
                issuer = stack.enter_context(OidcIssuer())
                env |= {"OIDC_ISSUER": issuer.url, "OIDC_AUDIENCE": issuer.audience}
                env |= {"OIDC_JWKS_URL": "", "AUTH_MODE": "oidc"}
                token = issuer.mint("smoke-user")
            log_path = Path(scratch) / "app.log"
            with log_path.open("w") as log:
                try:
                    with running_app(env, log) as url:
                        say(f"app booted: uvicorn app.main:app on {url}, fake at {fake.base_url}")
                        converse(url, fake, token)
                except SmokeFailure:
                    log.flush()
                    output = log_path.read_text().strip()
                    if output:
                        print("--- app output ---\n" + output[-6000:], flush=True)
                    raise
    say("PASSED")
    return EXIT_PASSED


def main() -> int:
    try:
        return run()
    except EnvironmentNotReady as error:
        print(f"smoke: NOT RUN: {error}", file=sys.stderr, flush=True)
        return EXIT_ENVIRONMENT
    except SmokeFailure as error:
        print(f"smoke: FAILED: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
