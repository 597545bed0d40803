"""The relay floor: a bare ASGI app that streams the fake provider's reply, nothing in between.

`POST /relay` with `{"message": "..."}` sends that one message to the provider's
Responses endpoint with `stream: true` (httpx) and relays its SSE events as they arrive.
No framework, no store, no history, no model of the events: what it costs to put an LLM
stream on HTTP at all. BENCH_PROVIDER_URL is the provider's base URL.
"""

from __future__ import annotations

import json
import os
import ssl
from typing import Any

import httpx

PROVIDER_URL = os.environ["BENCH_PROVIDER_URL"]
INSTRUCTIONS = "You are a helpful assistant in a chat app. Answer concisely."
_SSL = ssl.create_default_context()
# One upstream connection per downstream connection: a proxy's natural pairing, and no
# shared pool (httpcore scans a shared pool's every connection on every request, a cost
# that grows with the number of streams in flight).
_clients: dict[Any, httpx.AsyncClient] = {}


def client(downstream: Any) -> httpx.AsyncClient:
    if downstream not in _clients:
        _clients[downstream] = httpx.AsyncClient(
            base_url=PROVIDER_URL,
            headers={"authorization": "Bearer relay"},
            timeout=60,
            verify=_SSL,
        )
    return _clients[downstream]


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for upstream in _clients.values():
                    await upstream.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    message = json.loads(await _read_body(receive))["message"]
    request = {
        "model": "fake-model",
        "instructions": INSTRUCTIONS,
        "input": [{"role": "user", "content": message}],
        "stream": True,
    }
    async with client(scope.get("client")).stream("POST", "/responses", json=request) as upstream:
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status_code,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        event: list[str] = []
        async for line in upstream.aiter_lines():
            if line:
                event.append(line)
                continue
            if event:
                data = ("\n".join(event) + "\n\n").encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
                event = []
    await send({"type": "http.response.body", "body": b"", "more_body": False})
