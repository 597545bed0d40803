"""One log line and the metrics of each model turn (`ChatServer.respond`).

The line holds no message text: a hash of the user id, the thread, the provider and
model, time to first token, duration, tokens in and out, and the outcome.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import openai
from agents.exceptions import AgentsException
from agents.usage import Usage
from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
)

from app.context import RequestContext
from app.observability.metrics import current
from app.providers import ResolvedProvider

logger = logging.getLogger("app.turns")


def user_hash(user_id: str) -> str:
    """Tells a user's turns apart without naming the user."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def error_kind(error: BaseException) -> str:
    """The provider failure's kind, a metric label (a small fixed set)."""
    match error:
        case openai.RateLimitError():
            return "rate_limited"
        case openai.AuthenticationError() | openai.PermissionDeniedError():
            return "auth"
        case openai.NotFoundError():
            return "not_found"
        case openai.APIStatusError() if error.status_code >= 500:
            return "server_error"
        case openai.APIStatusError():
            return "refused"
        case openai.APITimeoutError():
            return "timeout"
        case openai.APIConnectionError():
            return "connection"
        case openai.APIError() | AgentsException() | json.JSONDecodeError():
            return "invalid_reply"
    return "other"


class Turn:
    def __init__(self, user_id: str, thread_id: str, provider: ResolvedProvider) -> None:
        self.metrics = current()
        self.user_id, self.thread_id, self.provider = user_id, thread_id, provider
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.outcome = "cancelled"  # unless it completes or fails: the client went away
        self.error: str | None = None
        self.usage: Usage | None = None
        self.model = provider.model_name
        self.metrics.active_streams.inc()

    def saw(self, event: ThreadStreamEvent) -> None:
        if (
            self.first_token is None
            and isinstance(event, ThreadItemUpdatedEvent)
            and isinstance(event.update, AssistantMessageContentPartTextDelta)
        ):
            self.first_token = time.perf_counter() - self.started

    def failed(self, error: Exception) -> None:
        self.outcome = "error"
        # respond() raises the user-facing error from the provider's own.
        self.error = error_kind(error.__cause__ or error)
        self.metrics.provider_errors.labels(kind=self.error).inc()

    def end(self) -> None:
        duration = time.perf_counter() - self.started
        m = self.metrics
        m.active_streams.dec()
        m.turns.labels(outcome=self.outcome).inc()
        m.turn_duration.observe(duration)
        if self.first_token is not None:
            m.time_to_first_token.observe(self.first_token)
        tokens_in = self.usage.input_tokens if self.usage else 0
        tokens_out = self.usage.output_tokens if self.usage else 0
        m.tokens.labels(direction="input").inc(tokens_in)
        m.tokens.labels(direction="output").inc(tokens_out)
        fields: dict[str, Any] = {
            "user": user_hash(self.user_id),
            "thread": self.thread_id,
            "provider": self.provider.provider.name,
            "model": self.model,
            "ttft_ms": None if self.first_token is None else round(self.first_token * 1000),
            "duration_ms": round(duration * 1000),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "outcome": self.outcome,
        }
        if self.error:
            fields["error"] = self.error
        logger.info("turn", extra={"fields": fields})


_turn: ContextVar[Turn | None] = ContextVar("turn", default=None)


def note_usage(usage: Usage) -> None:
    """The run's token usage, for the turn being observed (respond calls this)."""
    turn = _turn.get()
    if turn is not None:
        turn.usage = usage


def note_model(name: str) -> None:
    """The model the turn runs: MODEL_NAME, or the one of MODEL_CHOICES it picked."""
    turn = _turn.get()
    if turn is not None:
        turn.model = name


class _Server(Protocol):
    provider: ResolvedProvider


S = TypeVar("S", bound=_Server)
Respond = Callable[
    [S, ThreadMetadata, UserMessageItem | None, RequestContext], AsyncIterator[ThreadStreamEvent]
]


def observed_turn(respond: Respond[S]) -> Respond[S]:
    """Wrap `respond`: time it, see its first text, count its outcome, log its line."""

    @functools.wraps(respond)
    async def observed(
        server: S,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        turn = Turn(context.user_id, thread.id, server.provider)
        _turn.set(turn)  # the request's own task: respond's note_usage() finds it
        try:
            async for event in respond(server, thread, input_user_message, context):
                turn.saw(event)
                yield event
            turn.outcome = "ok"
        except Exception as error:
            turn.failed(error)
            raise
        finally:
            turn.end()

    return observed
