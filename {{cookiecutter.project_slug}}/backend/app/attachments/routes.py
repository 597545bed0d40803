"""The attachment endpoints beside ``POST /chatkit``.

* ``GET /chatkit/attachments/policy``: ChatKit's ``composer.attachments`` option.
* ``POST|PUT /chatkit/attachments/{id}/upload``: the bytes (database storage), as the
  multipart field ``file`` or the raw body.
* ``GET /chatkit/attachments/{id}``: the bytes, to their owner only.

Both take the user from the URL's signature when it has one (urls.py: the widget's
upload and ``<img>`` requests carry no bearer token), else from the cookie or token.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from chatkit.store import NotFoundError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.attachments.bodies import MULTIPART_OVERHEAD, is_multipart, multipart_file, raw_body
from app.attachments.policy import AttachmentError
from app.attachments.sniff import kind_of
from app.attachments.urls import SIGNATURE, Action
from app.deps import AttachmentsDep, SettingsDep, request_context
from app.identity import Identity, SessionsDep, VerifierDep, identify
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


def attachment_refused(request: Request, error: Exception) -> Response:
    """For create_app: an AttachmentError raised before a route runs (a bad signed link)."""
    return _refusal(error)


def signed_or_own(action: Action) -> Callable[..., Awaitable[Identity]]:
    """The dependency for ``action``'s route: the user a signed URL was issued to
    (AttachmentError 403 when it is not valid), else the request's own, as every other
    route sees it."""

    async def caller(
        attachment_id: str,
        request: Request,
        service: AttachmentsDep,
        sessions: SessionsDep,
        verifier: VerifierDep,
    ) -> Identity:
        if SIGNATURE in request.query_params:
            if service.urls is None:
                raise AttachmentError(403, "bad_signature", "This server does not sign links.")
            return Identity(service.urls.verify(action, attachment_id, request.query_params))
        return await identify(request, sessions, verifier)

    return caller


UploaderDep = Annotated[Identity, Depends(signed_or_own("upload"))]
DownloaderDep = Annotated[Identity, Depends(signed_or_own("download"))]


@router.get("/chatkit/attachments/policy")
async def attachment_policy(service: AttachmentsDep) -> Response:
    return JSONResponse(service.policy.composer())


@router.api_route("/chatkit/attachments/{attachment_id}/upload", methods=["POST", "PUT"])
async def upload_attachment(
    attachment_id: str,
    request: Request,
    service: AttachmentsDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    identity: UploaderDep,
) -> Response:
    context = request_context(request, identity, settings)
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
    attachment_id: str,
    request: Request,
    service: AttachmentsDep,
    settings: SettingsDep,
    identity: DownloaderDep,
) -> Response:
    context = request_context(request, identity, settings)
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
