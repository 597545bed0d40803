"""The upload floor: a bare ASGI app that writes an upload's bytes to the generated
backend's own store, with the store calls its upload route makes and nothing else.

Run from the generated backend's directory (it imports `app.stores`), with
DATABASE_URL set: `uvicorn benchmarks.servers.upload_floor:app`.

* `POST /create?size=N`: an attachment row for the one user, pending (as
  `attachments.create` leaves it); answers its id.
* `POST /upload/<id>`: the raw body, in the stores' 256 KiB chunks: the owner lookup,
  `write_chunk` per chunk and `finish_upload`, as the backend's upload does. No
  sniffing, no limits, no multipart, no session, no FastAPI: what is left is the floor
  any upload to that store pays.
* `GET /health`.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any
from urllib.parse import parse_qs

from app.context import RequestContext
from app.stores import build_store
from chatkit.types import ImageAttachment

CHUNK_BYTES = 256 * 1024
CONTEXT = RequestContext(user_id="bench-user")

store: Any = build_store(os.environ["DATABASE_URL"])


async def _send_json(send: Any, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _create(scope: dict[str, Any], send: Any) -> None:
    attachment_id = f"atc_{uuid.uuid4().hex}"
    attachment = ImageAttachment(
        id=attachment_id,
        name="floor.png",
        mime_type="image/png",
        preview_url=f"http://127.0.0.1/chatkit/attachments/{attachment_id}",
    )
    await store.save_attachment(attachment, CONTEXT)
    query = parse_qs(scope.get("query_string", b"").decode())
    await _send_json(send, 200, {"id": attachment_id, "size": int(query.get("size", ["0"])[0])})


async def _upload(attachment_id: str, receive: Any, send: Any) -> None:
    await store.attachment_upload(attachment_id, CONTEXT)
    attachment = await store.load_attachment(attachment_id, CONTEXT)
    upload_id = uuid.uuid4().hex
    buffer, seq, size, more = bytearray(), 0, 0, True
    while more:
        message = await receive()
        piece = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(piece)
        buffer += piece
        while len(buffer) >= CHUNK_BYTES or (buffer and not more):
            await store.write_chunk(
                attachment_id, upload_id, seq, bytes(buffer[:CHUNK_BYTES]), CONTEXT
            )
            del buffer[:CHUNK_BYTES]
            seq += 1
    done = attachment.model_copy(update={"upload_descriptor": None})
    await store.finish_upload(done, upload_id, size, "image/png", CONTEXT)
    await _send_json(send, 200, {"id": attachment_id, "size": size})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await store.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/health":
        await _send_json(send, 200, {"status": "ok"})
    elif path == "/create":
        await _create(scope, send)
    elif path.startswith("/upload/"):
        await _upload(path.removeprefix("/upload/"), receive, send)
    else:
        await _send_json(send, 404, {"error": "not found"})
