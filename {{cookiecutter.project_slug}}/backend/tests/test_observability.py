"""Observability from outside: X-Request-ID on every response and log line, one log line
per turn with its fields and no message text or secret, and /metrics behind its token."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from app import extensions
from app.observability.metrics import record_rate_limited
from app.provider_table import PROVIDERS
from tests.chatkit_client import ChatKitClient, user_input
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider, Fault, RecordedRequest

BACKEND = Path(__file__).resolve().parents[1]
TOKEN = "metrics-SECRET-token-7f3a9c"
API_KEY = "sk-test-SECRETKEY-9d8c7b6a5f4e3d2c"
SESSION_SECRET = "session-SECRET-" + "x" * 32
LINK_SIGNATURE = "linkSIGNATUREvalue0123456789"
# What a user might type: none of it may reach the logs.
MESSAGE = "my password is Tr0ub4dor&3 and my card is 4111 1111 1111 1111 PRIVATE-WORDS"


# --- X-Request-ID ---------------------------------------------------------------------


def test_request_id_is_the_callers_when_valid_else_new(
    backend: BackendFactory, database_url: str
) -> None:
    with backend(database_url=database_url) as url, httpx.Client(base_url=url) as http:
        given = "0b9e1c2a-4f5d-4e6f-8a7b-1c2d3e4f5a6b"
        assert http.get("/health", headers={"X-Request-ID": given}).headers["x-request-id"] == (
            given
        )
        new_ids = [http.get("/health").headers["x-request-id"] for _ in range(2)]
        for bad in ("has spaces in it", "x" * 129, 'quote"d', "-leading-dash", ""):
            new_ids.append(
                http.get("/health", headers={"X-Request-ID": bad}).headers["x-request-id"]
            )
        assert len(set(new_ids)) == len(new_ids)
        assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in new_ids)
        # Error answers carry it too, from the chat endpoint as from any other route.
        refused = http.post("/chatkit", content=b"{not json", headers={"X-Request-ID": "abc.1"})
        assert refused.status_code == 400
        assert refused.headers["x-request-id"] == "abc.1"
        assert http.get("/no-such-page").headers["x-request-id"]


# --- /metrics --------------------------------------------------------------------------


def metric(text: str, sample_name: str, **labels: str) -> float:
    """The value of one sample of a /metrics page (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return 0.0


def test_metrics_are_off_without_a_token(backend: BackendFactory, database_url: str) -> None:
    with backend(database_url=database_url) as url:
        assert httpx.get(f"{url}/metrics").status_code == 404
        assert (
            httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
            == 404
        )


def test_metrics_need_their_token_and_count_turns(
    backend: BackendFactory,
    provider: str,
    database_url: str,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A route of the app's own that hits a limit: what the rate limits call.
    limited = APIRouter()

    @limited.get("/api/limited")
    async def limited_route() -> dict[str, str]:
        record_rate_limited("test_limit")
        return {"status": "refused"}

    monkeypatch.setattr(extensions, "ROUTERS", [limited])
    fake.reply = "one two three"
    with (
        backend(provider=provider, database_url=database_url, metrics_token=TOKEN) as url,
        httpx.Client(base_url=url) as http,
        ChatKitClient(url) as browser,
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "chatkit_" not in refused.text

        def scrape() -> str:
            response = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            return response.text

        before = scrape()
        assert metric(before, "chatkit_turns_total", outcome="ok") == 0

        first = browser.create_thread("hello")
        assert first.errors == [] and first.reply_text == "one two three"
        second = browser.send(first.thread_id, "and again")
        assert second.errors == []
        fake.fail_next(Fault.HTTP_500)
        failed = browser.send(first.thread_id, "this one fails")
        assert failed.errors
        assert http.get("/api/limited").status_code == 200

        after = scrape()
        assert metric(after, "chatkit_turns_total", outcome="ok") == 2
        assert metric(after, "chatkit_turns_total", outcome="error") == 1
        assert metric(after, "chatkit_provider_errors_total", kind="server_error") == 1
        assert metric(after, "chatkit_time_to_first_token_seconds_count") == 2
        assert metric(after, "chatkit_turn_duration_seconds_count") == 3
        assert metric(after, "chatkit_tokens_total", direction="output") == 6
        # The fake counts a request's input tokens as the words it was sent.
        sent = [r for r in fake.requests if r.api and r.fault is None]
        assert metric(after, "chatkit_tokens_total", direction="input") == sum(
            input_words(r) for r in sent
        )
        assert metric(after, "chatkit_rate_limited_total", kind="test_limit") == 1
        assert metric(after, "chatkit_active_streams") == 0


def input_words(request: RecordedRequest) -> int:
    return sum(len(text.split()) for _, text in request.messages_text())


def hold_replies(fake: FakeProvider, text: str) -> tuple[threading.Event, threading.Event]:
    """The fake answers only once `release` is set; `asked` is set when a request arrives."""
    asked, release = threading.Event(), threading.Event()

    def held_reply(request: Any) -> str:
        asked.set()
        release.wait(timeout=30)
        return text

    fake.reply = held_reply
    return asked, release


def test_active_streams_counts_turns_in_flight(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    asked, release = hold_replies(fake, "done")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with backend(provider=provider, database_url=database_url, metrics_token=TOKEN) as url:
        with ChatKitClient(url) as browser:
            results: list[Any] = []
            sender = threading.Thread(target=lambda: results.append(browser.create_thread("hi")))
            sender.start()
            try:
                assert asked.wait(timeout=30)
                during = httpx.get(f"{url}/metrics", headers=auth).text
                assert metric(during, "chatkit_active_streams") == 1
            finally:
                release.set()
                sender.join(timeout=30)
        assert results and results[0].errors == []
        after = httpx.get(f"{url}/metrics", headers=auth).text
        assert metric(after, "chatkit_active_streams") == 0
        assert metric(after, "chatkit_turns_total", outcome="ok") == 1


def test_a_turn_the_client_drops_counts_as_cancelled(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    asked, release = hold_replies(fake, "too late")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"type": "threads.create", "params": {"input": user_input("hi")}})
    with backend(provider=provider, database_url=database_url, metrics_token=TOKEN) as url:
        try:
            with (
                httpx.Client(base_url=url, timeout=30) as http,
                http.stream(
                    "POST", "/chatkit", content=body, headers={"content-type": "application/json"}
                ) as response,
            ):
                assert response.status_code == 200
                assert asked.wait(timeout=30)
            # The connection is closed mid-reply; the turn ends once the server sees it.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                page = httpx.get(f"{url}/metrics", headers=auth).text
                if metric(page, "chatkit_turns_total", outcome="cancelled"):
                    break
                time.sleep(0.05)
        finally:
            release.set()
        assert metric(page, "chatkit_turns_total", outcome="cancelled") == 1
        assert metric(page, "chatkit_turns_total", outcome="ok") == 0
        assert metric(page, "chatkit_active_streams") == 0


# --- logs, from a real process ---------------------------------------------------------


@contextmanager
def backend_process(
    fake: FakeProvider, provider: str, database_url: str, **env: str
) -> Iterator[tuple[str, list[str]]]:
    """`uvicorn --factory app.main:create_app` on loopback; yields its URL and stderr lines
    (complete once the block ends)."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process_env = {
        **clean,
        "LLM_PROVIDER": provider,
        "MODEL_NAME": "fake-model",
        "LLM_BASE_URL": fake.base_url,
        "LLM_MAX_RETRIES": "0",
        PROVIDERS[provider].key_variable: API_KEY,
        "DATABASE_URL": database_url,
        "SESSION_SECRET": SESSION_SECRET,
        "METRICS_TOKEN": TOKEN,
        "MCP_SERVER_URL": "",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        **env,
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=BACKEND, env=process_env, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stderr is not None
    lines: list[str] = []
    started = threading.Event()
    found: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            url = re.search(r"Uvicorn running on (http://[0-9.:]+)", line)
            if url and not found:
                found.append(url.group(1))
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started.wait(timeout=60)
        if not found:
            pytest.fail("the backend did not start:\n" + "\n".join(lines))
        yield found[0], lines
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)


def user_id_of(browser: ChatKitClient) -> str:
    # The session cookie is v1.<user id>.<issued at>.<signature>.
    return browser.http.cookies["chatkit_session"].split(".")[1]


def test_json_logs_carry_request_ids_and_one_line_per_turn_without_text_or_secrets(
    fake: FakeProvider, provider: str, database_url: str
) -> None:
    with backend_process(fake, provider, database_url, LOG_FORMAT="json") as (url, lines):
        with ChatKitClient(url) as browser:
            browser.http.headers["X-Request-ID"] = "turn-one"
            first = browser.create_thread(MESSAGE)
            assert first.errors == []
            browser.http.headers["X-Request-ID"] = "turn-two"
            assert browser.send(first.thread_id, MESSAGE).errors == []
            browser.http.headers["X-Request-ID"] = "turn-three"
            fake.fail_next(Fault.HTTP_500)
            assert browser.send(first.thread_id, "fails").errors
            user = user_id_of(browser)
            # A signed attachment link's query: its values stay out of the access line.
            link = f"/chatkit/attachments/atc_x?user={user}&expires=1&signature={LINK_SIGNATURE}"
            assert browser.http.get(link).status_code == 403
        with ChatKitClient(url) as other:
            other.http.headers["X-Request-ID"] = "other-user"
            assert other.create_thread("hello").errors == []
            other_user = user_id_of(other)
        metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert metrics.status_code == 200

    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message", "request_id"} <= r.keys() for r in records)
    turns = [r for r in records if r["logger"] == "app.turns"]
    assert [t["request_id"] for t in turns] == ["turn-one", "turn-two", "turn-three", "other-user"]
    for t in turns:
        assert t["thread"].startswith("thr")
        assert t["provider"] == provider and t["model"] == "fake-model"
        assert isinstance(t["duration_ms"], int) and t["duration_ms"] >= 0
    ok = turns[0]
    assert ok["outcome"] == "ok" and ok["thread"] == first.thread_id
    assert ok["user"] == hashlib.sha256(user.encode()).hexdigest()[:16] == turns[1]["user"]
    assert turns[3]["user"] == hashlib.sha256(other_user.encode()).hexdigest()[:16]
    assert isinstance(ok["ttft_ms"], int) and ok["ttft_ms"] <= ok["duration_ms"]
    assert ok["tokens_in"] > 0 and ok["tokens_out"] == len(first.reply_text.split())
    assert turns[2]["outcome"] == "error" and turns[2]["error"] == "server_error"
    assert turns[2]["tokens_out"] == 0 and turns[2]["ttft_ms"] is None
    # Uvicorn's access lines carry the id of the request they log.
    access = [r for r in records if r["logger"] == "uvicorn.access" and "/chatkit" in r["message"]]
    assert {r["request_id"] for r in access} >= {"turn-one", "turn-two", "turn-three"}

    log = "\n".join(lines)
    redacted = "/chatkit/attachments/atc_x?user=REDACTED&expires=REDACTED&signature=REDACTED"
    assert any(redacted in r["message"] for r in access)
    secrets = [API_KEY, SESSION_SECRET, TOKEN, user, other_user, LINK_SIGNATURE]
    words = ["Tr0ub4dor", "4111 1111", "PRIVATE-WORDS", first.reply_text]
    assert [s for s in secrets + words if s in log] == []


def test_text_logs_carry_request_ids_and_the_turn_line(
    fake: FakeProvider, database_url: str
) -> None:
    with backend_process(fake, "openai", database_url, LOG_FORMAT="text") as (url, lines):
        with ChatKitClient(url) as browser:
            browser.http.headers["X-Request-ID"] = "text-turn"
            assert browser.create_thread(MESSAGE).errors == []
    turn_lines = [line for line in lines if line.startswith("INFO app.turns ")]
    assert len(turn_lines) == 1
    assert turn_lines[0].startswith("INFO app.turns [text-turn]: turn user=")
    for field in ("thread=thr", "provider=openai", "model=fake-model", "ttft_ms=", "outcome=ok"):
        assert field in turn_lines[0]
    assert any("uvicorn.access [text-turn]" in line and "/chatkit" in line for line in lines)
    log = "\n".join(lines)
    assert [s for s in (API_KEY, SESSION_SECRET, "Tr0ub4dor", "PRIVATE-WORDS") if s in log] == []
