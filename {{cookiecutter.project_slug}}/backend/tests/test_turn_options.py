"""Per-turn options over real HTTP, on both API styles and every store: the model picker
(MODEL_CHOICES), reasoning summaries (REASONING_SUMMARY), generated titles (TITLE_MODE),
retry and stop.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.config import ConfigError
from tests.chatkit_client import ChatKitClient, Turn
from tests.conftest import BackendFactory, SettingsFactory
from tests.fake_provider import FakeProvider, RecordedRequest

CHOICES = "fake-model,fake-large"


def model_calls(fake: FakeProvider) -> list[RecordedRequest]:
    return [request for request in fake.requests if request.api is not None]


def message(text: str, model: str | None = None) -> dict[str, Any]:
    options = {"model": model} if model is not None else {}
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": options,
    }


def create(browser: ChatKitClient, text: str, model: str | None = None) -> Turn:
    return browser.stream("threads.create", input=message(text, model))


def send(browser: ChatKitClient, thread_id: str, text: str, model: str | None = None) -> Turn:
    return browser.stream(
        "threads.add_user_message", thread_id=thread_id, input=message(text, model)
    )


def ok(turn: Turn) -> Turn:
    assert turn.status == 200 and turn.errors == [], turn.events
    return turn


# -- the model picker ------------------------------------------------------------------


def test_models_lists_the_choices_with_model_name_as_default(backend: BackendFactory) -> None:
    with backend(model_choices=CHOICES) as url:
        listed = httpx.get(f"{url}/chatkit/models").json()
    assert listed == {
        "models": [
            {"id": "fake-model", "label": "fake-model", "default": True},
            {"id": "fake-large", "label": "fake-large", "default": False},
        ]
    }
    with backend() as url:
        assert httpx.get(f"{url}/chatkit/models").json() == {"models": []}, "no picker"


def test_the_picked_model_answers_and_a_retry_keeps_it(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    with (
        backend(provider=provider, database_url=database_url, model_choices=CHOICES) as url,
        ChatKitClient(url) as browser,
    ):
        first = ok(create(browser, "hello", model="fake-large"))
        thread_id = first.thread_id
        ok(send(browser, thread_id, "and you?"))
        ok(send(browser, thread_id, "once more", model="fake-model"))
        assert [r.json["model"] for r in model_calls(fake)] == [
            "fake-large",
            "fake-model",
            "fake-model",
        ]

        # A retry of the first message runs the model that message picked.
        [user_item, *_] = browser.all_items(thread_id)
        ok(browser.stream("threads.retry_after_item", thread_id=thread_id, item_id=user_item["id"]))
        assert model_calls(fake)[-1].json["model"] == "fake-large"


def test_a_model_outside_the_list_is_refused_and_stores_nothing(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    with (
        backend(provider=provider, database_url=database_url, model_choices=CHOICES) as url,
        ChatKitClient(url) as browser,
    ):
        refused = create(browser, "hello", model="gpt-expensive")
        assert refused.status == 400
        error = json.loads(refused.events[0]["body"])["error"]
        assert error["code"] == "model_not_allowed"
        assert error["allowed"] == ["fake-model", "fake-large"]
        assert "gpt-expensive" in error["message"] and "fake-large" in error["message"]
        assert browser.list_threads()["data"] == []

        thread_id = ok(create(browser, "hello")).thread_id
        stored = browser.all_items(thread_id)
        assert send(browser, thread_id, "now this", model="gpt-expensive").status == 400
        assert browser.all_items(thread_id) == stored
        assert len(model_calls(fake)) == 1, "a refused message reaches no model"


def test_without_choices_only_model_name_may_be_named(
    backend: BackendFactory, provider: str, fake: FakeProvider
) -> None:
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        thread_id = ok(create(browser, "hello", model="fake-model")).thread_id
        refused = send(browser, thread_id, "cheaper?", model="fake-large")
        assert refused.status == 400
        assert json.loads(refused.events[0]["body"])["error"]["allowed"] == ["fake-model"]
        assert [r.json["model"] for r in model_calls(fake)] == ["fake-model"]


@pytest.mark.parametrize(
    ("choices", "problem"),
    [
        ("fake-model,litellm/fake-large", "'litellm/fake-large' has a routing prefix"),
        ("fake-model,fake-large,fake-model", "fake-model listed more than once"),
        ("fake-large", "MODEL_CHOICES does not list MODEL_NAME=fake-model"),
        ("fake-model fake-large", "separate names with commas"),
    ],
)
def test_model_choices_are_checked_at_start(
    make_settings: SettingsFactory, choices: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match="MODEL_CHOICES") as error:
        make_settings(model_choices=choices)
    assert problem in str(error.value)
