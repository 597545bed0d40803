"""Per-turn options over real HTTP, on both API styles and every store: the model picker
(MODEL_CHOICES), reasoning summaries (REASONING_SUMMARY), generated titles (TITLE_MODE),
retry and stop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import RunContextWrapper, function_tool
from chatkit.agents import AgentContext, ClientToolCall

from app import extensions
from app.config import ConfigError
from app.provider_table import PROVIDERS, REASONING_SUMMARIES, ROWS
from tests.chatkit_client import ChatKitClient, Turn
from tests.conftest import BackendFactory, SettingsFactory
from tests.fake_provider import FakeProvider, Fault, RecordedRequest, Step, call, say

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


def test_a_client_tools_output_runs_the_model_its_message_picked(
    backend: BackendFactory, provider: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    @function_tool
    def ask_page(ctx: RunContextWrapper[AgentContext[Any]]) -> str:
        """Ask the page for something."""
        ctx.context.client_tool_call = ClientToolCall(name="ask_page", arguments={})
        return "asked the page"

    monkeypatch.setattr(extensions, "TOOLS", [ask_page])
    with (
        backend(provider=provider, model_choices=CHOICES) as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(call("ask_page"), say("Waiting for the page."), say("Got it."))
        thread_id = ok(create(browser, "ask the page", model="fake-large")).thread_id
        assert browser.all_items(thread_id)[-1]["type"] == "client_tool_call"
        ok(
            browser.stream(
                "threads.add_client_tool_output", thread_id=thread_id, result={"answer": 42}
            )
        )
        assert [r.json["model"] for r in model_calls(fake)] == ["fake-large"] * 3


def test_the_turn_log_line_names_the_picked_model(
    backend: BackendFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        backend(model_choices=CHOICES) as url,
        ChatKitClient(url) as browser,
        caplog.at_level(logging.INFO, logger="app.turns"),
    ):
        thread_id = ok(create(browser, "hello", model="fake-large")).thread_id
        ok(send(browser, thread_id, "again"))
    lines = [r for r in caplog.records if r.name == "app.turns"]
    assert [getattr(r, "fields", {}).get("model") for r in lines] == ["fake-large", "fake-model"]


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


# -- reasoning summaries ---------------------------------------------------------------


def test_only_responses_rows_default_to_reasoning_summaries() -> None:
    for row in ROWS:
        assert row.reasoning_summary in REASONING_SUMMARIES, row.name
        if row.api_style != "responses":
            assert row.reasoning_summary == "off", f"{row.name}: Chat Completions has none"
    assert PROVIDERS["openai"].reasoning_summary == "auto"


def test_an_unknown_reasoning_summary_names_the_values(make_settings: SettingsFactory) -> None:
    with pytest.raises(ConfigError, match=r"REASONING_SUMMARY: .*'auto', 'concise', 'detailed'"):
        make_settings(reasoning_summary="always")
    assert make_settings(reasoning_summary="").reasoning_summary is None, "empty: the provider's"


def workflow_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item["type"] == "workflow"]


def test_reasoning_summaries_show_as_a_thought(
    backend: BackendFactory, database_url: str, fake: FakeProvider
) -> None:
    # REASONING_SUMMARY empty: the openai row's default, auto.
    with (
        backend(provider="openai", database_url=database_url, model_name="gpt-5.1") as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(say("It is noon.", reasoning=["Checking the clock first."]))
        first = ok(create(browser, "what time is it?"))
        assert model_calls(fake)[0].reasoning_summary == "auto"
        added = [e["item"] for e in first.of_type("thread.item.added")]
        assert [item["type"] for item in added] == ["workflow", "assistant_message"]
        thoughts = [
            e["update"]["task"]
            for e in first.of_type("thread.item.updated")
            if e["update"]["type"].startswith("workflow.task")
        ]
        assert thoughts, "the thought streams as it comes"
        assert (thoughts[-1]["type"], thoughts[-1]["content"]) == (
            "thought",
            "Checking the clock first.",
        )
        assert first.reply_text == "It is noon."

        # Stored, and back on reload with the thread.
        thread_id = first.thread_id
        items = browser.all_items(thread_id)
        assert [item["type"] for item in items] == ["user_message", "workflow", "assistant_message"]
        [workflow] = workflow_items(items)
        assert workflow["workflow"]["type"] == "reasoning"
        assert [t["content"] for t in workflow["workflow"]["tasks"]] == [
            "Checking the clock first."
        ]

        # The next turn works; the thought is not sent back to the model.
        second = ok(send(browser, thread_id, "thanks"))
        assert 'you said "thanks"' in second.reply_text
        sent = model_calls(fake)[-1].messages_text()
        assert ("assistant", "It is noon.") in sent
        assert not [text for _, text in sent if "clock first" in text]


def test_a_thread_with_a_thought_goes_on_on_chat_completions(
    backend: BackendFactory, fake: FakeProvider, tmp_path: Path
) -> None:
    """The same thread after LLM_PROVIDER moved from openai to a Chat Completions one."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'moved.db'}"
    with (
        backend(provider="openai", database_url=database_url, model_name="gpt-5.1") as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(say("Noon.", reasoning=["Looking at the clock."]))
        thread_id = ok(create(browser, "what time is it?")).thread_id
        cookie = browser.http.cookies["chatkit_session"]
    with (
        backend(provider="openrouter", database_url=database_url) as url,
        ChatKitClient(url) as browser,
    ):
        browser.http.cookies.set("chatkit_session", cookie)
        assert len(workflow_items(browser.all_items(thread_id))) == 1
        after = ok(send(browser, thread_id, "and now?"))
        assert 'you said "and now?"' in after.reply_text
        assert ("assistant", "Noon.") in model_calls(fake)[-1].messages_text()


@pytest.mark.parametrize(
    ("provider", "model_name", "summary", "effort"),
    [
        ("openai", "gpt-4o", None, "low"),  # no reasoning model: it would answer 400
        ("openai", "gpt-4.1", "detailed", None),
        ("openai", "gpt-5.1-chat-latest", "auto", None),
        ("openai", "gpt-5.1", "off", None),
        ("openrouter", "gpt-5.1", "auto", "high"),  # Chat Completions: never
        ("openrouter", "fake-model", None, None),
    ],
)
def test_no_reasoning_parameters_where_they_are_not_taken(
    backend: BackendFactory,
    fake: FakeProvider,
    provider: str,
    model_name: str,
    summary: str | None,
    effort: str | None,
) -> None:
    settings = {"reasoning_summary": summary, "reasoning_effort": effort}
    with (
        backend(provider=provider, model_name=model_name, **settings) as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(say("First.", reasoning=["hidden"]), say("Second.", reasoning=["hidden"]))
        first = ok(create(browser, "hello"))
        second = ok(send(browser, first.thread_id, "again"))
        assert (first.reply_text, second.reply_text) == ("First.", "Second.")
        for request in model_calls(fake):
            assert "reasoning" not in request.json and "reasoning_effort" not in request.json
        assert workflow_items(browser.all_items(first.thread_id)) == []


def test_reasoning_effort_goes_with_the_summary(
    backend: BackendFactory, fake: FakeProvider
) -> None:
    with (
        backend(provider="openai", model_name="o4-mini", reasoning_effort="low") as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(say("Done.", reasoning=["Quick think."]))
        turn = ok(create(browser, "hello"))
        assert model_calls(fake)[0].json["reasoning"] == {"effort": "low", "summary": "auto"}
        assert len(workflow_items(browser.all_items(turn.thread_id))) == 1


def test_reasoning_follows_the_picked_model(backend: BackendFactory, fake: FakeProvider) -> None:
    with (
        backend(provider="openai", model_name="gpt-5.1", model_choices="gpt-5.1,gpt-4.1") as url,
        ChatKitClient(url) as browser,
    ):
        thread_id = ok(create(browser, "think", model="gpt-5.1")).thread_id
        ok(send(browser, thread_id, "just answer", model="gpt-4.1"))
        first, second = model_calls(fake)
        assert first.reasoning_summary == "auto"
        assert "reasoning" not in second.json


# -- titles ----------------------------------------------------------------------------


def stream_watching(browser: ChatKitClient, on_event: Any, op: str, **params: Any) -> Turn:
    """``browser.stream``, calling ``on_event`` on each event as it arrives."""
    payload = json.dumps({"type": op, "params": params})
    headers = {"content-type": "application/json"}
    with browser.http.stream("POST", "/chatkit", content=payload, headers=headers) as response:
        turn = Turn(status=response.status_code)
        for line in response.iter_lines():
            if line.startswith("data: "):
                turn.events.append(json.loads(line.removeprefix("data: ")))
                on_event(turn.events[-1])
    return turn


def titles_sent(turn: Turn) -> list[str | None]:
    return [event["thread"]["title"] for event in turn.of_type("thread.updated")]


def title_of(browser: ChatKitClient, thread_id: str) -> str | None:
    title: str | None = browser.request("threads.get_by_id", thread_id=thread_id)["title"]
    return title


def test_the_first_message_is_the_title_by_default(
    backend: BackendFactory, provider: str, fake: FakeProvider
) -> None:
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        first = ok(create(browser, "Plans  for\nFriday lunch"))
        assert titles_sent(first)[-1] == "Plans for Friday lunch"
        ok(send(browser, first.thread_id, "and dinner?"))
        assert title_of(browser, first.thread_id) == "Plans for Friday lunch"
        assert len(model_calls(fake)) == 2, "no title request"


def test_the_model_titles_the_thread_after_its_first_reply(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    first_delta = threading.Event()
    delta_before_title: list[bool] = []

    def title(request: RecordedRequest) -> Step:
        # Blocks the fake until the browser has the reply's first delta: a title asked
        # for before it would hold the reply back, and this would wait in vain.
        delta_before_title.append(first_delta.wait(timeout=10))
        return say('"Friday lunch plans."')

    def watch(event: dict[str, Any]) -> None:
        if event["type"] == "thread.item.updated":
            first_delta.set()

    with (
        backend(provider=provider, database_url=database_url, title_mode="model") as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(say("Let us meet at noon on Friday."), title)
        first = ok(
            stream_watching(browser, watch, "threads.create", input=message("lunch on friday?"))
        )
        assert delta_before_title == [True]
        assert first.reply_text == "Let us meet at noon on Friday."
        # The first message's title at once, the model's when it came.
        assert titles_sent(first) == ["lunch on friday?", "Friday lunch plans"]
        done = [e["type"] for e in first.events].index("thread.item.done", 2)
        assert [e["type"] for e in first.events].index("thread.updated", done) > done

        reply, asked = model_calls(fake)
        assert reply.stream and not asked.stream
        assert "lunch on friday?" in asked.last_user_text()
        assert "noon on Friday" in asked.last_user_text()
        assert 32 in (asked.json.get("max_tokens"), asked.json.get("max_output_tokens"))

        thread_id = first.thread_id
        assert title_of(browser, thread_id) == "Friday lunch plans"
        ok(send(browser, thread_id, "and dinner?"))
        assert len(model_calls(fake)) == 3, "only the first reply is followed by a title"
        assert title_of(browser, thread_id) == "Friday lunch plans"


def test_a_failed_title_request_keeps_the_first_message(
    backend: BackendFactory, provider: str, fake: FakeProvider
) -> None:
    def reply_then_break(request: RecordedRequest) -> Step:
        fake.fail_next(Fault.HTTP_500)  # the call after this one: the title's
        return say("Noon suits me.")

    with (
        backend(provider=provider, title_mode="model") as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(reply_then_break)
        first = ok(create(browser, "lunch on friday?"))
        assert first.reply_text == "Noon suits me."
        assert [r.fault for r in model_calls(fake)] == [None, Fault.HTTP_500]
        assert title_of(browser, first.thread_id) == "lunch on friday?"
        assert ok(send(browser, first.thread_id, "great")).reply_text


def test_the_title_waits_for_the_first_reply(
    backend: BackendFactory, provider: str, fake: FakeProvider
) -> None:
    with (
        backend(provider=provider, title_mode="model") as url,
        ChatKitClient(url) as browser,
    ):
        fake.fail_next(Fault.HTTP_500)
        failed = create(browser, "lunch on friday?")
        assert failed.status == 200 and failed.errors, "the first turn got no reply"
        thread_id = failed.thread_id
        assert len(model_calls(fake)) == 1, "no title without a reply"

        fake.script(say("Noon suits me."), say("Friday lunch"))
        ok(send(browser, thread_id, "hello?"))
        asked = model_calls(fake)[-1]
        assert not asked.stream and "lunch on friday?" in asked.last_user_text()
        assert title_of(browser, thread_id) == "Friday lunch"
        ok(send(browser, thread_id, "see you"))
        assert len(model_calls(fake)) == 4, "asked once"


# -- retry and stop --------------------------------------------------------------------


def test_a_retried_reply_replaces_the_old_one(
    backend: BackendFactory, provider: str, database_url: str, fake: FakeProvider
) -> None:
    with (
        backend(provider=provider, database_url=database_url) as url,
        ChatKitClient(url) as browser,
    ):
        fake.script(say("First answer."), say("Second answer."), say("Third answer."))
        first = ok(create(browser, "hello"))
        thread_id = first.thread_id
        [old] = first.assistant_messages
        user_item = browser.all_items(thread_id)[0]

        retried = ok(
            browser.stream("threads.retry_after_item", thread_id=thread_id, item_id=user_item["id"])
        )
        [new] = retried.assistant_messages
        assert new["id"] != old["id"] and retried.reply_text == "Second answer."
        assert retried.delta_item_ids == {new["id"]}
        items = browser.all_items(thread_id)
        assert [(i["type"], i["id"]) for i in items] == [
            ("user_message", user_item["id"]),
            ("assistant_message", new["id"]),
        ]
        # The model saw the message again, without the reply it replaced.
        sent = model_calls(fake)[-1].messages_text()
        assert ("user", "hello") in sent and not [t for _, t in sent if "First answer" in t]

        # The thread goes on from the new reply.
        ok(send(browser, thread_id, "go on"))
        assert ("assistant", "Second answer.") in model_calls(fake)[-1].messages_text()


def stop_after_deltas(url: str, cookie: str, thread_id: str, deltas: int = 3) -> None:
    """What the stop button does: the page closes the stream mid-reply."""
    payload = {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": message("tell me a long story")},
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        client.cookies.set("chatkit_session", cookie)
        with client.stream("POST", "/chatkit", json=payload) as response:
            seen = b""
            chunks = response.iter_raw()
            while seen.count(b"assistant_message.content_part.text_delta") < deltas:
                seen += next(chunks)


def test_a_stopped_reply_keeps_its_partial_text(
    backend: BackendFactory, provider: str, fake: FakeProvider
) -> None:
    story = "Once upon a time " + "and then more happened " * 40
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        thread_id = ok(create(browser, "hello")).thread_id
        fake.delay_seconds = 0.02
        fake.script(say(story))
        stop_after_deltas(url, browser.http.cookies["chatkit_session"], thread_id)

        deadline = time.monotonic() + 10
        items = browser.all_items(thread_id)
        while len(items) < 4 and time.monotonic() < deadline:  # the server's cleanup
            time.sleep(0.05)
            items = browser.all_items(thread_id)
        fake.delay_seconds = 0
        partial = "".join(part["text"] for part in items[-1]["content"])
        assert [i["type"] for i in items][-2:] == ["user_message", "assistant_message"]
        assert partial and story.startswith(partial) and partial != story

        after = ok(send(browser, thread_id, "still there?"))
        assert 'you said "still there?"' in after.reply_text
        sent = model_calls(fake)[-1].messages_text()
        assert ("assistant", partial) in sent
        assert [text for _, text in sent if "cancelled" in text], "told the user stopped it"
