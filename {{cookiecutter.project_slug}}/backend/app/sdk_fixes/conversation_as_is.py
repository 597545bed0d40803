"""The OpenAI client every provider shares, sending the conversation as it is.

Upstream (openai 3.57): before a request goes out, the openai client walks each
parameter through its type annotations, to rename aliased keys and format dates. The
conversation (``input`` of the Responses API, ``messages`` of Chat Completions) has
neither, yet the walk tries every member of a union of some 25 item types on every
item. Sent through ``extra_body``, which the client merges into the JSON body
unchanged, the conversation skips it; the canaries check that the bodies are identical
and that the walk has nothing to do on these types. No upstream issue found.

Cost: about 0.3 ms of CPU per history item, 17 ms per turn at HISTORY_LIMIT=50 (the
openai client's request building timed with and without this, on a 50-item history);
3.4 ms of server CPU per turn in 5-turn conversations, 20 at once.
"""

from __future__ import annotations

import functools
from functools import cached_property
from typing import TYPE_CHECKING, Any

from openai import AsyncOpenAI, omit

if TYPE_CHECKING:
    from openai.resources.chat import AsyncChat
    from openai.resources.responses import AsyncResponses


def conversation_as_is(params: dict[str, Any], field: str, placeholder: Any) -> dict[str, Any]:
    """`params` with `field` moved into `extra_body`, when it is a list of plain dicts.

    Anything else (a string, model objects) takes the client's usual path.
    """
    value = params.get(field)
    if not isinstance(value, list) or not all(type(item) is dict for item in value):
        return params
    extra_body = {**(params.get("extra_body") or {}), field: value}
    return {**params, field: placeholder, "extra_body": extra_body}


@functools.cache
def _resources() -> tuple[type[AsyncResponses], type[AsyncChat]]:
    """The client's resources with the shortcut, defined on first use.

    Imported then, as the openai client imports its own: these modules take about a
    tenth of a second to import, which the app's start would pay otherwise.
    """
    from openai.resources.chat import AsyncChat
    from openai.resources.chat.completions import AsyncCompletions
    from openai.resources.responses import AsyncResponses

    class Responses(AsyncResponses):
        async def create(self, **params: Any) -> Any:
            return await super().create(**conversation_as_is(params, "input", omit))

    class Completions(AsyncCompletions):
        async def create(self, **params: Any) -> Any:
            # `messages` is required: an empty list stands in, and extra_body replaces it.
            return await super().create(**conversation_as_is(params, "messages", []))

    class Chat(AsyncChat):
        @cached_property
        def completions(self) -> AsyncCompletions:
            return Completions(self._client)

    return Responses, Chat


class ProviderClient(AsyncOpenAI):
    """AsyncOpenAI, but the conversation skips the request-building walk (see above)."""

    @cached_property
    def responses(self) -> AsyncResponses:
        return _resources()[0](self)

    @cached_property
    def chat(self) -> AsyncChat:
        return _resources()[1](self)
