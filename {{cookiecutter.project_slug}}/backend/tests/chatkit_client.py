"""A small ChatKit protocol client over real HTTP, as the widget speaks it.

Each instance has its own cookie jar, so two instances are two browsers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Turn:
    """What one streamed request produced."""

    status: int
    events: list[dict[str, Any]] = field(default_factory=list)
    # Seconds from sending the request to each `thread.item.updated` text delta.
    delta_times: list[float] = field(default_factory=list)
    total_seconds: float = 0.0

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("type") == event_type]

    @property
    def thread_id(self) -> str:
        for event in self.events:
            if event["type"] in ("thread.created", "thread.updated"):
                return str(event["thread"]["id"])
            if event["type"] == "thread.item.done":
                return str(event["item"]["thread_id"])
        raise AssertionError(f"no thread in events: {self.events}")

    @property
    def assistant_messages(self) -> list[dict[str, Any]]:
        return [
            event["item"]
            for event in self.of_type("thread.item.done")
            if event["item"]["type"] == "assistant_message"
        ]

    @property
    def reply_text(self) -> str:
        return "".join(
            part["text"] for message in self.assistant_messages for part in message["content"]
        )

    @property
    def delta_item_ids(self) -> set[str]:
        return {
            event["item_id"]
            for event in self.of_type("thread.item.updated")
            if event["update"]["type"] == "assistant_message.content_part.text_delta"
        }

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")


def user_input(text: str, attachments: list[str] | None = None) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments or [],
        "inference_options": {},
    }


class ChatKitClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ChatKitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, payload: dict[str, Any] | bytes | str) -> httpx.Response:
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        return self.http.post(
            "/chatkit", content=body, headers={"content-type": "application/json"}
        )

    def request(self, op: str, **params: Any) -> Any:
        response = self.post({"type": op, "params": params})
        response.raise_for_status()
        return response.json()

    def stream(self, op: str, **params: Any) -> Turn:
        started = time.perf_counter()
        payload = json.dumps({"type": op, "params": params})
        with self.http.stream(
            "POST", "/chatkit", content=payload, headers={"content-type": "application/json"}
        ) as response:
            turn = Turn(status=response.status_code)
            if response.status_code != 200:
                response.read()
                turn.events.append({"type": "http_error", "body": response.text})
                return turn
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[len("data: ") :])
                turn.events.append(event)
                if event["type"] == "thread.item.updated":
                    turn.delta_times.append(time.perf_counter() - started)
        turn.total_seconds = time.perf_counter() - started
        return turn

    def create_thread(self, text: str, attachments: list[str] | None = None) -> Turn:
        return self.stream("threads.create", input=user_input(text, attachments))

    def send(self, thread_id: str, text: str, attachments: list[str] | None = None) -> Turn:
        return self.stream(
            "threads.add_user_message", thread_id=thread_id, input=user_input(text, attachments)
        )

    def create_attachment(self, name: str, mime_type: str, size: int) -> httpx.Response:
        """``attachments.create``; the response, whatever its status."""
        params = {"name": name, "size": size, "mime_type": mime_type}
        return self.post({"type": "attachments.create", "params": params})

    def upload(
        self, descriptor: dict[str, Any], data: bytes, name: str = "file", raw: bool = False
    ) -> httpx.Response:
        """Upload as the widget does: to the descriptor's URL, with its method and headers
        (a presigned S3 PUT goes without the session cookie), multipart unless ``raw``."""
        url, headers = descriptor["url"], descriptor.get("headers") or {}
        if descriptor["method"] == "PUT" and not url.startswith(str(self.http.base_url)):
            return httpx.put(url, content=data, headers=headers, timeout=30)
        if raw:
            return self.http.request(descriptor["method"], url, content=data, headers=headers)
        files = {"file": (name, data, headers.get("Content-Type", "application/octet-stream"))}
        return self.http.request(descriptor["method"], url, files=files, headers=headers)

    def attach(self, name: str, mime_type: str, data: bytes, raw: bool = False) -> dict[str, Any]:
        """Create and upload an attachment; the attachment JSON from ``attachments.create``."""
        created = self.create_attachment(name, mime_type, len(data))
        assert created.status_code == 200, created.text
        attachment: dict[str, Any] = created.json()
        uploaded = self.upload(attachment["upload_descriptor"], data, name, raw=raw)
        assert uploaded.status_code == 200, uploaded.text
        return attachment

    def list_threads(self, limit: int = 20, order: str = "desc", after: str | None = None) -> Any:
        params: dict[str, Any] = {"limit": limit, "order": order}
        if after is not None:
            params["after"] = after
        return self.request("threads.list", **params)

    def list_items(
        self, thread_id: str, limit: int = 20, order: str = "asc", after: str | None = None
    ) -> Any:
        params: dict[str, Any] = {"thread_id": thread_id, "limit": limit, "order": order}
        if after is not None:
            params["after"] = after
        return self.request("items.list", **params)

    def all_items(self, thread_id: str, page_size: int = 7) -> list[dict[str, Any]]:
        """Every item of a thread, walking the pages as the widget does."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = self.list_items(thread_id, limit=page_size, after=after)
            items.extend(page["data"])
            if not page["has_more"]:
                return items
            after = page["after"]
