"""Conversations over real HTTP, on each API style and each store (traps 4, 6 and 7)."""

from __future__ import annotations

from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider

TURNS = 30
HISTORY_LIMIT = 10


def test_thirty_turn_conversation(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    with (
        backend(provider=provider, database_url=database_url, history_limit=HISTORY_LIMIT) as url,
        ChatKitClient(url) as browser,
    ):
        first = browser.create_thread("message 1")
        thread_id = first.thread_id
        turns = [first] + [browser.send(thread_id, f"message {n}") for n in range(2, TURNS + 1)]

        reply_ids = []
        for n, turn in enumerate(turns, start=1):
            assert turn.errors == [], f"turn {n}: {turn.errors}"
            [message] = turn.assistant_messages
            assert f'you said "message {n}"' in turn.reply_text
            # Trap 6: the deltas and the finished message carry the same, own id.
            assert turn.delta_item_ids == {message["id"]}
            assert message["id"] != "__fake_id__"
            reply_ids.append(message["id"])
        assert len(set(reply_ids)) == TURNS, "every reply is a new message"

        # Trap 4: each request carries the recent history, ending with the new message.
        model_requests = [
            r for r in fake.requests if r.path.endswith(("/responses", "/chat/completions"))
        ]
        assert len(model_requests) == TURNS
        for n, request in enumerate(model_requests, start=1):
            conversation = [m for m in request.messages_text() if m[0] in ("user", "assistant")]
            expected_items = min(2 * n - 1, HISTORY_LIMIT)
            assert len(conversation) == expected_items, f"turn {n}: {conversation}"
            assert conversation[-1] == ("user", f"message {n}")
            if n > 1:
                # Trap 7: earlier replies reach the model (as text both API styles accept).
                assert conversation[-2][0] == "assistant"
                assert f'you said "message {n - 1}"' in conversation[-2][1]

        # Pages are complete and never repeat, in order.
        items = browser.all_items(thread_id, page_size=7)
        assert len(items) == 2 * TURNS
        assert len({item["id"] for item in items}) == 2 * TURNS
        assert [item["type"] for item in items] == ["user_message", "assistant_message"] * TURNS
        assert [item["id"] for item in items if item["type"] == "assistant_message"] == reply_ids
        newest_first = browser.list_items(thread_id, limit=3, order="desc")
        assert [item["id"] for item in newest_first["data"]] == [
            item["id"] for item in items[::-1][:3]
        ]

        [thread] = browser.list_threads()["data"]
        assert thread["id"] == thread_id
        assert thread["title"] == "message 1"


def test_reload_keeps_the_conversation(backend: BackendFactory, database_url: str) -> None:
    with backend(database_url=database_url) as url, ChatKitClient(url) as browser:
        thread_id = browser.create_thread("remember me").thread_id
        browser.send(thread_id, "and this")
        thread = browser.request("threads.get_by_id", thread_id=thread_id)
        assert thread["title"] == "remember me"
        assert [item["type"] for item in thread["items"]["data"]] == [
            "user_message",
            "assistant_message",
            "user_message",
            "assistant_message",
        ]


def test_every_provider_row_talks_to_its_endpoint(
    backend: BackendFactory, fake: FakeProvider
) -> None:
    """A two-turn conversation through each provider row, over its API style."""
    from app.provider_table import PROVIDERS

    for name, row in PROVIDERS.items():
        fake.reset()
        key = f"key-for-{name}"
        with (
            backend(provider=name, **{row.key_variable.lower(): key}) as url,
            ChatKitClient(url) as browser,
        ):
            first = browser.create_thread("hello")
            second = browser.send(first.thread_id, "again")
            assert first.errors == second.errors == [], name
            assert first.assistant_messages[0]["id"] != second.assistant_messages[0]["id"]
        paths = {request.path for request in fake.requests}
        endpoint = "/v1/responses" if row.api_style == "responses" else "/v1/chat/completions"
        assert paths == {endpoint}, name
        assert all(
            request.headers.get("authorization") == f"Bearer {key}" for request in fake.requests
        ), name
