"""Action requests the handlers refuse before anything runs, with a 4xx naming why."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory


@pytest.mark.parametrize("op", ["threads.custom_action", "threads.sync_custom_action"])
@pytest.mark.parametrize(
    ("action", "status", "message"),
    [
        # chatkit parses an action without "type" (its type is then not a string).
        ({"payload": {"timezone": "UTC"}}, 400, 'The action has no "type"'),
        ({}, 400, 'The action has no "type"'),
        ({"type": "time.nope", "payload": {}}, 400, "Unknown action type 'time.nope'"),
        ({"type": 5, "payload": {}}, 422, "not a ChatKit request"),
    ],
)
def test_an_action_without_a_known_type_is_a_4xx(
    backend: BackendFactory, op: str, action: dict[str, Any], status: int, message: str
) -> None:
    with backend() as url, ChatKitClient(url) as browser:
        thread_id = browser.create_thread("hello").thread_id
        before = browser.all_items(thread_id)
        [reply] = [item for item in before if item["type"] == "assistant_message"]
        params = {"thread_id": thread_id, "item_id": reply["id"], "action": action}
        response = browser.post({"type": op, "params": params})
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"]
        assert browser.all_items(thread_id) == before
