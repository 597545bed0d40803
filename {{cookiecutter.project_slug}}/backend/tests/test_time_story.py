"""The example agent's story, "what time is it for me?", over real HTTP on each API style
and store: the client tool (answered and abandoned), the progress update, the time card
widget stored and reloaded, its Refresh action (streamed and sync) in place with no model
call, the refusals that change nothing, and the card in the history of later turns."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from agents import FunctionTool, OpenAIChatCompletionsModel, RunContextWrapper, function_tool
from agents.tool_context import ToolContext
from chatkit.agents import AgentContext, ClientToolCall
from chatkit.types import ThreadMetadata
from chatkit.widgets import WidgetRoot
from openai import AsyncOpenAI
from pydantic import TypeAdapter

from app import extensions
from app.agent import build_agent
from app.context import RequestContext
from app.stores import MemoryStore
from app.widgets import time_card
from tests.chatkit_client import ChatKitClient, Turn
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider, RecordedRequest, call, say

ZONE = "Pacific/Auckland"
# A moment no test runs at, so a refreshed card shows it.
LATER = datetime(2031, 3, 4, 9, 30, tzinfo=ZoneInfo(ZONE))
LATER_STILL = datetime(2031, 3, 4, 17, 45, tzinfo=ZoneInfo(ZONE))


def model_calls(fake: FakeProvider) -> list[RecordedRequest]:
    return [request for request in fake.requests if request.api]


def done(turn: Turn, item_type: str) -> list[dict[str, Any]]:
    return [e["item"] for e in turn.of_type("thread.item.done") if e["item"]["type"] == item_type]


def same_widget(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same widget, whichever of chatkit's widget classes each was read back as
    (the stored one comes back with the defaults spelled out)."""
    adapter: TypeAdapter[WidgetRoot] = TypeAdapter(WidgetRoot)
    return bool(
        adapter.validate_python(a).model_dump(exclude_none=True)
        == adapter.validate_python(b).model_dump(exclude_none=True)
    )


def the_zone_it_got(request: RecordedRequest) -> Any:
    """The model's next step: current_time in the zone the page answered with."""
    return call(
        "current_time", timezone=json.loads(request.last_tool_output() or "{}")["time_zone"]
    )


def answer_tool(browser: ChatKitClient, thread_id: str, result: Any) -> Turn:
    return browser.stream("threads.add_client_tool_output", thread_id=thread_id, result=result)


def show_card(browser: ChatKitClient, fake: FakeProvider, zone: str = ZONE) -> dict[str, Any]:
    """A thread whose model showed the time card (no client tool); the widget item."""
    fake.script(call("current_time", timezone=zone), say("There you go."))
    turn = browser.create_thread(f"What time is it in {zone}?")
    assert turn.errors == [], turn.events
    [widget] = done(turn, "widget")
    return widget


def refresh(zone: str = ZONE) -> dict[str, Any]:
    return {"type": "time.refresh", "payload": {"timezone": zone}}


def set_clock(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """From now on the card's clock reads ``at`` (the app runs in this process)."""
    monkeypatch.setattr(time_card, "now", lambda zone: at.astimezone(zone))


@pytest.fixture
def clock_later(monkeypatch: pytest.MonkeyPatch) -> None:
    set_clock(monkeypatch, LATER)


# -- the client tool --------------------------------------------------------------------


def test_the_whole_story(browser: ChatKitClient, fake: FakeProvider) -> None:
    fake.script(call("get_browser_time_zone"), the_zone_it_got, say("It is late there."))
    first = browser.create_thread("What time is it for me?")
    assert first.errors == []
    # The agent stopped at the client tool: one model call, no reply, a pending call.
    [pending] = done(first, "client_tool_call")
    assert (pending["name"], pending["arguments"], pending["status"]) == (
        "get_browser_time_zone",
        {},
        "pending",
    )
    assert first.assistant_messages == [] and len(model_calls(fake)) == 1
    thread_id = first.thread_id
    assert [item["type"] for item in browser.all_items(thread_id)] == [
        "user_message",
        "client_tool_call",
    ]

    second = answer_tool(browser, thread_id, {"time_zone": ZONE})
    assert second.errors == [], second.events
    after_answer, after_tool = model_calls(fake)[1:]
    # The page's answer reached the model as the client tool's output...
    assert json.loads(after_answer.last_tool_output() or "") == {"time_zone": ZONE}
    assert ("tool_call", "get_browser_time_zone {}") in after_answer.messages_text()
    # ...which called current_time with it: progress, then the card, then the reply.
    types = [event["type"] for event in second.events]
    [widget] = done(second, "widget")
    assert "progress_update" in types
    assert types.index("progress_update") < second.events.index(
        {"type": "thread.item.done", "item": widget}
    )
    assert ZONE in (widget["copy_text"] or "") and ZONE in (after_tool.last_tool_output() or "")
    assert second.reply_text == "It is late there."

    # Stored, and there on reload, the card as it was streamed.
    items = browser.all_items(thread_id)
    assert [item["type"] for item in items] == [
        "user_message",
        "client_tool_call",
        "widget",
        "assistant_message",
    ]
    assert items[1]["status"] == "completed" and items[1]["output"] == {"time_zone": ZONE}
    assert items[1]["id"] == pending["id"]
    assert items[2]["id"] == widget["id"] and same_widget(items[2]["widget"], widget["widget"])
    reloaded = browser.request("threads.get_by_id", thread_id=thread_id)
    [card] = [item["widget"] for item in reloaded["items"]["data"] if item["type"] == "widget"]
    assert same_widget(card, widget["widget"])

    # The next turn works, and the model reads the card as its one-line summary.
    third = browser.send(thread_id, "thanks")
    assert third.errors == [], third.events
    seen = model_calls(fake)[-1].messages_text()
    assert ("user", f"[A widget was shown to the user: {widget['copy_text']}]") in seen
    assert not any('"Card"' in text for _, text in seen), "no widget JSON in the prompt"


def test_two_client_tool_calls_in_one_thread_are_two_items(
    browser: ChatKitClient, fake: FakeProvider
) -> None:
    """Each call keeps its own item (on Chat Completions both were `__fake_id__`)."""
    fake.script(call("get_browser_time_zone"), say("Noted."))
    thread_id = browser.create_thread("Where am I?").thread_id
    assert answer_tool(browser, thread_id, {"time_zone": ZONE}).errors == []
    fake.script(call("get_browser_time_zone"), say("Noted again."))
    assert browser.send(thread_id, "And now?").errors == []
    # Whatever JSON the page sends is stored and reaches the model as it came.
    odd = {"time_zone": "Europe/Paris", "odd": ["\x00", "é", 10**30, None, {"deep": [[[]]]}]}
    assert answer_tool(browser, thread_id, odd).errors == []
    assert json.loads(model_calls(fake)[-1].last_tool_output() or "") == odd

    calls = [item for item in browser.all_items(thread_id) if item["type"] == "client_tool_call"]
    assert [call["output"] for call in calls] == [{"time_zone": ZONE}, odd]
    assert len({call["id"] for call in calls}) == 2
    assert "__fake_id__" not in {call["id"] for call in calls}


def test_an_abandoned_client_tool_call_leaves_a_usable_thread(
    browser: ChatKitClient, fake: FakeProvider
) -> None:
    fake.script(call("get_browser_time_zone"), say("I could not read your zone."))
    thread_id = browser.create_thread("What time is it for me?").thread_id
    # The page was closed mid-call: no output; the user comes back and writes again.
    turn = browser.send(thread_id, "hello again")
    assert turn.errors == [], turn.events
    assert turn.reply_text == "I could not read your zone."
    seen = model_calls(fake)[-1].messages_text()
    # The model saw its call, told that no answer came, then the new message.
    at = seen.index(("tool_call", "get_browser_time_zone {}"))
    assert seen[at + 1][0] == "tool" and "No answer came" in seen[at + 1][1]
    assert seen[-1] == ("user", "hello again")
    assert browser.send(thread_id, "and again").errors == []
    # The old call can no longer be answered: a 400 that changes nothing.
    before = browser.all_items(thread_id)
    late = browser.post(
        {
            "type": "threads.add_client_tool_output",
            "params": {"thread_id": thread_id, "result": {"time_zone": ZONE}},
        }
    )
    assert late.status_code == 400, late.text
    assert "no client tool call waiting" in late.json()["error"]["message"]
    assert browser.all_items(thread_id) == before


def test_tool_output_without_a_pending_call_is_a_4xx(
    browser: ChatKitClient, fake: FakeProvider
) -> None:
    thread_id = browser.create_thread("hi").thread_id
    before = browser.all_items(thread_id)
    calls = len(model_calls(fake))

    def output(thread: str) -> int:
        params = {"thread_id": thread, "result": {"time_zone": ZONE}}
        return browser.post(
            {"type": "threads.add_client_tool_output", "params": params}
        ).status_code

    assert output(thread_id) == 400
    assert output("thr_nope") == 404
    with ChatKitClient(str(browser.http.base_url)) as stranger:
        params = {"thread_id": thread_id, "result": {"time_zone": ZONE}}
        response = stranger.post({"type": "threads.add_client_tool_output", "params": params})
        assert response.status_code == 404
    assert browser.all_items(thread_id) == before and len(model_calls(fake)) == calls


def test_a_client_tool_added_to_the_extensions_stops_the_agent(
    backend: BackendFactory, provider: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    @function_tool
    def get_browser_language(ctx: RunContextWrapper[AgentContext[Any]]) -> str:
        """Ask the browser for the user's language."""
        ctx.context.client_tool_call = ClientToolCall(name="get_browser_language", arguments={})
        return "Asked."

    monkeypatch.setattr(
        extensions, "CLIENT_TOOLS", [*extensions.CLIENT_TOOLS, get_browser_language]
    )
    fake.script(call("get_browser_language"))
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        turn = browser.create_thread("Which language do I speak?")
        assert turn.errors == []
        [pending] = done(turn, "client_tool_call")
        assert pending["name"] == "get_browser_language" and pending["status"] == "pending"
        assert turn.assistant_messages == [] and len(model_calls(fake)) == 1


async def test_every_client_tool_names_itself_in_its_call() -> None:
    """The stop list is the tools' names; the pending item is the name the tool sets."""
    model = OpenAIChatCompletionsModel(model="m", openai_client=AsyncOpenAI(api_key="unused"))
    agent = build_agent(model)
    stop = agent.tool_use_behavior
    assert isinstance(stop, dict)
    assert stop["stop_at_tool_names"] == [tool.name for tool in extensions.CLIENT_TOOLS]
    store = MemoryStore()
    for tool in extensions.CLIENT_TOOLS:
        context = AgentContext[RequestContext](
            thread=ThreadMetadata(id="thr_1", created_at=datetime.now()),
            store=store,
            request_context=RequestContext(user_id="usr_1"),
        )
        tool_context = ToolContext(
            context, tool_name=tool.name, tool_call_id="c", tool_arguments="{}"
        )
        assert isinstance(tool, FunctionTool)
        await tool.on_invoke_tool(tool_context, "{}")
        assert context.client_tool_call is not None
        assert context.client_tool_call.name == tool.name


# -- the card and its actions -----------------------------------------------------------


def test_the_card(clock_later: None) -> None:
    reading = time_card.read_clock(ZONE)
    card = time_card.time_card(reading).model_dump(exclude_none=True)
    text = json.dumps(card)
    assert "09:30" in text and "Tuesday 4 March 2031" in text
    buttons = {
        button["label"]: button["onClickAction"]
        for row in card["children"]
        for button in row["children"]
        if button["type"] == "Button"
    }
    assert buttons["Refresh"] == {
        "type": "time.refresh",
        "handler": "server",
        "payload": {"timezone": ZONE},
    }
    assert buttons["Copy"] == {
        "type": "time.copy",
        "handler": "client",
        "payload": {"text": reading.summary},
    }
    assert reading.summary == "09:30 on Tuesday 4 March 2031 in Pacific/Auckland (UTC+13:00)"
    with pytest.raises(ValueError, match="Unknown time zone 'Mars/Base'"):
        time_card.read_clock("Mars/Base")


def test_the_answer_can_be_plain_text(
    backend: BackendFactory, provider: str, fake: FakeProvider
) -> None:
    fake.script(call("current_time", timezone="UTC", show_card=False), say("Noon-ish."))
    with backend(provider=provider) as url, ChatKitClient(url) as browser:
        turn = browser.create_thread("Just tell me the UTC time")
    assert turn.errors == [] and done(turn, "widget") == []
    assert "+00:00" in (model_calls(fake)[-1].last_tool_output() or "")


def test_refresh_updates_the_card_in_place(
    browser: ChatKitClient, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    widget = show_card(browser, fake)
    thread_id, calls = widget["thread_id"], len(model_calls(fake))
    target = {"thread_id": thread_id, "item_id": widget["id"], "action": refresh()}

    set_clock(monkeypatch, LATER)
    turn = browser.stream("threads.custom_action", **target)
    assert turn.errors == [], turn.events
    [replaced] = [event["item"] for event in turn.of_type("thread.item.replaced")]
    assert replaced["id"] == widget["id"] and "09:30" in json.dumps(replaced["widget"])
    assert_refreshed(browser, widget, LATER)

    set_clock(monkeypatch, LATER_STILL)
    updated = browser.request("threads.sync_custom_action", **target)["updated_item"]
    assert updated["id"] == widget["id"] and "17:45" in json.dumps(updated["widget"])
    assert_refreshed(browser, widget, LATER_STILL)
    assert len(model_calls(fake)) == calls, "no model call"


def assert_refreshed(browser: ChatKitClient, widget: dict[str, Any], at: datetime) -> None:
    """The stored card is the refreshed one, in the old one's place."""
    items = browser.all_items(widget["thread_id"])
    assert [item["type"] for item in items] == ["user_message", "widget", "assistant_message"]
    stored = items[1]
    assert stored["id"] == widget["id"]
    assert stored["copy_text"] == time_card.TimeReading(ZONE, at).summary
    assert f"{at:%H:%M}" in json.dumps(stored["widget"]) and stored["widget"] != widget["widget"]


OPS = ("threads.custom_action", "threads.sync_custom_action")


def test_bad_actions_are_4xx_and_change_nothing(browser: ChatKitClient, fake: FakeProvider) -> None:
    widget = show_card(browser, fake)
    thread_id = widget["thread_id"]
    user_message = browser.all_items(thread_id)[0]["id"]
    before, calls = browser.all_items(thread_id), len(model_calls(fake))

    def status(op: str, action: dict[str, Any], item: str | None = widget["id"]) -> tuple[int, str]:
        params: dict[str, Any] = {"thread_id": thread_id, "action": action}
        if item is not None:
            params["item_id"] = item
        response = browser.post({"type": op, "params": params})
        return response.status_code, response.json()["error"]["message"]

    for op in OPS:
        assert status(op, {"type": "time.explode", "payload": {}}) == (
            400,
            "Unknown action type 'time.explode'; this server handles: time.refresh. "
            "Add a handler to ACTIONS in app/extensions.py.",
        )
        # time.copy is the page's own (a client action): the server does not handle it.
        assert status(op, {"type": "time.copy", "payload": {"text": "x"}})[0] == 400
        code, message = status(op, refresh("Mars/Base"))
        assert code == 400 and "Unknown time zone 'Mars/Base'" in message
        assert status(op, {"type": "time.refresh", "payload": "nonsense"})[0] == 400
        assert status(op, {"type": "time.refresh"})[0] == 400
        assert status(op, {"payload": {"timezone": ZONE}})[0] == 400  # no type at all
        assert status(op, refresh(), item=None)[0] == 400
        code, message = status(op, refresh(), item=user_message)
        assert code == 400 and "not a widget" in message
        assert status(op, refresh(), item="msg_nope")[0] == 404
    assert browser.all_items(thread_id) == before and len(model_calls(fake)) == calls


def test_another_users_card_is_out_of_reach(
    browser: ChatKitClient, fake: FakeProvider, clock_later: None
) -> None:
    widget = show_card(browser, fake)
    before = browser.all_items(widget["thread_id"])
    with ChatKitClient(str(browser.http.base_url)) as stranger:
        # Their thread and item ids, or the stranger's own thread with the item's id.
        own_thread = show_card(stranger, fake)["thread_id"]
        for op in OPS:
            for thread_id in (widget["thread_id"], own_thread):
                params = {"thread_id": thread_id, "item_id": widget["id"], "action": refresh()}
                response = stranger.post({"type": op, "params": params})
                assert response.status_code == 404, response.text
    assert browser.all_items(widget["thread_id"]) == before
