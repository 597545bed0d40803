"""HTTP routes: `POST /chatkit` hands the raw body to the ChatKit server."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from chatkit.errors import ErrorCode
from chatkit.server import StreamingResult
from chatkit.store import NotFoundError
from chatkit.types import ErrorEvent
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from app.attachments.policy import AttachmentError
from app.context import RequestContext
from app.deps import ChatServerDep, RequestContextDep, SettingsDep, StoreDep
from app.identity import IdentityDep, SessionsDep
from app.limits.turns import LimitExceeded
from app.model_choice import ModelNotAllowed
from app.server import ChatServer

logger = logging.getLogger(__name__)
router = APIRouter()

# Proxies (nginx, Next.js, CDNs) must pass events through as they are produced.
STREAM_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


class RequestTooLarge(Exception):
    pass


def error_response(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (even without Content-Length)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise RequestTooLarge
    return bytes(body)


def to_http_error(error: Exception) -> JSONResponse | None:
    """The 4xx answer for a request the client got wrong; None for a server fault."""
    match error:
        case LimitExceeded():
            return error.refusal.response()
        case AttachmentError():
            return error_response(error.status, error.code, error.message)
        case ValidationError():
            problems = error.errors(include_url=False, include_input=False, include_context=False)
            if any(problem["type"] == "json_invalid" for problem in problems):
                return error_response(400, "invalid_json", "The body is not valid JSON.")
            return error_response(
                422,
                "invalid_request",
                "The body is not a ChatKit request this server understands.",
                detail=problems[:10],
            )
        case NotFoundError():
            return error_response(404, "not_found", "No such thread, item or attachment.")
        case ModelNotAllowed():
            return error_response(400, "model_not_allowed", str(error), allowed=error.allowed)
        case NotImplementedError():
            return error_response(400, "unsupported", str(error) or "Not supported.")
        case ValueError():
            return error_response(400, "invalid_request", str(error)[:300])
    return None


def error_event(error: Exception) -> bytes:
    """The SSE `error` event that ends a stream which failed after it started."""
    if isinstance(error, NotFoundError):
        event = ErrorEvent(code="custom", message="No such thread or item.", allow_retry=False)
    else:
        event = ErrorEvent(code=ErrorCode.STREAM_ERROR, allow_retry=True)
    return b"data: " + event.model_dump_json(exclude_none=True).encode() + b"\n\n"


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    try:
        async for chunk in rest:
            yield chunk
    except Exception as error:
        # The 200 and the first events are out: end the stream with an error event
        # instead of tearing the connection ("Exception in ASGI application").
        logger.warning("stream failed after it started: %s", type(error).__name__)
        yield error_event(error)


async def _respond(server: ChatServer, body: bytes, context: RequestContext) -> Response:
    result = await server.process(body, context)
    if not isinstance(result, StreamingResult):
        return Response(content=result.json, media_type="application/json")
    # Pull the first event before answering: a request that fails before it (an
    # unknown thread, say) gets an HTTP error instead of a torn 200 stream. A new
    # thread's `thread.created` waits for the next event (its message, saved before the
    # model is called): a message refused while it is saved, e.g. its attachment taken
    # by a racing message meanwhile, is an HTTP error too, and its empty thread goes.
    events = aiter(result)
    head: list[bytes] = []
    try:
        while not head or created_thread_id(head[-1]):
            head.append(await anext(events))
    except StopAsyncIteration:
        pass
    except Exception:
        for event in head:
            if thread_id := created_thread_id(event):
                await _delete_quietly(server, thread_id, context)
        raise
    return StreamingResponse(
        _prepend(b"".join(head), events), media_type="text/event-stream", headers=STREAM_HEADERS
    )


_CREATED = b'data: {"type":"thread.created",'


def created_thread_id(event: bytes) -> str | None:
    """The thread id of a `thread.created` event; None for any other event."""
    if not event.startswith(_CREATED):
        return None
    thread_id: str = json.loads(event[len(b"data: ") :])["thread"]["id"]
    return thread_id


async def _delete_quietly(server: ChatServer, thread_id: str, context: RequestContext) -> None:
    try:
        await server.store.delete_thread(thread_id, context)
    except Exception as error:  # the request's own error is the one to report
        logger.warning("could not delete the refused new thread: %s", type(error).__name__)


@router.post("/chatkit")
async def chatkit_endpoint(
    request: Request,
    server: ChatServerDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    identity: IdentityDep,
    context: RequestContextDep,
) -> Response:
    limit = settings.max_request_bytes
    try:
        body = await read_body(request, limit)
        # The limits run first inside (ChatServer.check_request): a refused turn is
        # stored nowhere and starts no stream.
        response = await _respond(server, body, context)
    except RequestTooLarge:
        response = error_response(413, "too_large", f"The body is over {limit} bytes.")
    except Exception as error:
        client_error = to_http_error(error)
        if client_error is None:
            logger.exception("request failed")
            client_error = error_response(500, "internal", "The server failed; see its log.")
        response = client_error
    sessions.attach(response, identity, request)
    return response


@router.get("/chatkit/models")
async def chatkit_models(server: ChatServerDep) -> Response:
    """The composer's model picker (MODEL_CHOICES); an empty list: no picker. The same
    for every caller, so it needs no session: the page reads it before it signs in."""
    models = server.models.listing() if server.models is not None else []
    return JSONResponse({"models": models})


@router.get("/health")
async def health(store: StoreDep) -> Response:
    try:
        await store.ping()
    except Exception as error:
        logger.warning("health check: store unreachable: %s", type(error).__name__)
        return error_response(503, "store_unreachable", "The store does not answer.")
    return JSONResponse({"status": "ok"})
