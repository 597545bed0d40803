"""The baseline: the minimal ChatKit server the ChatKit Python docs describe.

Written from openai/chatkit-python docs/guides/respond-to-user-message.md ("Respond to a
user message"): a `ChatKitServer` subclass whose `respond` loads the last 20 thread items
(`order="desc"`, reversed), converts them with the default converter
(`simple_to_agent_input`), runs `Runner.run_streamed` on an `OpenAIResponsesModel` and
yields `stream_agent_response(...)`; the store keeps everything in dicts; the FastAPI
endpoint hands the body to `server.process` and wraps a `StreamingResult` in a
`StreamingResponse`. One AsyncOpenAI client per process, as any server would have.
BENCH_PROVIDER_URL is the provider's base URL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from chatkit.agents import AgentContext, simple_to_agent_input, stream_agent_response
from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import NotFoundError, Store
from chatkit.types import (
    Attachment,
    Page,
    ThreadItem,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
)
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI

set_tracing_disabled(True)


@dataclass
class MyRequestContext:
    user_id: str


class DictStore(Store[MyRequestContext]):
    """In memory: thread id -> metadata, thread id -> items in order."""

    def __init__(self) -> None:
        self.threads: dict[str, ThreadMetadata] = {}
        self.items: dict[str, list[ThreadItem]] = {}

    async def load_thread(self, thread_id: str, context: MyRequestContext) -> ThreadMetadata:
        if thread_id not in self.threads:
            raise NotFoundError(f"Thread {thread_id} not found")
        return self.threads[thread_id].model_copy()

    async def save_thread(self, thread: ThreadMetadata, context: MyRequestContext) -> None:
        self.threads[thread.id] = ThreadMetadata(
            **{name: getattr(thread, name) for name in ThreadMetadata.model_fields}
        )

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: Any
    ) -> Page[ThreadItem]:
        items = self.items.get(thread_id, [])
        ordered = list(reversed(items)) if order == "desc" else list(items)
        start = 0
        if after is not None:
            start = next(i for i, item in enumerate(ordered) if item.id == after) + 1
        page = ordered[start : start + limit]
        return Page(data=page, has_more=start + limit < len(ordered), after=None)

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: Any) -> None:
        items = self.items.setdefault(thread_id, [])
        for index, existing in enumerate(items):
            if existing.id == item.id:
                items[index] = item
                return
        items.append(item)

    async def save_item(self, thread_id: str, item: ThreadItem, context: Any) -> None:
        await self.add_thread_item(thread_id, item, context)

    async def load_item(self, thread_id: str, item_id: str, context: Any) -> ThreadItem:
        for item in self.items.get(thread_id, []):
            if item.id == item_id:
                return item
        raise NotFoundError(item_id)

    async def delete_thread(self, thread_id: str, context: Any) -> None:
        self.threads.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def delete_thread_item(self, thread_id: str, item_id: str, context: Any) -> None:
        self.items[thread_id] = [i for i in self.items.get(thread_id, []) if i.id != item_id]

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: Any
    ) -> Page[ThreadMetadata]:
        threads = list(self.threads.values())
        return Page(data=threads[:limit], has_more=len(threads) > limit)

    async def save_attachment(self, attachment: Attachment, context: Any) -> None:
        raise NotImplementedError

    async def load_attachment(self, attachment_id: str, context: Any) -> Attachment:
        raise NotImplementedError

    async def delete_attachment(self, attachment_id: str, context: Any) -> None:
        raise NotImplementedError


client = AsyncOpenAI(base_url=os.environ["BENCH_PROVIDER_URL"], api_key="baseline")
assistant_agent = Agent[AgentContext](
    name="Assistant",
    instructions="You are a helpful assistant in a chat app. Answer concisely.",
    model=OpenAIResponsesModel(model="fake-model", openai_client=client),
)


class MyChatKitServer(ChatKitServer[MyRequestContext]):
    async def respond(
        self,
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: MyRequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        items_page = await self.store.load_thread_items(
            thread.id, after=None, limit=20, order="desc", context=context
        )
        items = list(reversed(items_page.data))
        input_items = await simple_to_agent_input(items)
        agent_context = AgentContext(thread=thread, store=self.store, request_context=context)
        result = Runner.run_streamed(assistant_agent, input_items, context=agent_context)
        async for event in stream_agent_response(agent_context, result):
            yield event


app = FastAPI()
store = DictStore()
server = MyChatKitServer(store)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chatkit")
async def chatkit_endpoint(request: Request) -> Response:
    context = MyRequestContext(user_id="abc123")
    result = await server.process(await request.body(), context)
    if isinstance(result, StreamingResult):
        return StreamingResponse(result, media_type="text/event-stream")
    return Response(content=result.json, media_type="application/json")
