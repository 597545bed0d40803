"""Each fix in app/sdk_fixes/: a canary on upstream's behaviour, and a test of the fix.

A canary is named `test_upstream_*` and names its module. When one fails after upgrading
openai-chatkit, openai-agents, openai or aiosqlite, upstream fixed the problem or changed
what the fix relies on: read the module, then remove the fix (and its tests) or adapt it.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import importlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
import openai._utils._transform as openai_transform  # private: only a canary looks at it
import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunContextWrapper,
    Runner,
    StopAtTools,
    function_tool,
)
from agents.exceptions import UserError
from agents.models.chatcmpl_converter import Converter
from chatkit.agents import (
    AgentContext,
    ClientToolCall,
    simple_to_agent_input,
    stream_agent_response,
)
from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import NotFoundError, Store, default_generate_id
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ClientToolCallItem,
    InferenceOptions,
    Page,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTextContent,
)
from openai import AsyncOpenAI
from openai.types.responses import response_create_params
from pydantic import TypeAdapter
from sqlalchemy import event
from sqlalchemy.engine import Engine

import app.sdk_fixes
from app.context import RequestContext
from app.history import HistoryConverter
from app.sdk_fixes.attachments_first import ChecksAttachmentsFirst
from app.sdk_fixes.cancelled_streams import SavesCancelledStreams
from app.sdk_fixes.message_ids import with_own_message_ids
from app.sdk_fixes.orphaned_steps import quiet_orphaned_stream_steps
from app.sdk_fixes.request_parsing import ParsesOnce
from app.sdk_fixes.stream_task_leak import release_queue_reader
from app.stores import AppStore, MemoryStore, open_store
from tests.fake_provider import FakeProvider, call, default_reply

BACKEND = Path(__file__).resolve().parents[1]
ALICE = RequestContext(user_id="usr_alice")


def conversation() -> list[Any]:
    now = datetime.now()
    return [
        UserMessageItem(
            id="msg_1",
            thread_id="thr_1",
            created_at=now,
            inference_options=InferenceOptions(),
            content=[UserMessageTextContent(text="hi")],
        ),
        AssistantMessageItem(
            id="msg_2",
            thread_id="thr_1",
            created_at=now,
            content=[AssistantMessageContent(text="hello there")],
        ),
        UserMessageItem(
            id="msg_3",
            thread_id="thr_1",
            created_at=now,
            inference_options=InferenceOptions(),
            content=[UserMessageTextContent(text="what can you do?")],
        ),
    ]


async def new_thread(store: Store[RequestContext]) -> ThreadMetadata:
    thread = ThreadMetadata(id=store.generate_thread_id(ALICE), created_at=datetime.now())
    await store.save_thread(thread, ALICE)
    return thread


class Turn:
    """One agent run streamed through `stream_agent_response`, as `respond` runs it."""

    def __init__(self, fake: FakeProvider, store: Store[RequestContext], api: str) -> None:
        self.client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        model_class = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        self.agent = Agent[AgentContext[Any]](
            name="a", model=model_class(model="m", openai_client=self.client)
        )
        self.store = store

    async def start(self, thread: ThreadMetadata) -> AsyncIterator[ThreadStreamEvent]:
        self.context = AgentContext[RequestContext](
            thread=thread, store=self.store, request_context=ALICE
        )
        self.result = Runner.run_streamed(self.agent, "hi", context=self.context)
        return stream_agent_response(self.context, self.result)

    async def events(self, thread: ThreadMetadata) -> list[ThreadStreamEvent]:
        return [event async for event in await self.start(thread)]

    async def dropped(self, thread: ThreadMetadata) -> None:
        """Cancel the reader after the first text delta, as a client that hangs up does."""
        events = await self.start(thread)
        first_delta = asyncio.Event()

        async def read() -> None:
            async for streamed in events:
                if isinstance(streamed, ThreadItemUpdatedEvent):
                    first_delta.set()

        reader = asyncio.ensure_future(read())
        await first_delta.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        self.result.cancel()  # as respond() does when its stream ends


@pytest.fixture
async def slow_fake(fake: FakeProvider) -> FakeProvider:
    fake.reply = lambda record: default_reply(record) + " and more" * 40
    fake.delay_seconds = 0.01
    return fake


def queue_readers() -> list[asyncio.Task[Any]]:
    """The tasks `stream_agent_response` reads the agent context's event queue in."""
    return [
        task
        for task in asyncio.all_tasks()
        if "_AsyncQueueIterator" in getattr(task.get_coro(), "__qualname__", "") and not task.done()
    ]


# -- message_ids ---------------------------------------------------------------------------


async def test_upstream_chat_completions_messages_share_a_fake_id(fake: FakeProvider) -> None:
    """app/sdk_fixes/message_ids.py: every Chat Completions message is `__fake_id__`."""
    store = MemoryStore()
    events = await Turn(fake, store, "chat").events(await new_thread(store))
    added = [e.item.id for e in events if isinstance(e, ThreadItemAddedEvent)]
    deltas = {e.item_id for e in events if isinstance(e, ThreadItemUpdatedEvent)}
    assert added == ["__fake_id__"] and deltas == {"__fake_id__"}


async def test_own_ids_on_every_event_of_every_message(fake: FakeProvider) -> None:
    store = MemoryStore()
    upstream = await Turn(fake, store, "chat").events(await new_thread(store))
    # Two messages in a row with the same upstream id, as a tool-using run produces.
    doubled = upstream + upstream

    async def replay() -> AsyncIterator[ThreadStreamEvent]:
        for streamed in doubled:
            yield streamed

    ids = iter(["msg_a", "msg_b"])
    events = [e async for e in with_own_message_ids(replay(), lambda: next(ids))]
    by_type: dict[type, list[str]] = {}
    for streamed in events:
        key = (
            streamed.item.id
            if isinstance(streamed, ThreadItemAddedEvent | ThreadItemDoneEvent)
            else getattr(streamed, "item_id", None)
        )
        if key is not None:
            by_type.setdefault(type(streamed), []).append(key)
    assert by_type[ThreadItemAddedEvent] == ["msg_a", "msg_b"]
    assert by_type[ThreadItemDoneEvent] == ["msg_a", "msg_b"]
    half = len(by_type[ThreadItemUpdatedEvent]) // 2
    assert set(by_type[ThreadItemUpdatedEvent][:half]) == {"msg_a"}
    assert set(by_type[ThreadItemUpdatedEvent][half:]) == {"msg_b"}


@function_tool
def ask_page(ctx: RunContextWrapper[AgentContext[Any]]) -> str:
    """Ask the page."""
    ctx.context.client_tool_call = ClientToolCall(name="ask_page", arguments={})
    return "asked"


async def client_tool_call_events(
    fake: FakeProvider, store: MemoryStore
) -> list[ThreadStreamEvent]:
    """A Chat Completions run that stops at a client tool, as `respond` runs it."""
    fake.script(call("ask_page"))
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    agent = Agent[AgentContext[Any]](
        name="a",
        model=OpenAIChatCompletionsModel(model="m", openai_client=client),
        tools=[ask_page],
        tool_use_behavior=StopAtTools(stop_at_tool_names=["ask_page"]),
    )
    context = AgentContext[RequestContext](
        thread=await new_thread(store), store=store, request_context=ALICE
    )
    result = Runner.run_streamed(agent, "ask", context=context)
    return [event async for event in stream_agent_response(context, result)]


def client_tool_calls(events: list[ThreadStreamEvent]) -> list[ClientToolCallItem]:
    return [
        e.item
        for e in events
        if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, ClientToolCallItem)
    ]


async def test_upstream_chat_completions_client_tool_calls_share_a_fake_id(
    fake: FakeProvider,
) -> None:
    """app/sdk_fixes/message_ids.py: every Chat Completions client tool call is
    `__fake_id__` too, so a thread's second one overwrites its first."""
    [pending] = client_tool_calls(await client_tool_call_events(fake, MemoryStore()))
    assert pending.id == "__fake_id__" and pending.call_id.startswith("call_")


async def test_own_ids_for_every_client_tool_call(fake: FakeProvider) -> None:
    upstream = await client_tool_call_events(fake, MemoryStore())
    doubled = upstream + upstream  # two calls with the same upstream id

    async def replay() -> AsyncIterator[ThreadStreamEvent]:
        for streamed in doubled:
            yield streamed

    ids = iter(["tc_a", "tc_b"])
    events = [e async for e in with_own_message_ids(replay(), lambda: "msg_x", lambda: next(ids))]
    calls = client_tool_calls(events)
    assert [c.id for c in calls] == ["tc_a", "tc_b"]
    # The call id, which pairs the call with the page's answer, is upstream's.
    assert {c.call_id for c in calls} == {client_tool_calls(upstream)[0].call_id}


# -- assistant_history ---------------------------------------------------------------------


async def test_upstream_default_converter_breaks_chat_completions() -> None:
    """app/sdk_fixes/assistant_history.py: `output_text` parts fail on Chat Completions."""
    history = await simple_to_agent_input(conversation())
    with pytest.raises(UserError, match="Unknown content"):
        Converter.items_to_messages(history)


async def test_history_converter_works_on_both_api_styles() -> None:
    history = await HistoryConverter().to_agent_input(conversation())
    messages = Converter.items_to_messages(history)  # Chat Completions accepts it
    assert [(m["role"], m.get("content")) for m in messages][1] == ("assistant", "hello there")
    assert history[1] == {"role": "assistant", "content": "hello there"}  # an easy input message


# -- request_parsing -----------------------------------------------------------------------


class _Server(ParsesOnce[RequestContext]):
    async def respond(self, *args: Any) -> AsyncIterator[ThreadStreamEvent]:
        raise NotImplementedError
        yield


class CountingTypeAdapter:
    """Stands in for pydantic's TypeAdapter in chatkit.server, counting what is built."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.built = 0

    def __getitem__(self, _item: Any) -> CountingTypeAdapter:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.built += 1
        return self.real(*args, **kwargs)


LIST_THREADS = json.dumps({"type": "threads.list", "params": {"limit": 5}}).encode()


async def test_upstream_process_builds_its_parser_on_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """app/sdk_fixes/request_parsing.py: a TypeAdapter per request, and nothing else."""
    import chatkit.server

    counting = CountingTypeAdapter(TypeAdapter)
    monkeypatch.setattr(chatkit.server, "TypeAdapter", counting)
    server = _Server(MemoryStore())
    for _ in range(3):
        await ChatKitServer.process(server, LIST_THREADS, ALICE)
    assert counting.built == 3
    # ParsesOnce.process is a copy of this method: what it does must not have changed.
    assert set(ChatKitServer.process.__code__.co_names) == {
        "ChatKitReq",
        "NonStreamingResult",
        "StreamingResult",
        "TypeAdapter",
        "_process_non_streaming",
        "_process_streaming",
        "info",
        "is_streaming_req",
        "logger",
        "type",
        "validate_json",
    }


async def test_parses_once_answers_as_upstream_without_building_parsers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import chatkit.server

    store = MemoryStore()
    for _ in range(3):
        await new_thread(store)
    server = _Server(store)
    upstream = await ChatKitServer.process(server, LIST_THREADS, ALICE)
    counting = CountingTypeAdapter(TypeAdapter)
    monkeypatch.setattr(chatkit.server, "TypeAdapter", counting)
    ours = await server.process(LIST_THREADS, ALICE)
    assert counting.built == 0
    assert json.loads(getattr(ours, "json")) == json.loads(getattr(upstream, "json"))  # noqa: B009


# -- attachments_first ---------------------------------------------------------------------

CREATE_WITH_UNKNOWN_ATTACHMENT = json.dumps(
    {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": "hi"}],
                "attachments": ["atc_missing"],
                "inference_options": {},
            }
        },
    }
).encode()


async def test_upstream_a_new_thread_is_stored_before_its_attachments_are_checked() -> None:
    """app/sdk_fixes/attachments_first.py: an unknown attachment leaves an empty thread."""
    store = MemoryStore()
    result = await ChatKitServer.process(_Server(store), CREATE_WITH_UNKNOWN_ATTACHMENT, ALICE)
    assert isinstance(result, StreamingResult)
    with pytest.raises(NotFoundError):
        async for _ in result:
            pass
    assert len((await store.load_threads(10, None, "asc", ALICE)).data) == 1


async def test_checks_attachments_first_refuses_before_storing() -> None:
    class Refusing(ChecksAttachmentsFirst[RequestContext]):
        async def respond(self, *args: Any) -> AsyncIterator[ThreadStreamEvent]:
            raise NotImplementedError
            yield

        async def check_attachments(
            self, attachment_ids: list[str], thread_id: str | None, context: RequestContext
        ) -> None:
            raise NotFoundError(f"{attachment_ids} in {thread_id}")

    store = MemoryStore()
    with pytest.raises(NotFoundError, match=r"\['atc_missing'\] in None"):
        await Refusing(store).process(CREATE_WITH_UNKNOWN_ATTACHMENT, ALICE)
    assert (await store.load_threads(10, None, "asc", ALICE)).data == []


# -- loaded_history (its own tests are in test_loaded_history.py) ----------------------


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.pages: list[tuple[str, str | None, int, str]] = []

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        self.pages.append((thread_id, after, limit, order))
        return await super().load_thread_items(thread_id, after, limit, order, context)


async def test_upstream_stream_agent_response_loads_the_last_items_again(
    fake: FakeProvider,
) -> None:
    """app/sdk_fixes/loaded_history.py: its first store call is the newest 2 items."""
    store = RecordingStore()
    thread = await new_thread(store)
    await Turn(fake, store, "responses").events(thread)
    # LoadedHistory serves exactly this call (no cursor, newest first) from memory.
    assert store.pages[0] == (thread.id, None, 2, "desc")


# -- stream_task_leak ----------------------------------------------------------------------


async def test_upstream_a_dropped_stream_leaves_its_queue_reader_waiting(
    slow_fake: FakeProvider,
) -> None:
    """app/sdk_fixes/stream_task_leak.py: the queue reader waits forever."""
    before = set(queue_readers())
    turn = Turn(slow_fake, MemoryStore(), "responses")
    await turn.dropped(await new_thread(turn.store))
    await asyncio.sleep(0.2)
    leaked = set(queue_readers()) - before
    assert len(leaked) == 1
    await release_queue_reader(turn.context)  # (clean up after the canary)


async def test_release_queue_reader_ends_the_waiting_task(slow_fake: FakeProvider) -> None:
    before = set(queue_readers())
    turn = Turn(slow_fake, MemoryStore(), "responses")
    await turn.dropped(await new_thread(turn.store))
    await release_queue_reader(turn.context)
    for _ in range(50):
        if not set(queue_readers()) - before:
            break
        await asyncio.sleep(0.01)
    assert set(queue_readers()) - before == set()


# -- orphaned_steps ------------------------------------------------------------------------


async def test_upstream_a_dropped_stream_reports_an_unretrieved_stop() -> None:
    """app/sdk_fixes/orphaned_steps.py: the step tasks a cancelled stream leaves behind
    end with StopAsyncIteration, which asyncio reports as never retrieved."""
    from chatkit.agents import _merge_generators  # what stream_agent_response reads with

    run_over = asyncio.Event()

    async def agent_stream() -> AsyncIterator[str]:
        yield "delta"
        await run_over.wait()  # a run ends once respond() cancels it

    async def queue() -> AsyncIterator[str]:
        await run_over.wait()
        return
        yield

    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:

        async def read() -> None:
            async for _ in _merge_generators(agent_stream(), queue()):
                pass

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.05)  # the delta is read, the reader waits for the next step
        reader.cancel()  # the client hung up
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        run_over.set()
        for _ in range(20):
            await asyncio.sleep(0.01)
            gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert reported
    assert all(isinstance(context.get("exception"), StopAsyncIteration) for context in reported)
    assert "never retrieved" in reported[0]["message"]


def test_quiet_orphaned_stream_steps_drops_only_stop_async_iteration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level("ERROR", logger="asyncio"):
            stop = {"message": "Task exception was never retrieved"}
            quiet_orphaned_stream_steps(loop, {**stop, "exception": StopAsyncIteration()})
            assert caplog.records == []
            quiet_orphaned_stream_steps(loop, {**stop, "exception": ValueError("real")})
    finally:
        loop.close()
    assert [record.getMessage() for record in caplog.records] == [stop["message"]]


# -- cancelled_streams ---------------------------------------------------------------------


class _Upstream(ChatKitServer[RequestContext]):
    async def respond(self, *args: Any) -> AsyncIterator[ThreadStreamEvent]:
        raise NotImplementedError
        yield


class _Fixed(SavesCancelledStreams[RequestContext], _Upstream):
    pass


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[AppStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'cancelled.db'}")
    yield store
    await store.close()


async def _cancel_mid_cleanup(server: ChatKitServer[RequestContext], store: AppStore) -> list[str]:
    """The item types stored when the cleanup runs in a cancelled scope, as in Starlette."""
    thread = await new_thread(store)
    partial = AssistantMessageItem(
        id=store.generate_item_id("message", thread, ALICE),
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text="a partial rep")],
    )
    with anyio.CancelScope() as scope:
        scope.cancel()
        await server.handle_stream_cancelled(thread, [partial], ALICE)
    await asyncio.sleep(0.2)  # whatever still runs, finishes
    page = await store.load_thread_items(thread.id, None, 10, "asc", ALICE)
    return [item.type for item in page.data]


async def test_upstream_cancelled_cleanup_stops_at_its_first_await(
    sqlite_store: AppStore,
) -> None:
    """app/sdk_fixes/cancelled_streams.py: the note that the user stopped it is lost."""
    assert "sdk_hidden_context" not in await _cancel_mid_cleanup(
        _Upstream(sqlite_store), sqlite_store
    )


async def test_saves_cancelled_streams_stores_the_partial_reply_and_the_note(
    sqlite_store: AppStore,
) -> None:
    stored = await _cancel_mid_cleanup(_Fixed(sqlite_store), sqlite_store)
    assert stored == ["assistant_message", "sdk_hidden_context"]


# -- conversation_as_is (its own tests are in test_provider_client.py) ---------------------


async def test_upstream_the_request_walk_visits_every_history_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """app/sdk_fixes/conversation_as_is.py: the walk's work grows with the history."""
    calls = 0
    walk = openai_transform._async_transform_recursive

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await walk(*args, **kwargs)

    monkeypatch.setattr(openai_transform, "_async_transform_recursive", counting)
    pair = [
        {"role": "user", "type": "message", "content": [{"type": "input_text", "text": "hi"}]},
        {"role": "assistant", "content": "hello"},
    ]
    params = response_create_params.ResponseCreateParamsStreaming
    counts = []
    for pairs in (5, 10):
        calls = 0
        await openai_transform.async_maybe_transform({"model": "m", "input": pair * pairs}, params)
        counts.append(calls)
    # Several type checks per item, and twice the items twice the work.
    assert counts[1] - counts[0] > 10 * 10
    assert counts[1] >= 1.8 * counts[0]


# -- full_uuid_ids -------------------------------------------------------------------------


def test_upstream_default_ids_keep_32_random_bits() -> None:
    """app/sdk_fixes/full_uuid_ids.py: 8 hex characters after the SDK's prefix."""
    assert re.fullmatch(r"thr_[0-9a-f]{8}", default_generate_id("thread"))
    assert re.fullmatch(r"msg_[0-9a-f]{8}", default_generate_id("message"))


async def test_app_stores_make_full_uuid_ids() -> None:
    store = MemoryStore()
    thread = await new_thread(store)
    assert re.fullmatch(r"thr_[0-9a-f]{32}", thread.id)
    assert re.fullmatch(r"msg_[0-9a-f]{32}", store.generate_item_id("message", thread, ALICE))


# -- gc_freeze -----------------------------------------------------------------------------

_COUNTS = """
import asyncio, gc, json
import chatkit.server, chatkit.agents, agents, fastapi
sdk_objects = len(gc.get_objects())
from app.main import create_app
app = create_app()

async def boot() -> int:
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count()

print(json.dumps({"sdk_objects": sdk_objects, "frozen": asyncio.run(boot())}))
"""


@pytest.fixture(scope="module")
def object_counts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    # In a process of its own: the test process may have frozen its objects already.
    database = tmp_path_factory.mktemp("gc") / "gc.db"
    result = subprocess.run(
        [sys.executable, "-c", _COUNTS],
        cwd=BACKEND,
        env={
            **os.environ,
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "test-key",
            "DATABASE_URL": f"sqlite:///{database}",
            "SESSION_SECRET": "s" * 40,
            "MCP_SERVER_URL": "",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout.splitlines()[-1])
    return counts


def test_upstream_the_sdks_leave_many_long_lived_objects(object_counts: dict[str, int]) -> None:
    """app/sdk_fixes/gc_freeze.py: importing the SDKs alone leaves 100,000s of objects."""
    assert object_counts["sdk_objects"] > 100_000


def test_startup_objects_are_out_of_the_collectors_full_collections(
    object_counts: dict[str, int],
) -> None:
    assert object_counts["frozen"] > object_counts["sdk_objects"]


# -- inline_sqlite -------------------------------------------------------------------------


async def test_upstream_aiosqlite_runs_every_call_in_its_thread(tmp_path: Path) -> None:
    """app/sdk_fixes/inline_sqlite.py: each statement runs off the event loop's thread."""
    threads: set[int] = set()
    async with aiosqlite.connect(tmp_path / "hops.db") as db:
        await db.set_trace_callback(lambda _statement: threads.add(threading.get_ident()))
        await db.execute("SELECT 1")
    assert threads and threading.get_ident() not in threads


@pytest.fixture
def statements_seen() -> Iterator[list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []

    def record(conn: Any, *args: Any) -> None:
        seen.append((conn.engine.url.drivername, threading.get_ident()))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


async def test_sqlite_queries_run_on_the_loop_thread(
    sqlite_store: AppStore, statements_seen: list[tuple[str, int]]
) -> None:
    thread = await new_thread(sqlite_store)
    await sqlite_store.load_thread(thread.id, ALICE)
    await sqlite_store.load_thread_items(thread.id, None, 10, "desc", ALICE)
    assert statements_seen
    assert set(statements_seen) == {("sqlite+pysqlite", threading.get_ident())}


# -- the package ---------------------------------------------------------------------------


def _fix_modules() -> list[str]:
    folder = Path(app.sdk_fixes.__file__).parent
    return sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")


def _canaries() -> dict[str, str]:
    """Canary test name -> its docstring, over every test module."""
    found = {}
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_upstream_"
            ):
                found[node.name] = ast.get_docstring(node) or ""
    return found


@pytest.mark.parametrize("module", _fix_modules())
def test_every_fix_is_labelled_and_has_a_canary(module: str) -> None:
    doc = importlib.import_module(f"app.sdk_fixes.{module}").__doc__ or ""
    assert "Upstream (" in doc, "say which upstream version does what"
    assert "\nCost:" in doc, "say what it costs or saves, and how that was measured"
    assert f"``{module}``" in (app.sdk_fixes.__doc__ or ""), "list it in the package's table"
    canaries = [name for name, text in _canaries().items() if f"app/sdk_fixes/{module}.py" in text]
    assert canaries, f"no test_upstream_* test names app/sdk_fixes/{module}.py"
