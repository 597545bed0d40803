"""Server actions of widgets: the handler for each action type, found and checked once.

A button whose ``ActionConfig`` has ``handler: "server"`` arrives as
``threads.custom_action`` (streamed) or ``threads.sync_custom_action``; both come here
through ``ChatServer.action`` / ``sync_action``. The table is ``ACTIONS`` in
app/extensions.py. ``check_action`` runs before the SDK does anything with the request,
so a bad action is an HTTP 4xx that changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chatkit.actions import Action
from chatkit.store import Store
from chatkit.types import ThreadCustomActionParams, WidgetItem
from pydantic import BaseModel, ValidationError

from app.context import RequestContext

Payload = TypeVar("Payload", bound=BaseModel)


@dataclass(frozen=True)
class ActionHandler(Generic[Payload]):
    """What a server action does to the widget it came from.

    ``payload``: the model the action's payload must match (otherwise a 400).
    ``update``: the widget item as it should be now; the server saves it in place of
    the old one (same id) and sends it to the page. No model call.
    """

    payload: type[Payload]
    update: Callable[[Payload, WidgetItem], Awaitable[WidgetItem]]

    def parse(self, action: Action[str, Any]) -> Payload:
        try:
            return self.payload.model_validate(action.payload)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: {problem['msg']}"
                for problem in error.errors(include_url=False)[:5]
            )
            raise ValueError(
                f"Action {action.type!r} has a bad payload: {problems}"[:500]
            ) from None

    async def run(self, action: Action[str, Any], sender: WidgetItem) -> WidgetItem:
        updated = await self.update(self.parse(action), sender)
        # In place: the same item, whatever the handler built.
        return updated.model_copy(update={"id": sender.id, "thread_id": sender.thread_id})


Handlers = Mapping[str, ActionHandler[Any]]


def handler_for(handlers: Handlers, action: Action[str, Any]) -> ActionHandler[Any]:
    # chatkit's Action defaults a missing type to a TypeVar object, not a string.
    kind: object = action.type
    if not isinstance(kind, str):
        raise ValueError("The action has no type; send {'type': ..., 'payload': ...}.")
    handler = handlers.get(kind)
    if handler is None:
        known = ", ".join(sorted(handlers)) or "none"
        raise ValueError(
            f"Unknown action type {kind[:80]!r}; this server handles: {known}. "
            "Add a handler to ACTIONS in app/extensions.py."
        )
    return handler


async def check_action(
    handlers: Handlers,
    params: ThreadCustomActionParams,
    store: Store[RequestContext],
    context: RequestContext,
) -> None:
    """Raise unless the action can run: a known type, a valid payload, and a widget item
    of the caller's own thread (NotFoundError, a 404, for anyone else's)."""
    handler_for(handlers, params.action).parse(params.action)
    await store.load_thread(params.thread_id, context)
    if params.item_id is None:
        raise ValueError(f"Action {params.action.type!r} needs item_id: the widget it came from.")
    item = await store.load_item(params.thread_id, params.item_id, context)
    if not isinstance(item, WidgetItem):
        raise ValueError(f"Item {params.item_id} is a {item.type}, not a widget.")


async def run_action(
    handlers: Handlers, action: Action[str, Any], sender: WidgetItem | None
) -> WidgetItem:
    """The sender widget, updated by the action's handler (check_action ran first)."""
    if sender is None:
        raise ValueError(f"Action {action.type!r} needs item_id: the widget it came from.")
    return await handler_for(handlers, action).run(action, sender)
