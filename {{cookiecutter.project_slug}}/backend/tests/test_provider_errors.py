"""Provider failures reach the user as a clear error; the thread stays usable (trap 11)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider, Fault

FAULTS = [
    pytest.param(Fault.HTTP_500, {}, "failed (HTTP 500)", id="http-500"),
    pytest.param(
        Fault.RATE_LIMIT,
        {"retry_after": 7},
        "rate limiting requests (HTTP 429). Send your message again in 7 s",
        id="http-429",
    ),
    pytest.param(Fault.SLOW_FIRST_BYTE, {"seconds": 3}, "did not answer in time", id="timeout"),
    pytest.param(Fault.CUT_STREAM, {}, "incomplete or invalid reply", id="cut-stream"),
    pytest.param(Fault.INVALID_CHUNK, {}, "incomplete or invalid reply", id="invalid-chunk"),
]


@pytest.mark.parametrize(("fault", "options", "message"), FAULTS)
def test_fault_gives_a_clear_error_and_the_thread_goes_on(
    backend: BackendFactory,
    provider: str,
    fake: FakeProvider,
    fault: Fault,
    options: dict[str, Any],
    message: str,
) -> None:
    with backend(provider=provider, llm_timeout_seconds=1) as url, ChatKitClient(url) as browser:
        first = browser.create_thread("before the fault")
        thread_id = first.thread_id

        fake.fail_next(fault, **options)
        failed = browser.send(thread_id, "during the fault")
        [error] = failed.errors
        assert message in error["message"]
        assert "test-key" not in error["message"]
        assert "Traceback" not in error["message"]

        after = browser.send(thread_id, "after the fault")
        assert after.errors == []
        texts = [m for m in fake.requests[-1].messages_text() if m[0] == "user"]
        assert [text for _, text in texts] == [
            "before the fault",
            "during the fault",
            "after the fault",
        ]

        items = browser.all_items(thread_id)
        users = [item for item in items if item["type"] == "user_message"]
        assert [u["content"][0]["text"] for u in users] == [
            "before the fault",
            "during the fault",
            "after the fault",
        ]


def test_unreachable_provider(backend: BackendFactory, provider: str, fake: FakeProvider) -> None:
    with (
        backend(provider=provider, llm_base_url=fake.refused_base_url()) as url,
        ChatKitClient(url) as browser,
    ):
        turn = browser.create_thread("anyone there?")
        [error] = turn.errors
        assert "Could not reach the model provider at 127.0.0.1" in error["message"]
        assert error["allow_retry"] is True
        assert browser.list_items(turn.thread_id)["data"][0]["type"] == "user_message"


def test_rejected_key(backend: BackendFactory, fake: FakeProvider) -> None:
    with backend(provider="openrouter") as url, ChatKitClient(url) as browser:
        fake.fail_next(Fault.HTTP_401)
        [error] = browser.create_thread("hi").errors
        assert "rejected the API key (HTTP 401). Check OPENROUTER_API_KEY" in error["message"]
