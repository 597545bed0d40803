"""Per-request checks before the ChatKit server runs: message size, rates, budget."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from agents import ModelSettings
from fastapi.responses import JSONResponse
from starlette.requests import Request

from app.config import Settings
from app.observability.metrics import record_rate_limited
from app.stores import AppStore

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
MESSAGE_TYPES = frozenset({"threads.create", "threads.add_user_message"})


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


def client_ip(request: Request) -> str:
    """The socket's peer. uvicorn has already put X-Forwarded-For's client there when
    the peer is in FORWARDED_ALLOW_IPS, and only then."""
    return request.client.host if request.client else "unknown"


def _parse(body: bytes) -> tuple[str, int] | None:
    """The request's type and its message's characters; None when it is not a ChatKit
    request (the server answers those with a 4xx itself)."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than ~1,000
        return None
    if not isinstance(request, dict) or not isinstance(request.get("type"), str):
        return None
    params = request.get("params")
    message = params.get("input") if isinstance(params, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    chars = 0
    for part in content if isinstance(content, list) else []:
        text = part.get("text") if isinstance(part, dict) else None
        chars += len(text) if isinstance(text, str) else 0
    return request["type"], chars


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

    async def check(self, body: bytes, user_id: str, ip: str) -> Refusal | None:
        refusal = await self._check(body, user_id, ip)
        if refusal is not None:
            record_rate_limited(refusal.kind)
        return refusal

    async def _check(self, body: bytes, user_id: str, ip: str) -> Refusal | None:
        parsed = _parse(body)
        if parsed is None or parsed[0] not in TURN_TYPES:
            return None
        kind, chars = parsed
        s = self.settings
        if kind in MESSAGE_TYPES and chars > s.max_message_chars:
            return Refusal(
                413,
                "message_too_long",
                f"The message has {chars} characters; the most is {s.max_message_chars}. "
                "Shorten it and send it again.",
                kind="message_chars",
            )
        now = self.clock()
        await self._sweep(now)
        checks = [
            ("ip_turns", f"turns:ip:{ip}", MINUTE, s.rate_limit_ip_turns_per_minute),
            ("user_turns", f"turns:user:{user_id}", MINUTE, s.rate_limit_user_turns_per_minute),
            ("daily_turns", f"turns-day:user:{user_id}", DAY, s.rate_limit_user_turns_per_day),
        ]
        if kind == "threads.create":
            checks.append(
                ("ip_threads", f"threads:ip:{ip}", HOUR, s.rate_limit_ip_threads_per_hour)
            )
        for limit_kind, key, seconds, limit in checks:
            if limit == 0:
                continue
            start = int(now // seconds * seconds)
            count = await self.store.add_to_counter(key, start, 1, _expiry(start, seconds))
            if count > limit:
                return _rate_limited(limit_kind, start + seconds - now)
        budget = s.token_budget_user_per_day
        if budget is not None and sum(await self.usage_today(user_id)) >= budget:
            return Refusal(
                429,
                "token_budget",
                "Today's token budget is used up; it renews at midnight UTC.",
                math.ceil(int(now // DAY * DAY) + DAY - now),
                kind="token_budget",
            )
        return None

    async def usage_today(self, user_id: str) -> tuple[int, int]:
        """Input and output tokens the user's turns used this UTC day."""
        start = int(self.clock() // DAY * DAY)
        tokens_in = await self.store.read_counter(f"tokens-in:user:{user_id}", start)
        tokens_out = await self.store.read_counter(f"tokens-out:user:{user_id}", start)
        return tokens_in, tokens_out

    async def record_usage(self, user_id: str, input_tokens: int, output_tokens: int) -> None:
        start = int(self.clock() // DAY * DAY)
        for key, amount in (("tokens-in", input_tokens), ("tokens-out", output_tokens)):
            if amount > 0:
                await self.store.add_to_counter(
                    f"{key}:user:{user_id}", start, amount, _expiry(start, DAY)
                )

    async def _sweep(self, now: float) -> None:
        # Once a minute per process: expired windows are never read again.
        minute = int(now // MINUTE)
        if minute == self._swept_minute:
            return
        self._swept_minute = minute
        try:
            await self.store.delete_expired_counters(datetime.fromtimestamp(now, UTC))
        except Exception as error:
            logger.warning("could not delete expired counters: %s", type(error).__name__)


def _rate_limited(kind: str, seconds_left: float) -> Refusal:
    wait = max(1, math.ceil(seconds_left))
    return Refusal(
        429,
        "rate_limited",
        f"Too many messages; wait {wait} seconds and send it again.",
        wait,
        kind,
    )
