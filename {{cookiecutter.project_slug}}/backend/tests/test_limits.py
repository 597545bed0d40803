"""Abuse and cost limits (app/limits/), over real HTTP on every store.

Each limit is tried at its edge: the last allowed turn, then the first refused one,
which gets HTTP 429 (413 for a long message) with JSON and Retry-After instead of a
stream, and reaches neither the store nor the model. The limits' clock is frozen per
app, so a window never ends in the middle of a test.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.deps import services_of
from app.limits import Limits
from app.main import create_app
from app.observability import metrics
from app.stores import open_store
from app.stores.base import CounterAdd
from tests.chatkit_client import ChatKitClient, Turn, user_input
from tests.conftest import SettingsFactory
from tests.fake_provider import FakeProvider
from tests.live_server import LiveServer
from tests.store_fixtures import postgres_database
from tests.test_attachments import PNG

# 10 s into a UTC day (and so into a minute and an hour).
START = datetime(2026, 12, 3, tzinfo=UTC).timestamp() + 10

OFF = {
    "rate_limit_user_turns_per_minute": 0,
    "rate_limit_ip_turns_per_minute": 0,
    "rate_limit_user_turns_per_day": 0,
    "rate_limit_ip_threads_per_hour": 0,
}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def limits_of(app: FastAPI) -> Limits:
    limits = services_of(app).chat_server.limits
    assert limits is not None
    return limits


def live_app(make_settings: SettingsFactory, clock: Clock, **overrides: Any) -> FastAPI:
    app = create_app(make_settings(**(OFF | overrides)))
    limits_of(app).clock = clock
    return app


def refused(kind: str) -> float:
    """How many refusals by ``kind`` the chatkit_rate_limited metric counted so far."""
    value = metrics.current().registry.get_sample_value(
        "chatkit_rate_limited_total", {"kind": kind}
    )
    return value or 0.0


def assert_refused(turn: Turn, status: int, code: str, kind: str) -> dict[str, Any]:
    assert turn.status == status, turn.events
    assert turn.events[0]["type"] == "http_error"  # no stream started
    error: dict[str, Any] = httpx.Response(200, content=turn.events[0]["body"]).json()["error"]
    assert (error["code"], error["limit"]) == (code, kind)
    return error


def retry_after(client: ChatKitClient, thread_id: str) -> int:
    response = client.post(
        {
            "type": "threads.add_user_message",
            "params": {
                "thread_id": thread_id,
                "input": user_input("x"),
            },
        }
    )
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) == response.json()["error"]["retry_after"]
    return int(response.headers["retry-after"])


def model_calls(fake: FakeProvider) -> int:
    return sum(1 for request in fake.requests if request.api)


# --- the store's counters ---------------------------------------------------------------


async def test_counters_are_atomic_and_expire(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        expires = datetime.now(UTC) + timedelta(minutes=1)
        values = await asyncio.gather(
            *(store.add_to_counter("k", 60, 1, expires) for _ in range(40))
        )
        assert sorted(values) == list(range(1, 41))
        assert await store.add_to_counter("k", 60, 10, expires) == 50
        assert await store.read_counter("k", 60) == 50
        assert await store.read_counter("k", 120) == 0  # another window
        assert await store.read_counter("other", 60) == 0
        await store.add_to_counter("old", 0, 1, datetime.now(UTC) - timedelta(seconds=1))
        assert await store.delete_expired_counters(datetime.now(UTC)) == 1
        assert await store.read_counter("old", 0) == 0
        assert await store.read_counter("k", 60) == 50
    finally:
        await store.close()


async def test_refunds_into_an_ending_window_race_the_sweep_without_error(
    database_url: str,
) -> None:
    """A refused turn's refund lands in the window that just ended while another replica
    sweeps that window's rows: neither call fails (on PostgreSQL they used to deadlock)."""
    sweeper, turns = await open_store(database_url), await open_store(database_url)
    try:
        ended = datetime.now(UTC) - timedelta(seconds=1)
        for window in range(10):
            pairs = [(f"turns:ip:10.0.0.{i}", f"turns:user:u{i}") for i in range(30)]
            # Stored user rows first: a sweep in table order meets each pair's rows in the
            # opposite order to the refund's (key order).
            for column in (1, 0):
                rows = [CounterAdd(pair[column], window, 1, ended) for pair in pairs]
                await turns.add_to_counters(rows)
            refunds = [
                turns.add_to_counters([CounterAdd(k, window, -1, ended) for k in pair])
                for pair in pairs
            ]
            sweep = sweeper.delete_expired_counters(datetime.now(UTC))
            await asyncio.gather(*refunds[:15], sweep, *refunds[15:])
        # What the sweep skipped, the next one takes.
        await sweeper.delete_expired_counters(datetime.now(UTC))
        assert await sweeper.read_counter("turns:ip:10.0.0.0", 9) == 0
    finally:
        await sweeper.close()
        await turns.close()


# --- message and history size -------------------------------------------------------------


def test_a_message_over_max_message_chars_is_refused_before_it_is_stored(
    make_settings: SettingsFactory, fake: FakeProvider, database_url: str
) -> None:
    app = live_app(make_settings, Clock(), database_url=database_url, max_message_chars=100)
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        first = client.create_thread("a" * 100)  # at the limit
        assert first.status == 200 and not first.errors
        error = assert_refused(
            client.create_thread("a" * 101), 413, "message_too_long", "message_chars"
        )
        assert "100" in error["message"]
        assert_refused(
            client.send(first.thread_id, "b" * 101), 413, "message_too_long", "message_chars"
        )
        assert len(client.list_threads()["data"]) == 1
        assert len(client.all_items(first.thread_id)) == 2  # the first message, its reply
        assert model_calls(fake) == 1


def test_bodies_the_limits_cannot_read_get_the_servers_4xx(
    make_settings: SettingsFactory,
) -> None:
    app = live_app(make_settings, Clock(), rate_limit_ip_turns_per_minute=1)
    nested = "[" * 100_000 + "]" * 100_000
    bodies: list[bytes | str] = [
        b"not json",
        b"[1, 2]",
        b'{"params": {}}',
        '{"type": "threads.add_client_tool_output", "params": {"result": ' + nested + "} }",
        '{"type": "threads.create", "params": {"input": ' + nested + "} }",
    ]
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        for body in bodies:
            status = client.post(body).status_code
            assert 400 <= status < 500 and status != 429, (status, body[:40])


def test_history_max_chars_drops_the_oldest_and_keeps_the_new_message(
    make_settings: SettingsFactory, fake: FakeProvider, provider: str
) -> None:
    fake.reply = "ok"
    app = live_app(make_settings, Clock(), provider=provider, history_max_chars=300)
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        messages = [f"m{i} " + "x" * 96 for i in range(4)]  # 100 characters each
        thread_id = client.create_thread(messages[0]).thread_id
        for message in messages[1:]:
            assert not client.send(thread_id, message).errors
        # Newest first: 100 + 2 + 100 + 2 fit in 300; the next 100 does not.
        sent = [text for role, text in fake.requests[-1].messages_text() if role == "user"]
        assert sent == messages[2:]
        huge = "y" * 500  # over the cap alone: still sent, whole
        assert not client.send(thread_id, huge).errors
        sent = [text for role, text in fake.requests[-1].messages_text() if role == "user"]
        assert sent == [huge]


def test_max_output_tokens_reaches_the_model(
    make_settings: SettingsFactory, fake: FakeProvider, provider: str
) -> None:
    field = "max_output_tokens" if provider == "openai" else "max_tokens"
    for cap in (77, None):
        app = live_app(make_settings, Clock(), provider=provider, max_output_tokens=cap)
        with LiveServer(app) as server, ChatKitClient(server.url) as client:
            assert not client.create_thread("hello").errors
        assert fake.requests[-1].json.get(field) == cap


# --- turn rates ---------------------------------------------------------------------------


def test_user_turns_per_minute_at_the_edge(
    make_settings: SettingsFactory, fake: FakeProvider, provider: str, database_url: str
) -> None:
    clock = Clock()
    app = live_app(
        make_settings,
        clock,
        provider=provider,
        database_url=database_url,
        rate_limit_user_turns_per_minute=3,
    )
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        thread_id = client.create_thread("one").thread_id
        for text in ("two", "three"):
            assert not client.send(thread_id, text).errors
        before = refused("user_turns")
        assert_refused(client.send(thread_id, "four"), 429, "rate_limited", "user_turns")
        assert refused("user_turns") == before + 1
        assert retry_after(client, thread_id) == 50  # the minute's 50 s left
        assert model_calls(fake) == 3
        assert len(client.all_items(thread_id)) == 6  # nothing of the refused turns
        with ChatKitClient(server.url) as other:  # another user is not limited
            assert not other.create_thread("hi").errors
        clock.now += 50  # the next minute
        assert not client.send(thread_id, "five").errors


def test_user_turns_per_day_at_the_edge(make_settings: SettingsFactory, database_url: str) -> None:
    clock = Clock()
    app = live_app(make_settings, clock, database_url=database_url, rate_limit_user_turns_per_day=2)
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        thread_id = client.create_thread("one").thread_id
        assert not client.send(thread_id, "two").errors
        clock.now += 3600  # a new minute and hour, the same day
        assert_refused(client.send(thread_id, "three"), 429, "rate_limited", "daily_turns")
        assert retry_after(client, thread_id) == 86_400 - 10 - 3600
        clock.now = START + 86_400 - 10  # the next day
        assert not client.send(thread_id, "three").errors


def uploads(outcome: str) -> float:
    """The chatkit_attachment_uploads metric of ``outcome`` so far."""
    value = metrics.current().registry.get_sample_value(
        "chatkit_attachment_uploads_total", {"outcome": outcome}
    )
    return value or 0.0


def test_uploads_per_minute_and_bytes_per_day_at_the_edge(make_settings: SettingsFactory) -> None:
    clock = Clock()
    app = live_app(
        make_settings,
        clock,
        attachments_enabled=True,
        rate_limit_user_uploads_per_minute=3,
        rate_limit_user_upload_bytes_per_day=2000,
    )
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        for _ in range(3):
            assert client.create_attachment("a.txt", "text/plain", 100).status_code == 200
        before = refused("user_uploads")
        fourth = client.create_attachment("a.txt", "text/plain", 100)
        assert fourth.status_code == 429, fourth.text
        assert fourth.json()["error"]["limit"] == "user_uploads"
        assert "wait 50 seconds and attach it again" in fourth.json()["error"]["message"]
        assert fourth.headers["retry-after"] == "50"
        assert refused("user_uploads") == before + 1
        with ChatKitClient(server.url) as other:  # another user is not limited
            assert other.create_attachment("a.txt", "text/plain", 100).status_code == 200

        clock.now += 60  # the next minute: 300 bytes of today's 2000 used (not the 4th's)
        created = client.create_attachment("a.png", "image/png", len(PNG))
        assert created.status_code == 200, created.text
        rest = 2000 - 300 - len(PNG)
        over = client.create_attachment("b.txt", "text/plain", rest + 1)
        assert over.status_code == 429 and over.json()["error"]["limit"] == "upload_bytes"
        assert int(over.headers["retry-after"]) == 86_400 - 70  # until midnight UTC
        # The refused file is not counted: a smaller one still fits, to the byte.
        assert client.create_attachment("b.txt", "text/plain", rest).status_code == 200
        for size in (1, 10**20):  # 10**20: past any 64-bit counter
            refused_file = client.create_attachment("c.txt", "text/plain", size)
            assert refused_file.status_code == 429, refused_file.text

        # An upload may not exceed its declared size: the bytes counted are the bytes.
        stored, refusals = uploads("stored"), uploads("refused")
        descriptor = created.json()["upload_descriptor"]
        bigger = client.upload(descriptor, PNG + b"x" * 100)
        assert bigger.status_code == 413
        assert bigger.json()["error"]["code"] == "larger_than_declared"
        assert client.upload(descriptor, PNG).status_code == 200
        assert (uploads("stored"), uploads("refused")) == (stored + 1, refusals + 1)
        assert metrics.current().registry.get_sample_value(
            "chatkit_attachment_upload_bytes_total"
        ) == len(PNG)


def test_ip_turns_per_minute_and_health_never_limited(
    make_settings: SettingsFactory, database_url: str
) -> None:
    app = live_app(
        make_settings, Clock(), database_url=database_url, rate_limit_ip_turns_per_minute=2
    )
    with LiveServer(app) as server:
        # Fresh cookies are fresh users: the client IP's limit holds them all.
        for _ in range(2):
            with ChatKitClient(server.url) as client:
                assert not client.create_thread("hi").errors
        with ChatKitClient(server.url) as client:
            assert_refused(client.create_thread("hi"), 429, "rate_limited", "ip_turns")
            assert client.list_threads()["data"] == []  # not a turn: not limited
            for _ in range(5):
                assert client.http.get("/health").status_code == 200


def test_thread_creation_per_ip_at_the_edge(
    make_settings: SettingsFactory, database_url: str
) -> None:
    clock = Clock()
    app = live_app(
        make_settings, clock, database_url=database_url, rate_limit_ip_threads_per_hour=2
    )
    with LiveServer(app) as server:
        threads = []
        for _ in range(2):
            with ChatKitClient(server.url) as client:
                threads.append(client.create_thread("hi"))
                assert not threads[-1].errors
        with ChatKitClient(server.url) as client:
            assert_refused(client.create_thread("hi"), 429, "rate_limited", "ip_threads")
            assert client.list_threads()["data"] == []
        clock.now += 3600 - 10  # the next hour
        with ChatKitClient(server.url) as client:
            assert not client.create_thread("hi").errors


def _turn_with_forwarded_for(url: str, address: str) -> int:
    with ChatKitClient(url) as client:
        client.http.headers["X-Forwarded-For"] = address
        return client.create_thread("hi").status


def test_forwarded_for_counts_only_from_a_trusted_proxy(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = {"database_url": f"sqlite:///{tmp_path / 'ip.db'}"}
    # The test client (127.0.0.1) is uvicorn's default trusted proxy: each forwarded
    # client has its own count.
    app = live_app(make_settings, Clock(), rate_limit_ip_turns_per_minute=1, **settings)
    with LiveServer(app) as server:
        assert _turn_with_forwarded_for(server.url, "203.0.113.1") == 200
        assert _turn_with_forwarded_for(server.url, "203.0.113.2") == 200
        assert _turn_with_forwarded_for(server.url, "203.0.113.1") == 429
    # From a peer that is not in FORWARDED_ALLOW_IPS the header is a spoof: ignored,
    # every request counts against the socket's address.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.10")
    app = live_app(make_settings, Clock(), rate_limit_ip_turns_per_minute=1, **settings)
    with LiveServer(app) as server:
        assert _turn_with_forwarded_for(server.url, "198.51.100.1") == 200
        assert _turn_with_forwarded_for(server.url, "198.51.100.2") == 429
        assert _turn_with_forwarded_for(server.url, "198.51.100.3") == 429


# --- tokens -------------------------------------------------------------------------------


def test_token_usage_is_counted_and_the_budget_refuses_turns_past_it(
    make_settings: SettingsFactory, fake: FakeProvider, provider: str, database_url: str
) -> None:
    fake.reply = "three word reply"
    app = live_app(make_settings, Clock(), provider=provider, database_url=database_url)
    limits = limits_of(app)
    with LiveServer(app) as server, ChatKitClient(server.url) as client:
        turn = client.create_thread("count my tokens")
        assert not turn.errors
        user_id = services_of(app).sessions.verify(client.http.cookies["chatkit_session"])
        assert user_id is not None
        reported_in = sum(len(text.split()) for _, text in fake.requests[-1].messages_text())

        async def usage() -> tuple[int, int]:
            # Another connection to the same database (the app's own belong to its loop).
            memory = database_url == "memory://"
            store = services_of(app).store if memory else await open_store(database_url)
            try:
                return await Limits(limits.settings, store, limits.clock).usage_today(user_id)
            finally:
                if not memory:
                    await store.close()

        used = asyncio.run(usage())
        assert used == (reported_in, 3)
        # The budget refuses a turn once what was used reaches it, not before.
        limits.settings = limits.settings.model_copy(
            update={"token_budget_user_per_day": sum(used) + 1}
        )
        assert not client.send(turn.thread_id, "again").errors
        assert_refused(client.send(turn.thread_id, "more"), 429, "token_budget", "token_budget")
        assert retry_after(client, turn.thread_id) == 86_400 - 10
        assert model_calls(fake) == 2


# --- replicas -----------------------------------------------------------------------------


def test_two_replicas_on_one_postgres_database_share_the_limits(
    make_settings: SettingsFactory, fake: FakeProvider
) -> None:
    with postgres_database() as url:
        clock = Clock()
        limits = {"database_url": url, "rate_limit_ip_turns_per_minute": 5}
        first = live_app(make_settings, clock, **limits)
        second = live_app(make_settings, clock, **limits)
        with LiveServer(first) as a, LiveServer(second) as b:
            urls = [a.url, b.url] * 6  # 12 fresh users at once, from one IP

            def create(url: str) -> int:
                with ChatKitClient(url) as client:
                    return client.create_thread("flood").status

            with ThreadPoolExecutor(max_workers=6) as pool:
                statuses = list(pool.map(create, urls))
        assert sorted(statuses) == [200] * 5 + [429] * 7
        assert model_calls(fake) == 5
