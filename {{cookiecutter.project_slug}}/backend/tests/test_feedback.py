"""Thumbs up/down (``items.feedback``) over HTTP, on every store: stored per user and
item, changed by a second click, refused (and nothing stored) on anyone else's item.

The ratings are read back from the app's own store, on the app's event loop: ChatKit's
protocol has no request that reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from starlette.applications import Starlette

from app.context import RequestContext
from app.deps import services_of
from app.main import create_app
from app.stores.base import MAX_FEEDBACK_ITEMS, Feedback
from tests.chatkit_client import ChatKitClient
from tests.conftest import SettingsFactory
from tests.live_server import LiveServer


@dataclass
class Served:
    app: Starlette
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url

    def ratings(self, client: ChatKitClient, thread_id: str) -> list[Feedback]:
        """What the store holds for this client's user in the thread."""
        services = services_of(self.app)
        user_id = services.sessions.verify(client.http.cookies["chatkit_session"])
        assert user_id is not None
        loaded = services.store.load_feedback(thread_id, RequestContext(user_id=user_id))
        loop = self.server.server.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(loaded, loop).result(timeout=10)

    def kinds(self, client: ChatKitClient, thread_id: str) -> dict[str, str]:
        return {rating.item_id: rating.kind for rating in self.ratings(client, thread_id)}


@pytest.fixture
def served(make_settings: SettingsFactory, database_url: str) -> Iterator[Served]:
    # One API style: feedback never reaches the model; the stores are what differ.
    app = create_app(make_settings(database_url=database_url))
    with LiveServer(app) as server:
        yield Served(app, server)


def rate(client: ChatKitClient, thread_id: str, item_ids: list[str], kind: str) -> int:
    params = {"thread_id": thread_id, "item_ids": item_ids, "kind": kind}
    response = client.post({"type": "items.feedback", "params": params})
    if response.status_code == 200:
        assert response.json() == {}
    return response.status_code


def test_feedback_is_stored_and_a_second_click_changes_it(served: Served) -> None:
    with ChatKitClient(served.url) as alice:
        turn = alice.create_thread("rate me")
        [reply] = turn.assistant_messages
        thread_id = turn.thread_id

        started = datetime.now().astimezone()
        assert rate(alice, thread_id, [reply["id"]], "positive") == 200
        [first] = served.ratings(alice, thread_id)
        assert (first.item_id, first.kind) == (reply["id"], "positive")
        assert started <= first.rated_at

        assert rate(alice, thread_id, [reply["id"]], "negative") == 200
        [second] = served.ratings(alice, thread_id)  # still one row, now negative
        assert (second.item_id, second.kind) == (reply["id"], "negative")
        assert second.rated_at >= first.rated_at

        # The thread reads as before: a rating changes no item.
        assert [item["id"] for item in alice.all_items(thread_id)][-1] == reply["id"]


def test_feedback_on_another_users_item_is_404_and_stores_nothing(served: Served) -> None:
    with ChatKitClient(served.url) as alice, ChatKitClient(served.url) as mallory:
        theirs = alice.create_thread("alice's")
        [alice_reply] = theirs.assistant_messages
        assert rate(alice, theirs.thread_id, [alice_reply["id"]], "positive") == 200
        own = mallory.create_thread("mallory's")
        [mallory_reply] = own.assistant_messages

        attempts = [
            (theirs.thread_id, [alice_reply["id"]]),  # her thread
            (own.thread_id, [alice_reply["id"]]),  # her item through my thread
            (own.thread_id, [mallory_reply["id"], alice_reply["id"]]),  # mine and hers
        ]
        for thread_id, item_ids in attempts:
            assert rate(mallory, thread_id, item_ids, "negative") == 404, (thread_id, item_ids)

        assert served.kinds(alice, theirs.thread_id) == {alice_reply["id"]: "positive"}
        assert served.kinds(mallory, own.thread_id) == {}  # all or nothing


def test_feedback_on_a_missing_item_or_thread_is_404(served: Served) -> None:
    with ChatKitClient(served.url) as alice:
        turn = alice.create_thread("hello")
        [reply] = turn.assistant_messages
        thread_id = turn.thread_id

        assert rate(alice, thread_id, ["msg_missing"], "positive") == 404
        assert rate(alice, thread_id, [reply["id"], "msg_missing"], "positive") == 404
        assert rate(alice, "thr_missing", [reply["id"]], "positive") == 404
        assert served.kinds(alice, thread_id) == {}

        too_many = [reply["id"]] + [f"msg_{i}" for i in range(MAX_FEEDBACK_ITEMS)]
        params = {"thread_id": thread_id, "item_ids": too_many, "kind": "positive"}
        response = alice.post({"type": "items.feedback", "params": params})
        assert response.status_code == 400
        assert f"at most {MAX_FEEDBACK_ITEMS} items" in response.json()["error"]["message"]
        assert rate(alice, thread_id, [reply["id"]], "sideways") == 422  # not a FeedbackKind
        assert served.kinds(alice, thread_id) == {}
