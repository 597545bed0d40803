"""The attachment endpoints beside ``POST /chatkit``.

* ``GET /chatkit/attachments/policy``: ChatKit's ``composer.attachments`` option.
* ``POST|PUT /chatkit/attachments/{id}/upload``: the bytes (database storage), as the
  multipart field ``file`` or the raw body.
* ``GET /chatkit/attachments/{id}``: the bytes, to their owner only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from urllib.parse import quote

from chatkit.store import NotFoundError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.attachments.bodies import MULTIPART_OVERHEAD, is_multipart, multipart_file, raw_body
from app.attachments.policy import AttachmentError
from app.attachments.sniff import kind_of
from app.deps import AttachmentsDep, RequestContextDep
from app.identity import IdentityDep, SessionsDep
from app.routes import error_response

logger = logging.getLogger(__name__)
router = APIRouter()

# What a browser may do with a served file: nothing but show it. No inline HTML or SVG
# is ever served (types are sniffed), and the sandbox holds should one slip through.
DOWNLOAD_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _refusal(error: Exception) -> Response:
    if isinstance(error, AttachmentError):
        return error_response(error.status, error.code, error.message)
    if isinstance(error, NotFoundError):
        return error_response(404, "not_found", "No such attachment.")
    logger.exception("attachment request failed")
    return error_response(500, "internal", "The server failed; see its log.")


@router.get("/chatkit/attachments/policy")
async def attachment_policy(service: AttachmentsDep) -> Response:
    return JSONResponse(service.policy.composer())


@router.api_route("/chatkit/attachments/{attachment_id}/upload", methods=["POST", "PUT"])
async def upload_attachment(
    attachment_id: str,
    request: Request,
    service: AttachmentsDep,
    context: RequestContextDep,
    sessions: SessionsDep,
    identity: IdentityDep,
) -> Response:
    multipart = is_multipart(request)
    body: AsyncGenerator[bytes, None] = multipart_file(request) if multipart else raw_body(request)
    try:
        declared = request.headers.get("content-length", "")
        if declared.isdigit():
            # A declared body past the limit is refused before a byte is read.
            service.policy.check_enabled()
            overhead = MULTIPART_OVERHEAD if multipart else 0
            service.policy.check_size(max(1, int(declared) - overhead))
        async with contextlib.aclosing(body):
            attachment = await service.upload(attachment_id, body, context)
        response: Response = Response(
            attachment.model_dump_json(by_alias=True, context={"exclude_metadata": True}),
            media_type="application/json",
        )
    except Exception as error:
        response = _refusal(error)
    sessions.attach(response, identity, request)
    return response


def content_disposition(name: str, inline: bool) -> str:
    if inline:
        return "inline"
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/chatkit/attachments/{attachment_id}")
async def download_attachment(
    attachment_id: str, service: AttachmentsDep, context: RequestContextDep
) -> Response:
    try:
        download = await service.download(attachment_id, context)
    except Exception as error:
        return _refusal(error)
    kind = kind_of(download.content_type)
    image = kind == "image"
    # Images and PDFs as what their bytes are; every text type as plain text.
    media_type = {"text": "text/plain; charset=utf-8", None: "application/octet-stream"}.get(
        kind, download.content_type
    )
    headers = {
        **DOWNLOAD_HEADERS,
        "Content-Disposition": content_disposition(download.attachment.name, image),
        "Content-Length": str(download.size),
    }
    return StreamingResponse(download.chunks, media_type=media_type, headers=headers)
