"""X-Request-ID: the caller's when it is a sane token, else a new one; echoed back.

The id is in every log line of the request (logs.py) and in its turn's line. The app's
metrics are made current here too, for code that counts inside a request.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics as metrics_module
from app.observability.logs import request_id
from app.observability.metrics import Metrics

HEADER = "x-request-id"
# Bounded and log-safe: no spaces, quotes or control characters from outside.
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


def accepted_id(value: str | None) -> str:
    """The caller's id when valid, else a fresh one."""
    if value is not None and _VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware; outermost, so every response and log line carries the id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = [v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.encode()]
        rid = accepted_id(given[0] if len(given) == 1 else None)
        id_token = request_id.set(rid)
        metrics_token = metrics_module.use(self.metrics)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics_module.reset(metrics_token)
            request_id.reset(id_token)
