"""The endpoint from the outside: bad input gets 4xx, users never see each other."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.chatkit_client import ChatKitClient, user_input
from tests.conftest import BackendFactory


@pytest.fixture
def url(backend: BackendFactory) -> Iterator[str]:
    with backend(max_request_bytes=50_000) as live_url:
        yield live_url


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"type": "threads.list", "params": {', 400, "invalid_json"),
        (b"\xff\xfe not utf-8", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b'{"type": "threads.explode", "params": {}}', 422, "invalid_request"),
        (b'{"type": "threads.list", "params": {"limit": "many"}}', 422, "invalid_request"),
        (
            b'{"type": "threads.create", "params": {"input": {"content": 7}}}',
            422,
            "invalid_request",
        ),
        (b"[1, 2, 3]", 422, "invalid_request"),
        (
            b'{"type": "threads.get_by_id", "params": {"thread_id": "thr_missing"}}',
            404,
            "not_found",
        ),
        (b'{"type": "items.list", "params": {"thread_id": "thr_missing"}}', 404, "not_found"),
        (
            b'{"type": "attachments.create", "params": '
            b'{"name": "a.html", "size": 1, "mime_type": "text/html"}}',
            415,
            "unsupported_type",
        ),
    ],
)
def test_bad_requests_get_a_clear_4xx(url: str, body: bytes, status: int, code: str) -> None:
    response = httpx.post(f"{url}/chatkit", content=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_streaming_request_for_a_missing_thread_is_404_not_a_torn_stream(url: str) -> None:
    payload = {
        "type": "threads.add_user_message",
        "params": {"thread_id": "thr_missing", "input": user_input("hi")},
    }
    response = httpx.post(f"{url}/chatkit", json=payload)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_oversized_body_is_413(url: str) -> None:
    huge = json.dumps({"type": "threads.create", "params": {"input": user_input("x" * 60_000)}})
    assert httpx.post(f"{url}/chatkit", content=huge).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
        for _ in range(100):
            yield b"x" * 1000

    assert httpx.post(f"{url}/chatkit", content=chunks()).status_code == 413


def test_stream_headers_and_session_cookie(url: str) -> None:
    with ChatKitClient(url) as browser:
        response = browser.post({"type": "threads.create", "params": {"input": user_input("hi")}})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"].startswith("no-cache")
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-content-type-options"] == "nosniff"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        # A known browser is not given a new identity.
        again = browser.post({"type": "threads.list", "params": {}})
        assert "set-cookie" not in again.headers


def test_cookie_is_secure_behind_an_https_proxy(url: str) -> None:
    response = httpx.post(
        f"{url}/chatkit",
        json={"type": "threads.list", "params": {}},
        headers={"x-forwarded-proto": "https"},
    )
    assert "secure" in response.headers["set-cookie"].lower()


def test_health(url: str) -> None:
    response = httpx.get(f"{url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_cors_allows_the_configured_origin_with_credentials(url: str) -> None:
    preflight = httpx.options(
        f"{url}/chatkit",
        headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"},
    )
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    evil = httpx.options(
        f"{url}/chatkit",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in evil.headers


def test_two_browsers_never_see_each_other(backend: BackendFactory, database_url: str) -> None:
    with (
        backend(database_url=database_url) as live_url,
        ChatKitClient(live_url) as alice,
        ChatKitClient(live_url) as mallory,
    ):
        first = alice.create_thread("alice's secret")
        thread_id = first.thread_id
        [reply] = first.assistant_messages
        user_item = first.of_type("thread.item.done")[0]["item"]

        assert mallory.list_threads()["data"] == []
        attempts = {
            "threads.get_by_id": {"thread_id": thread_id},
            "items.list": {"thread_id": thread_id},
            "threads.update": {"thread_id": thread_id, "title": "pwned"},
            "threads.delete": {"thread_id": thread_id},
            "items.feedback": {
                "thread_id": thread_id,
                "item_ids": [reply["id"]],
                "kind": "negative",
            },
            "threads.add_user_message": {"thread_id": thread_id, "input": user_input("hi")},
            "threads.retry_after_item": {"thread_id": thread_id, "item_id": user_item["id"]},
        }
        for op, params in attempts.items():
            response = mallory.post({"type": op, "params": params})
            assert response.status_code == 404, (op, response.status_code, response.text)

        # Forged or foreign cookies give a fresh identity, never Alice's.
        for forged in (alice.http.cookies["chatkit_session"] + "x", "v1.usr_x.1.sig", "garbage"):
            with ChatKitClient(live_url) as forger:
                forger.http.cookies.set("chatkit_session", forged)
                assert forger.list_threads()["data"] == []

        # Alice's thread is untouched.
        [thread] = alice.list_threads()["data"]
        assert thread["title"] == "alice's secret"
        assert [item["id"] for item in alice.all_items(thread_id)] == [user_item["id"], reply["id"]]
