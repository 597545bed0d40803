"""ProviderClient sends the conversation through extra_body: the same request, less CPU.

When `test_upstream_the_walk_has_nothing_to_do` fails after an openai upgrade, a
conversation field gained an alias or a format: the shortcut in
app/sdk_fixes/conversation_as_is.py would send it untransformed. Remove the shortcut
(build_client can return AsyncOpenAI) or handle it. The other canary of that module is in
test_sdk_fixes.py.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai._utils import PropertyInfo  # private: only this canary looks at it
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseInputParam

from app.sdk_fixes.conversation_as_is import ProviderClient
from tests.fake_provider import FakeProvider

RESPONSES_CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "type": "message", "content": [{"type": "input_text", "text": "hi"}]},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What time is it?"},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "current_time",
        "arguments": "{}",
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "12:00 UTC"},
]
CHAT_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "current_time", "arguments": "{}"},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "12:00 UTC"},
]
TOOLS = [
    {
        "type": "function",
        "name": "current_time",
        "description": "The current time.",
        "parameters": {"type": "object", "properties": {}, "required": []},
        "strict": False,
    }
]


async def send(client: AsyncOpenAI, api: str) -> None:
    if api == "responses":
        stream: Any = await client.responses.create(
            model="m",
            input=RESPONSES_CONVERSATION,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
    else:
        stream = await client.chat.completions.create(
            model="m",
            messages=CHAT_CONVERSATION,  # type: ignore[arg-type]
            stream=True,
            extra_body={"user": "u-1"},  # a caller's own extra_body is kept
        )
    async for _ in stream:
        pass


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_the_provider_receives_the_same_request(api: str) -> None:
    with FakeProvider() as fake:
        for client_class in (AsyncOpenAI, ProviderClient):
            client = client_class(base_url=fake.base_url, api_key="test-key", max_retries=0)
            await send(client, api)
            await client.close()
        plain, ours = fake.requests[-2:]
    assert ours.path == plain.path
    assert ours.body == plain.body
    field = "input" if api == "responses" else "messages"
    assert ours.body[field] == (RESPONSES_CONVERSATION if api == "responses" else CHAT_CONVERSATION)


@pytest.mark.parametrize(
    "params",
    [
        {"input": "just a string"},
        {"input": [object()]},
        {"input": None},
    ],
)
def test_anything_but_plain_dicts_takes_the_usual_path(params: dict[str, Any]) -> None:
    from app.sdk_fixes.conversation_as_is import conversation_as_is

    assert conversation_as_is(params, "input", None) is params


def transforming_fields(annotation: Any, where: str, seen: set[int]) -> list[str]:
    """Fields under `annotation` that the openai client's walk would change."""
    if id(annotation) in seen:
        return []
    seen.add(id(annotation))
    found: list[str] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, PropertyInfo) and (extra.alias or extra.format):
                found.append(where)
        return found + transforming_fields(base, where, seen)
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        for name, hint in hints.items():
            found += transforming_fields(hint, f"{annotation.__name__}.{name}", seen)
        return found
    if origin in (typing.Union, types.UnionType, list, Iterable, Sequence, dict) or (
        origin is not None and str(origin).startswith("typing.")
    ):
        for argument in typing.get_args(annotation):
            found += transforming_fields(argument, where, seen)
    return found


@pytest.mark.parametrize(
    ("annotation", "least_types"),
    [(ResponseInputParam, 20), (Iterable[ChatCompletionMessageParam], 6)],
    ids=["responses input", "chat messages"],
)
def test_upstream_the_walk_has_nothing_to_do(annotation: Any, least_types: int) -> None:
    """app/sdk_fixes/conversation_as_is.py: no conversation field is renamed or formatted."""
    seen: set[int] = set()
    assert transforming_fields(annotation, "conversation", seen) == []
    assert len(seen) > least_types, "the walk must reach the item types"


class _Renamed(typing.TypedDict):
    file_name: typing.Annotated[str, PropertyInfo(alias="fileName")]


class _Wrapper(typing.TypedDict, total=False):
    files: typing.Required[Iterable[_Renamed | str]]


def test_the_walk_check_finds_an_alias() -> None:
    assert transforming_fields(list[_Wrapper], "conversation", set()) == ["_Renamed.file_name"]
