"""The fake provider against the real ``openai`` client and the real Agents SDK, on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import agents
import httpx
import openai
import pytest
from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent, ResponseTextDeltaEvent
from pydantic import TypeAdapter

from tests.fake_provider import (
    FakeProvider,
    Fault,
    RecordedRequest,
    call,
    refused_base_url,
    say,
)

agents.set_tracing_disabled(True)

HELLO: list[Any] = [{"role": "user", "content": "hello"}]
HISTORY: list[Any] = [
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "earlier reply"},
    {"role": "user", "content": "second question"},
]
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="session")
def shared_fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def fake(shared_fake: FakeProvider) -> FakeProvider:
    shared_fake.reset()
    return shared_fake


@pytest.fixture
async def client(fake: FakeProvider) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as c:
        yield c


def model_requests(fake: FakeProvider) -> list[RecordedRequest]:
    return [request for request in fake.requests if request.api]


# --- the plain client --------------------------------------------------------------------


async def test_chat_completions_stream_and_plain(
    fake: FakeProvider, client: openai.AsyncOpenAI
) -> None:
    stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'Reply #1: you said "hello" (I can see 0 earlier messages)'
    assert len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == "stop"

    completion = await client.chat.completions.create(model="m", messages=[*HISTORY])
    assert completion.choices[0].message.content == (
        'Reply #2: you said "second question" (I can see 2 earlier messages)'
    )
    first, second = model_requests(fake)
    assert (first.path, first.api, first.stream, second.stream) == (
        "/v1/chat/completions",
        "chat",
        True,
        False,
    )
    assert first.authorization == "Bearer test"
    assert second.messages_text() == [(m["role"], m["content"]) for m in HISTORY]


async def test_responses_stream_and_plain(fake: FakeProvider, client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(model="m", input="hello", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events if e.type != "response.output_text.delta"] == [
        t for t in TEXT_EVENTS if t != "response.output_text.delta"
    ]
    deltas = [e.delta for e in events if isinstance(e, ResponseTextDeltaEvent)]
    expected = 'Reply #1: you said "hello" (I can see 0 earlier messages)'
    assert len(deltas) > 1 and "".join(deltas) == expected
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == expected
    assert completed.response.usage is not None and completed.response.usage.input_tokens == 1

    response = await client.responses.create(model="m", instructions="Be brief.", input=[*HISTORY])
    assert response.output_text == (
        'Reply #2: you said "second question" (I can see 2 earlier messages)'
    )
    assert model_requests(fake)[1].messages_text()[0] == ("system", "Be brief.")


async def test_models_endpoint_and_reply_settings(
    fake: FakeProvider, client: openai.AsyncOpenAI
) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]

    fake.reply = "fixed answer"
    completion = await client.chat.completions.create(model="m", messages=HELLO)
    assert completion.choices[0].message.content == "fixed answer"

    fake.reply = lambda record: f"{record.api}:{record.last_user_text().upper()}"
    response = await client.responses.create(model="m", input="shout")
    assert response.output_text == "responses:SHOUT"

    # The first request (GET /v1/models) is recorded too; model calls are numbered from 1.
    assert [(r.method, r.path, r.number) for r in fake.requests] == [
        ("GET", "/v1/models", 0),
        ("POST", "/v1/chat/completions", 1),
        ("POST", "/v1/responses", 2),
    ]


async def test_messages_text_normalizes_content_shapes(
    fake: FakeProvider, client: openai.AsyncOpenAI
) -> None:
    await client.chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "parts"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "old"}]},
            {"role": "user", "content": "now"},
        ],
    )
    await client.responses.create(
        model="m",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "parts"}]},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "old", "annotations": []}],
            },
            {"role": "assistant", "content": "plain old"},
            {"role": "user", "content": "now"},
        ],
    )
    chat, responses = model_requests(fake)
    assert chat.messages_text() == [
        ("system", "sys"),
        ("user", "parts"),
        ("assistant", "old"),
        ("user", "now"),
    ]
    assert responses.messages_text() == [
        ("user", "parts"),
        ("assistant", "old"),
        ("assistant", "plain old"),
        ("user", "now"),
    ]


# --- strict validation of the raw wire format ---------------------------------------------


def raw_sse(fake: FakeProvider, path: str, body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """POST and split the SSE body into (event, data) pairs, as an SSE parser would."""
    events: list[tuple[str | None, str]] = []
    url = fake.base_url + path
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields["data"]))
    return events


TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}
CHAT_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.mark.parametrize("text", ["hello", '/tool lookup {"q": "x"}'])
def test_raw_events_validate_against_openai_types(fake: FakeProvider, text: str) -> None:
    adapter: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
    body = {"model": "m", "input": text, "tools": [TOOL]}
    events = raw_sse(fake, "/responses", body)
    for index, (name, data) in enumerate(events):
        event = adapter.validate_python(json.loads(data))
        assert name == event.type and event.sequence_number == index
    final = adapter.validate_python(json.loads(events[-1][1]))
    assert final.type == "response.completed"
    item = final.response.output[0]
    if text == "hello":
        assert [name for name, _ in events if name != "response.output_text.delta"] == [
            t for t in TEXT_EVENTS if t != "response.output_text.delta"
        ]
        assert item.type == "message" and item.id.startswith("msg_")
    else:
        assert item.type == "function_call" and item.name == "lookup"
        assert json.loads(item.arguments) == {"q": "x"}

    chat_body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}]}
    chat_body |= {"tools": [CHAT_TOOL], "stream_options": {"include_usage": True}}
    chunks = raw_sse(fake, "/chat/completions", chat_body)
    assert chunks[-1] == (None, "[DONE]")
    parsed = [ChatCompletionChunk.model_validate_json(data) for _, data in chunks[:-1]]
    assert parsed[-1].usage is not None and parsed[-1].choices == []

    assert Response.model_validate(httpx.post(fake.base_url + "/responses", json=body).json())
    completion = httpx.post(fake.base_url + "/chat/completions", json=chat_body | {"stream": False})
    assert ChatCompletion.model_validate(completion.json())


# --- the Agents SDK, both API styles ------------------------------------------------------


def agent_for(client: openai.AsyncOpenAI, api: str, **kwargs: Any) -> Agent[Any]:
    model_class = OpenAIChatCompletionsModel if api == "chat" else OpenAIResponsesModel
    model = model_class(model="m", openai_client=client)
    return Agent(name="Assistant", instructions="Be helpful.", model=model, **kwargs)


async def run_streamed(agent: Agent[Any], conversation: list[Any]) -> tuple[str, list[str]]:
    result = Runner.run_streamed(agent, input=conversation)
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
    ]
    return str(result.final_output), deltas


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_agent_streams_reply_and_sends_history(
    fake: FakeProvider, client: openai.AsyncOpenAI, api: str
) -> None:
    output, deltas = await run_streamed(agent_for(client, api), HISTORY)

    assert output == 'Reply #1: you said "second question" (I can see 2 earlier messages)'
    assert len(deltas) > 1 and "".join(deltas) == output
    (request,) = model_requests(fake)
    assert request.api == api and request.stream
    assert request.messages_text() == [
        ("system", "Be helpful."),
        ("user", "first question"),
        ("assistant", "earlier reply"),
        ("user", "second question"),
    ]


@agents.function_tool
def lookup_weather(city: str) -> str:
    """Look up the weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_agent_function_tool_round_trip(
    fake: FakeProvider, client: openai.AsyncOpenAI, api: str
) -> None:
    agent = agent_for(client, api, tools=[lookup_weather])
    conversation = [{"role": "user", "content": '/tool lookup_weather {"city": "Oslo"}'}]
    output, _ = await run_streamed(agent, conversation)

    assert output == 'Reply #2: the tool returned "sunny in Oslo"'
    call, follow_up = model_requests(fake)
    assert call.json["tools"]
    assert follow_up.messages_text()[-2:] == [
        ("tool_call", 'lookup_weather {"city": "Oslo"}'),
        ("tool", "sunny in Oslo"),
    ]


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_scripted_turns_choose_the_tool_and_its_arguments(
    fake: FakeProvider, client: openai.AsyncOpenAI, api: str
) -> None:
    # The second call's arguments come from the first call's tool output.
    fake.script(
        call("lookup_weather", city="Oslo"),
        lambda request: call("lookup_weather", city=f"not {request.last_tool_output()}"),
        say("done"),
    )
    agent = agent_for(client, api, tools=[lookup_weather])
    output, _ = await run_streamed(agent, [{"role": "user", "content": "what now?"}])

    assert output == "done"
    assert fake.script_left == 0
    _first, second, last = model_requests(fake)
    assert second.last_tool_output() == "sunny in Oslo"
    assert last.messages_text()[-2:] == [
        ("tool_call", 'lookup_weather {"city":"not sunny in Oslo"}'),
        ("tool", "sunny in not sunny in Oslo"),
    ]
    # An empty script: the default rules again.
    fake.script()
    output, _ = await run_streamed(agent, [{"role": "user", "content": "hi"}])
    assert output.startswith("Reply #4: you said")


def test_reasoning_summaries_go_out_only_when_asked_on_responses(fake: FakeProvider) -> None:
    adapter: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
    asked = {"model": "m", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"}}
    fake.script(say("answer", reasoning=["Thinking about it.", "Checked twice."]))
    events = [
        adapter.validate_python(json.loads(data)) for _, data in raw_sse(fake, "/responses", asked)
    ]
    names = [event.type for event in events]
    assert names[2:5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
    ]
    summaries = [e.text for e in events if e.type == "response.reasoning_summary_text.done"]
    assert summaries == ["Thinking about it.", "Checked twice."]
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == ["reasoning", "message"]

    # Not asked (or Chat Completions): the same step sends no reasoning.
    fake.script(say("answer", reasoning=["hidden"]))
    plain = raw_sse(fake, "/responses", {"model": "m", "input": "hi"})
    assert not any("reasoning_summary" in (name or "") for name, _ in plain)
    fake.script(say("answer", reasoning=["hidden"]))
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert "hidden" not in "".join(data for _, data in raw_sse(fake, "/chat/completions", chat))
    fake.script(say("answer", reasoning=["Thinking."]))
    response = Response.model_validate(httpx.post(fake.base_url + "/responses", json=asked).json())
    assert [item.type for item in response.output] == ["reasoning", "message"]


# --- faults ----------------------------------------------------------------------------------


async def consume(client: openai.AsyncOpenAI, api: str) -> str:
    if api == "chat":
        stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    events = await client.responses.create(model="m", input="hello", stream=True)
    return "".join([e.delta async for e in events if isinstance(e, ResponseTextDeltaEvent)])


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.HTTP_401, openai.AuthenticationError),
        (Fault.HTTP_500, openai.InternalServerError),
        (Fault.RATE_LIMIT, openai.RateLimitError),
        (Fault.CUT_STREAM, openai.APIConnectionError),
        (Fault.INVALID_CHUNK, json.JSONDecodeError),
    ],
)
async def test_fault_surfaces_as_client_error(
    fake: FakeProvider, client: openai.AsyncOpenAI, api: str, fault: Fault, error: type[Exception]
) -> None:
    fake.fail_next(fault, retry_after=2)
    with pytest.raises(error) as caught:
        await consume(client, api)
    if fault is Fault.RATE_LIMIT:
        assert isinstance(caught.value, openai.RateLimitError)
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.code == "rate_limit_exceeded"
    assert await consume(client, api) == (
        'Reply #2: you said "hello" (I can see 0 earlier messages)'
    )
    assert [r.fault for r in model_requests(fake)] == [fault, None]


@pytest.mark.parametrize("fault", [Fault.CUT_STREAM, Fault.INVALID_CHUNK, Fault.SLOW_FIRST_BYTE])
async def test_fault_on_non_streaming_request(
    fake: FakeProvider, client: openai.AsyncOpenAI, fault: Fault
) -> None:
    fake.fail_next(fault, seconds=5)
    expected = {
        Fault.CUT_STREAM: openai.APIConnectionError,
        Fault.INVALID_CHUNK: json.JSONDecodeError,
        Fault.SLOW_FIRST_BYTE: openai.APITimeoutError,
    }[fault]
    with pytest.raises(expected):
        await client.with_options(timeout=0.2).responses.create(model="m", input="hello")


async def test_cut_stream_delivers_some_deltas_first(
    fake: FakeProvider, client: openai.AsyncOpenAI
) -> None:
    fake.fail_next(Fault.CUT_STREAM)
    received: list[str] = []
    stream = await client.responses.create(model="m", input="hello", stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            received.append(event.type)
    assert "response.output_text.delta" in received
    assert "response.completed" not in received


async def test_slow_first_byte_times_out(fake: FakeProvider, client: openai.AsyncOpenAI) -> None:
    fake.fail_next(Fault.SLOW_FIRST_BYTE, seconds=5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(
            model="m", messages=HELLO, stream=True
        )
    assert time.monotonic() - started < 1

    fake.fail_next(Fault.SLOW_FIRST_BYTE, seconds=0.2)
    started = time.monotonic()
    assert (await consume(client, "chat")).startswith("Reply #2")
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("base_url", [refused_base_url(), FakeProvider.refused_base_url()])
async def test_refused_connection(base_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="m", messages=HELLO)


async def test_sdk_retries_consume_one_fault_per_attempt(fake: FakeProvider) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=2) as client:
        fake.fail_next(Fault.RATE_LIMIT, times=2, retry_after=0.01)
        assert (await consume(client, "chat")).startswith("Reply #3")

        fake.fail_next(Fault.RATE_LIMIT, times=3, retry_after=0.01)
        with pytest.raises(openai.RateLimitError):
            await consume(client, "responses")
    faults = [r.fault for r in model_requests(fake)]
    assert faults == [Fault.RATE_LIMIT] * 2 + [None] + [Fault.RATE_LIMIT] * 3


async def test_persistent_fault_until_cleared(
    fake: FakeProvider, client: openai.AsyncOpenAI
) -> None:
    fake.fail_always(Fault.HTTP_500)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await consume(client, "responses")
    fake.clear_faults()
    assert (await consume(client, "responses")).startswith("Reply #4")


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.HTTP_500, openai.InternalServerError),
        (Fault.CUT_STREAM, openai.APIConnectionError),
        (Fault.INVALID_CHUNK, json.JSONDecodeError),
    ],
)
async def test_agent_stream_events_raise_the_client_error(
    fake: FakeProvider, client: openai.AsyncOpenAI, api: str, fault: Fault, error: type[Exception]
) -> None:
    fake.fail_next(fault)
    with pytest.raises(error):
        await run_streamed(agent_for(client, api), HELLO)


# --- streaming is incremental ------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_deltas_arrive_incrementally(
    fake: FakeProvider, client: openai.AsyncOpenAI, api: str
) -> None:
    fake.reply, fake.chunk_size, fake.delay_seconds = "abcdefghijklmnopqrstuvwxy", 5, 0.1
    started = time.monotonic()
    arrivals: list[float] = []
    if api == "chat":
        stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic() - started)
    else:
        events = await client.responses.create(model="m", input="hello", stream=True)
        async for event in events:
            if isinstance(event, ResponseTextDeltaEvent):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 0.35  # 4 pauses of 0.1 s after the first delta


# --- lifecycle -----------------------------------------------------------------------------


def fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fake-provider-")]


def test_many_fakes_start_and_stop_quickly() -> None:
    threads_before = fake_threads()
    for _ in range(2):
        with FakeProvider() as first, FakeProvider() as second:
            assert first.base_url != second.base_url
            response = httpx.get(first.base_url + "/models")
            assert response.json()["data"][0]["id"] == "fake-model"
            started = time.monotonic()
        # Stopping shuts the servers down at once; a hang here would be a lost shutdown,
        # which this bound catches without timing anything close.
        assert time.monotonic() - started < 10.0
    assert fake_threads() == threads_before
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.base_url + "/models")


def test_unknown_path_and_reset(fake: FakeProvider) -> None:
    response = httpx.post(fake.base_url + "/embeddings", json={})
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
    fake.fail_next(Fault.HTTP_500)
    fake.reset()
    assert fake.requests == []
    ok = httpx.post(fake.base_url + "/chat/completions", json={"model": "m", "messages": HELLO})
    assert ok.json()["choices"][0]["message"]["content"].startswith("Reply #1:")


def test_cli_prints_base_url_and_serves() -> None:
    backend = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "tests.fake_provider", "--port", "0", "--delay", "0"]
    with subprocess.Popen(
        command, cwd=backend, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            with openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0) as client:
                completion = client.chat.completions.create(model="m", messages=HELLO)
            assert completion.choices[0].message.content == (
                'Reply #1: you said "hello" (I can see 0 earlier messages)'
            )
        finally:
            process.terminate()
