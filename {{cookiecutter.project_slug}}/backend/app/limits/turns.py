"""Per-request checks before the ChatKit server runs: message size, rates, budget,
and the uploads of attachments.

The checks take the request as the server parsed it (``ChatServer.check_request``), and
all of a request's counters go to the store in one round trip (``add_to_counters``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from agents import ModelSettings
from chatkit.types import (
    AttachmentsCreateReq,
    ChatKitReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
)
from fastapi.responses import JSONResponse

from app.config import Settings
from app.observability.metrics import record_rate_limited
from app.stores import AppStore
from app.stores.base import CounterAdd

logger = logging.getLogger(__name__)

MINUTE, HOUR, DAY = 60, 3600, 86_400

# Requests that run the model: each one is a turn.
TURN_TYPES = frozenset(
    {
        "threads.create",
        "threads.add_user_message",
        "threads.add_client_tool_output",
        "threads.retry_after_item",
        "threads.custom_action",
    }
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused before anything is stored or streamed."""

    status: int
    code: str
    message: str
    retry_after: int | None = None
    # Which limit: its label on the chatkit_rate_limited metric.
    kind: str = ""

    def response(self) -> JSONResponse:
        body: dict[str, object] = {"code": self.code, "message": self.message, "limit": self.kind}
        headers = {}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse({"error": body}, status_code=self.status, headers=headers)


class LimitExceeded(Exception):
    """Raised by ``ChatServer.check_request``; the endpoint answers ``refusal.response()``."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def message_chars(request: ChatKitReq) -> int | None:
    """The characters of a message request's text; None for other requests."""
    if not isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
        return None
    return sum(len(getattr(part, "text", "") or "") for part in request.params.input.content)


@dataclass(frozen=True, slots=True)
class _Window:
    """One counter a request adds to: which limit, and its window."""

    kind: str
    key: str
    seconds: int
    limit: int
    amount: int = 1


def _expiry(start: int, seconds: int) -> datetime:
    return datetime.fromtimestamp(start + seconds, UTC)


class Limits:
    """The limits of the settings, counted in ``store``. ``clock`` is Unix seconds."""

    def __init__(
        self, settings: Settings, store: AppStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._swept_minute = -1

    def model_settings(self) -> ModelSettings:
        # include_usage: Chat Completions streams report usage only when asked.
        return ModelSettings(max_tokens=self.settings.max_output_tokens, include_usage=True)

    async def check(self, request: ChatKitReq, user_id: str, ip: str) -> Refusal | None:
        refusal = await self._check(request, user_id, ip)
        if refusal is not None:
            record_rate_limited(refusal.kind)
        return refusal

    def windows(self, request: ChatKitReq, user_id: str, ip: str) -> list[_Window]:
        """The counters ``request`` adds to, in the order they are checked."""
        s = self.settings
        if isinstance(request, AttachmentsCreateReq):
            bytes_limit = s.rate_limit_user_upload_bytes_per_day
            # Past the limit is past it: a declared 10**20 bytes must not overflow the
            # database's 64-bit counter.
            declared = min(max(0, request.params.size), bytes_limit + 1)
            return [
                _Window(
                    "user_uploads",
                    f"uploads:user:{user_id}",
                    MINUTE,
                    s.rate_limit_user_uploads_per_minute,
                ),
                _Window(
                    "upload_bytes",
                    f"upload-bytes-day:user:{user_id}",
                    DAY,
                    bytes_limit,
                    declared,
                ),
            ]
        if request.type not in TURN_TYPES:
            return []
        return [
            _Window("ip_turns", f"turns:ip:{ip}", MINUTE, s.rate_limit_ip_turns_per_minute),
            _Window(
                "user_turns", f"turns:user:{user_id}", MINUTE, s.rate_limit_user_turns_per_minute
            ),
            _Window(
                "daily_turns", f"turns-day:user:{user_id}", DAY, s.rate_limit_user_turns_per_day
            ),
        ] + (
            [_Window("ip_threads", f"threads:ip:{ip}", HOUR, s.rate_limit_ip_threads_per_hour)]
            if isinstance(request, ThreadsCreateReq)
            else []
        )

    async def _check(self, request: ChatKitReq, user_id: str, ip: str) -> Refusal | None:
        s = self.settings
        chars = message_chars(request)
        if chars is not None and chars > s.max_message_chars:
            return Refusal(
                413,
                "message_too_long",
                f"The message has {chars} characters; the most is {s.max_message_chars}. "
                "Shorten it and send it again.",
                kind="message_chars",
            )
        windows = [w for w in self.windows(request, user_id, ip) if w.limit > 0]
        budget = s.token_budget_user_per_day if request.type in TURN_TYPES else None
        if not windows and budget is None:
            return None
        now = self.clock()
        self._sweep(now)
        additions = [self._addition(w, now, w.amount) for w in windows]
        day = int(now // DAY * DAY)
        if budget is not None:  # read with the rest: an addition of 0
            additions += [
                CounterAdd(f"{key}:user:{user_id}", day, 0, _expiry(day, DAY))
                for key in ("tokens-in", "tokens-out")
            ]
        counts = await self.store.add_to_counters(additions)
        refusal = None
        for window, count in zip(windows, counts, strict=False):
            if count > window.limit:
                start = int(now // window.seconds * window.seconds)
                refusal = _rate_limited(window.kind, start + window.seconds - now)
                break
        if refusal is None and budget is not None and sum(counts[len(windows) :]) >= budget:
            refusal = Refusal(
                429,
                "token_budget",
                "Today's token budget is used up; it renews at midnight UTC.",
                math.ceil(day + DAY - now),
                kind="token_budget",
            )
        if refusal is not None and windows:
            # A refused request counts in no window: a flood past the minute's limit does
            # not use up the day's, one user's does not use up their IP's, and a refused
            # large file leaves the day's bytes for a smaller one. Each accepted request
            # still saw its own count at most the limit, so no window lets more through.
            await self.store.add_to_counters([self._addition(w, now, -w.amount) for w in windows])
        return refusal

    @staticmethod
    def _addition(window: _Window, now: float, amount: int) -> CounterAdd:
        start = int(now // window.seconds * window.seconds)
        return CounterAdd(window.key, start, amount, _expiry(start, window.seconds))

    async def usage_today(self, user_id: str) -> tuple[int, int]:
        """Input and output tokens the user's turns used this UTC day."""
        start = int(self.clock() // DAY * DAY)
        tokens_in = await self.store.read_counter(f"tokens-in:user:{user_id}", start)
        tokens_out = await self.store.read_counter(f"tokens-out:user:{user_id}", start)
        return tokens_in, tokens_out

    async def record_usage(self, user_id: str, input_tokens: int, output_tokens: int) -> None:
        start = int(self.clock() // DAY * DAY)
        additions = [
            CounterAdd(f"{key}:user:{user_id}", start, amount, _expiry(start, DAY))
            for key, amount in (("tokens-in", input_tokens), ("tokens-out", output_tokens))
            if amount > 0
        ]
        if additions:
            await self.store.add_to_counters(additions)

    def _sweep(self, now: float) -> None:
        # Once a minute per process, off the request's path: expired windows are never
        # read again.
        minute = int(now // MINUTE)
        if minute == self._swept_minute:
            return
        self._swept_minute = minute
        task = asyncio.ensure_future(self._delete_expired(now))
        _sweeps.add(task)
        task.add_done_callback(_sweeps.discard)

    async def _delete_expired(self, now: float) -> None:
        try:
            await self.store.delete_expired_counters(datetime.fromtimestamp(now, UTC))
        except Exception as error:
            logger.warning("could not delete expired counters: %s", type(error).__name__)


_sweeps: set[asyncio.Future[None]] = set()


# An upload limit's refusal: what happened, and what to do again.
_REFUSED_UPLOADS = {
    "user_uploads": ("Too many attachments", "attach it"),
    "upload_bytes": ("Today's attachment bytes are used up", "attach it"),
}


def _rate_limited(kind: str, seconds_left: float) -> Refusal:
    wait = max(1, math.ceil(seconds_left))
    what, again = _REFUSED_UPLOADS.get(kind, ("Too many messages", "send it"))
    message = f"{what}; wait {wait} seconds and {again} again."
    return Refusal(429, "rate_limited", message, wait, kind)
