"""Log setup: LOG_FORMAT=json|text, and this request's id on every line.

    LOG_FORMAT=json  {"time": ..., "level": "INFO", "logger": "app.turns",
                      "message": "turn", "request_id": "...", <the line's fields>}
    LOG_FORMAT=text  INFO app.turns [<request id>]: turn outcome=ok ...

A line's fields are `extra={"fields": {...}}`; the request id comes from the
request-id middleware (request_id.py), "-" outside a request.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app.observability.redact import path_without_query_values

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# Uvicorn configures these itself before the app is built; route them through ours.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_HTTP_CLIENT_LOGGERS = ("httpx", "httpx2")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class AccessQueryValuesRedacted(logging.Filter):
    """Uvicorn's access line (`client - "METHOD path?query HTTP/x" status`) with the
    query's values dropped: a signed attachment link's user id and signature stay out."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], path_without_query_values(args[2]), *args[3:])
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s [%(request_id)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def configure_logging(level: str, log_format: str) -> None:
    """One stderr handler on the root logger, uvicorn's loggers propagating to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessQueryValuesRedacted) for f in access.filters):
        access.addFilter(AccessQueryValuesRedacted())
    # The provider client's HTTP library logs each request at INFO: a second line per
    # turn beside app.turns, which says what matters once. Kept at LOG_LEVEL=DEBUG.
    for name in _HTTP_CLIENT_LOGGERS:
        quiet = logging.WARNING if root.level >= logging.INFO else logging.NOTSET
        logging.getLogger(name).setLevel(quiet)
