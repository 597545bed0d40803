"""A loopback fake OpenAI-compatible LLM server: a test double that speaks the wire format.

It serves real HTTP on 127.0.0.1 (uvicorn, in a background thread with its own event
loop) and answers in the shapes api.openai.com sends (checked against the ``openai``
package's pydantic types), so the real ``openai`` client and the OpenAI Agents SDK run
against it unmodified:

* ``POST /v1/chat/completions``: ``data: {chat.completion.chunk}`` SSE lines ending with
  ``data: [DONE]``, or one ``chat.completion`` JSON when ``stream`` is false.
* ``POST /v1/responses``: the Responses SSE sequence (``event:`` + ``data:`` lines,
  ``response.created`` ... ``response.completed``, a ``sequence_number`` on every event),
  or one ``response`` JSON when ``stream`` is false.
* ``GET /v1/models``.

Replies are deterministic and show what the model saw, e.g.
``Reply #2: you said "hi" (I can see 2 earlier messages)``: ``#n`` counts model calls
(faulted ones included) and the count is of the conversation items before the last
user message, system/developer messages excluded. Set ``fake.reply`` to a string or to a
``callable(RecordedRequest) -> str`` to answer something else (it runs on the server
thread). When the request offers tools and the last user message is
``/tool NAME {"json": "args"}``, the fake calls tool NAME with those arguments; the
default reply to the follow-up request quotes the tool output.

Scripted turns. ``fake.script(step, ...)`` queues what the next model calls do, one step
per call that is not faulted; when the queue is empty the reply rules above apply again.
A step is ``say(text, reasoning=...)``, ``call(NAME, **arguments)`` (a function call, on
both API styles) or a ``callable(RecordedRequest) -> Step | str`` that decides on the
request it sees (e.g. a call whose arguments come from the last tool output). Reasoning
summaries go out on the Responses API only, and only when the request asks for them
(``reasoning.summary``), as a ``reasoning`` output item before the answer, as OpenAI
sends them.

Usage in tests (works from sync and async tests alike)::

    with FakeProvider() as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
        assert ("user", "hi") in fake.requests[-1].messages_text()

By hand: ``python -m tests.fake_provider --port 8089`` prints the base URL to point
``LLM_BASE_URL`` at (any API key works).

Faults, and the SDK's own retries. ``fake.fail_next(Fault.X, times=n)`` applies fault X to
the next n model calls (``fail_always`` until ``clear_faults()``). Every HTTP attempt is one
recorded request and consumes one fault. The ``openai`` client itself retries connection
errors, timeouts, 408/409/429 and 5xx (``max_retries=2`` by default, so up to 3 attempts per
call; ``Retry-After`` up to 120 s is honoured, otherwise exponential backoff from 0.5 s).
So with default clients ``fail_next(Fault.HTTP_500, times=2)`` ends in a normal reply
("Reply #3"), and only ``times=3`` surfaces ``openai.InternalServerError``. Use
``max_retries=0`` to see every fault as an exception. 401 is never retried, and
``CUT_STREAM`` and ``INVALID_CHUNK`` strike after the 200 headers, which the client never
retries. The Agents SDK adds no retries of its own unless ``ModelSettings(retry=...)`` asks
for them. ``CUT_STREAM`` makes uvicorn log "ASGI callable returned without completing
response." (that is how an ASGI app drops a connection).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import enum
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import uvicorn

Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send: TypeAlias = Callable[[MutableMapping[str, Any]], Awaitable[None]]
JSON: TypeAlias = dict[str, Any]

MODEL_ID = "fake-model"
_MODEL_PATHS = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}
_NOT_JSON = b"{this is not json"


class Fault(enum.Enum):
    """What to break; the comment names what a client with ``max_retries=0`` raises."""

    HTTP_401 = "http_401"  # openai.AuthenticationError (code ``invalid_api_key``)
    HTTP_500 = "http_500"  # openai.InternalServerError
    RATE_LIMIT = "rate_limit"  # openai.RateLimitError; sends ``Retry-After: retry_after``
    SLOW_FIRST_BYTE = "slow_first_byte"  # sleeps ``seconds`` first: openai.APITimeoutError
    CUT_STREAM = "cut_stream"  # some deltas, then hangs up: openai.APIConnectionError
    INVALID_CHUNK = "invalid_chunk"  # a ``data:`` line that is not JSON: json.JSONDecodeError


@dataclass
class _FaultPlan:
    fault: Fault
    remaining: int | None  # None: until clear_faults()
    retry_after: float
    seconds: float


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it."""

    number: int  # 1-based count of model calls; 0 for other endpoints
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None
    fault: Fault | None = None  # the fault this request was answered with

    @property
    def json(self) -> JSON:
        return self.body if isinstance(self.body, dict) else {}

    @property
    def api(self) -> str | None:
        """``"chat"``, ``"responses"`` or None (not a model call)."""
        return _MODEL_PATHS.get(self.path)

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def messages_text(self) -> list[tuple[str, str]]:
        """The conversation as ``(role, text)`` pairs, the same for both API styles.

        Roles: system, developer, user, assistant, ``tool_call`` (text ``NAME ARGS``) and
        ``tool`` (the tool output). Responses ``instructions`` count as a system message.
        """
        body = self.json
        if self.api == "chat":
            return list(_chat_items(body.get("messages") or []))
        items: list[tuple[str, str]] = []
        if body.get("instructions"):
            items.append(("system", _text_of(body["instructions"])))
        conversation = body.get("input")
        if isinstance(conversation, str):
            items.append(("user", conversation))
        else:
            items.extend(_responses_items(conversation or []))
        return items

    def last_user_text(self) -> str:
        return next((text for role, text in reversed(self.messages_text()) if role == "user"), "")

    def last_tool_output(self) -> str | None:
        """The newest tool output in the conversation, None when there is none."""
        return next((text for role, text in reversed(self.messages_text()) if role == "tool"), None)

    @property
    def reasoning_summary(self) -> str | None:
        """What the request asks of reasoning summaries (Responses ``reasoning.summary``)."""
        reasoning = self.json.get("reasoning")
        summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
        return str(summary) if summary else None

    def content_parts(self) -> list[JSON]:
        """Every content part of every message, in order, as the API style spells it."""
        body = self.json
        messages = body.get("messages") if self.api == "chat" else body.get("input")
        parts: list[JSON] = []
        for message in messages if isinstance(messages, list) else []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                parts.extend(part for part in content if isinstance(part, dict))
        return parts

    def images(self) -> list[tuple[str, bytes]]:
        """The images sent, as (MIME type, decoded bytes): Responses ``input_image`` or
        Chat Completions ``image_url`` parts with data URLs."""
        found = []
        for part in self.content_parts():
            if part.get("type") == "input_image":
                found.append(decode_data_url(str(part.get("image_url"))))
            elif part.get("type") == "image_url":
                found.append(decode_data_url(str((part.get("image_url") or {}).get("url"))))
        return found

    def files(self) -> list[tuple[str, str, bytes]]:
        """The files sent, as (filename, MIME type, decoded bytes): Responses
        ``input_file`` or Chat Completions ``file`` parts with ``file_data``."""
        found = []
        for part in self.content_parts():
            file = part if part.get("type") == "input_file" else None
            if part.get("type") == "file":
                file = part.get("file") or {}
            if file is not None:
                mime_type, data = decode_data_url(str(file.get("file_data")))
                found.append((str(file.get("filename") or ""), mime_type, data))
        return found

    def texts(self) -> list[str]:
        """The text of every text part (``input_text``, ``text``, ``output_text``)."""
        return [
            str(part["text"])
            for part in self.content_parts()
            if part.get("type") in ("input_text", "text", "output_text") and "text" in part
        ]


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:image/png;base64,...`` -> (``image/png``, the bytes); ValueError otherwise."""
    head, comma, data = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64") or not comma:
        raise ValueError(f"not a base64 data URL: {url[:60]!r}")
    return head[len("data:") : -len(";base64")], base64.b64decode(data, validate=True)


ReplyFn: TypeAlias = Callable[[RecordedRequest], str]


@dataclass(frozen=True)
class Step:
    """What the model does on one call: ``text`` (None: the default reply) or a call to
    ``tool`` with ``arguments``, after ``reasoning`` summaries (Responses API only)."""

    text: str | None = None
    tool: str | None = None
    arguments: JSON = field(default_factory=dict)
    reasoning: tuple[str, ...] = ()


StepFn: TypeAlias = Callable[[RecordedRequest], "Step | str"]


def say(text: str | None = None, *, reasoning: Iterable[str] = ()) -> Step:
    """A text answer (None: the default reply), after the given reasoning summaries."""
    return Step(text=text, reasoning=tuple(reasoning))


def call(tool: str, *, reasoning: Iterable[str] = (), **arguments: Any) -> Step:
    """A call to the function tool ``tool`` with these arguments."""
    return Step(tool=tool, arguments=arguments, reasoning=tuple(reasoning))


def default_reply(record: RecordedRequest) -> str:
    """``Reply #n: you said "..." (I can see k earlier messages)``, plus the images and
    files the request carried, or quote a tool output."""
    items = [(role, text) for role, text in record.messages_text() if role not in _SYSTEM]
    if items and items[-1][0] == "tool":
        return f'Reply #{record.number}: the tool returned "{items[-1][1]}"'
    users = [index for index, (role, _) in enumerate(items) if role == "user"]
    seen = users[-1] if users else len(items)
    said = items[seen][1] if users else ""
    reply = f'Reply #{record.number}: you said "{said}" (I can see {seen} earlier messages)'
    # What arrived beside the text, so a reply shows the model got the bytes.
    received = [f"image {kind} of {len(data)} bytes" for kind, data in record.images()]
    received += [f"file {name} of {len(data)} bytes" for name, _, data in record.files()]
    return reply + (" and " + ", ".join(received) if received else "")


def refused_base_url() -> str:
    """A base URL on a loopback port where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class FakeProvider:
    """The fake server. ``with FakeProvider() as fake:`` starts it and stops it.

    ``reply``, ``chunk_size`` (characters per streamed delta) and ``delay_seconds`` (pause
    between deltas) are plain attributes; change them at any time.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: str | ReplyFn | None = None,
        chunk_size: int = 8,
        delay_seconds: float = 0.0,
        access_log: bool = False,
    ) -> None:
        self.reply = reply
        self.chunk_size = chunk_size
        self.delay_seconds = delay_seconds
        self._settings = (reply, chunk_size, delay_seconds)
        self.host = host
        self.port = port
        self._access_log = access_log
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_FaultPlan] = []
        self._script: list[Step | str | StepFn] = []
        self._model_calls = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def fail_next(
        self, fault: Fault, *, times: int = 1, retry_after: float = 1.0, seconds: float = 5.0
    ) -> None:
        """Answer the next ``times`` model calls with ``fault`` (queued after earlier faults).

        ``retry_after`` is the RATE_LIMIT ``Retry-After`` header, ``seconds`` the
        SLOW_FIRST_BYTE delay.
        """
        with self._lock:
            self._faults.append(_FaultPlan(fault, times, retry_after, seconds))

    def fail_always(self, fault: Fault, *, retry_after: float = 1.0, seconds: float = 5.0) -> None:
        """Answer every model call with ``fault`` until ``clear_faults()``."""
        with self._lock:
            self._faults.append(_FaultPlan(fault, None, retry_after, seconds))

    def script(self, *steps: Step | str | StepFn) -> None:
        """Queue what the next model calls do, one step per call (after earlier steps)."""
        with self._lock:
            self._script.extend(steps)

    @property
    def script_left(self) -> int:
        """How many scripted steps no model call has taken yet."""
        with self._lock:
            return len(self._script)

    refused_base_url = staticmethod(refused_base_url)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Back to as-constructed: no requests, no faults, numbering restarts at #1.

        Starting and stopping costs ~0.2 s (uvicorn polls for shutdown), so a test suite
        can share one session-scoped fake and call ``reset()`` before each test.
        """
        self.reply, self.chunk_size, self.delay_seconds = self._settings
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._script.clear()
            self._model_calls = 0

    def start(self) -> FakeProvider:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            interface="asgi3",
            ws="none",
            log_config=None,  # leave the process's logging configuration alone
            access_log=self._access_log,
            timeout_graceful_shutdown=1,
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-provider-{self.port}",
            daemon=True,  # a fake someone forgot to stop must not hang the test run
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                self.stop()
                raise RuntimeError("fake provider failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():  # a handler ignored the graceful-shutdown timeout
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the ASGI application, running on the server thread -------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method, path = scope["method"], scope["path"]
        if method == "POST" and path in _MODEL_PATHS:
            await self._model_call(RecordedRequest(0, method, path, headers, body), receive, send)
            return
        with self._lock:
            self._requests.append(RecordedRequest(0, method, path, headers, body))
        if method == "GET" and path == "/v1/models":
            model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "fake-provider"}
            await _send_json(send, 200, {"object": "list", "data": [model]})
        else:
            await _send_json(send, 404, _error(f"Unknown URL: {method} {path}", "not_found"))

    async def _model_call(self, request: RecordedRequest, receive: Receive, send: Send) -> None:
        with self._lock:
            self._model_calls += 1
            plan = self._take_fault()
            record = replace(request, number=self._model_calls, fault=plan.fault if plan else None)
            self._requests.append(record)
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await self._respond(record, plan, send, disconnected)
        finally:
            disconnected.cancel()

    def _take_fault(self) -> _FaultPlan | None:
        if not self._faults:
            return None
        plan = self._faults[0]
        if plan.remaining is not None:
            plan.remaining -= 1
            if plan.remaining <= 0:
                self._faults.pop(0)
        return plan

    async def _respond(
        self,
        record: RecordedRequest,
        plan: _FaultPlan | None,
        send: Send,
        disconnected: asyncio.Future[None],
    ) -> None:
        fault = plan.fault if plan else None
        headers = {"x-request-id": f"req_fake{record.number}"}
        if plan and fault is Fault.SLOW_FIRST_BYTE and not await _pause(plan.seconds, disconnected):
            return
        if not isinstance(record.body, dict):
            error = _error("The request body must be a JSON object.", "invalid_request_error")
            await _send_json(send, 400, error, headers)
            return
        if plan and plan.fault in _ERROR_FAULTS:
            status, error = _ERROR_FAULTS[plan.fault]
            if plan.fault is Fault.RATE_LIMIT:
                headers["retry-after"] = f"{plan.retry_after:g}"
            await _send_json(send, status, error, headers)
            return

        answer = self._answer(record)
        if not record.stream:
            payload = (
                _chat_completion(answer)
                if record.api == "chat"
                else _response(answer, record.json, "completed")
            )
            data = _NOT_JSON if fault is Fault.INVALID_CHUNK else _dumps(payload).encode()
            await _start(
                send, 200, "application/json", {**headers, "content-length": str(len(data))}
            )
            if fault is Fault.CUT_STREAM:
                await _body(send, data[: len(data) // 2])
                return  # uvicorn closes the connection of an unfinished response (and logs it)
            await _body(send, data, more=False)
            return

        head, deltas, tail = (
            _chat_stream(answer, record.json)
            if record.api == "chat"
            else _responses_stream(answer, record.json)
        )
        await _start(send, 200, "text/event-stream; charset=utf-8", headers)
        for frame in head:
            await _body(send, frame)
        for index, frame in enumerate(deltas):
            if index and not await _pause(self.delay_seconds, disconnected):
                return
            await _body(send, frame)
            if fault is Fault.INVALID_CHUNK and index == 0:
                await _body(send, b"data: " + _NOT_JSON + b"\n\n")
            if fault is Fault.CUT_STREAM and index == len(deltas) // 2:
                return  # hang up without the closing events
        for frame in tail:
            await _body(send, frame)
        await _body(send, b"", more=False)

    def _answer(self, record: RecordedRequest) -> _Answer:
        items = record.messages_text()
        answer = _Answer(
            number=record.number,
            model=str(record.json.get("model") or MODEL_ID),
            chunk_size=max(1, self.chunk_size),
            input_tokens=sum(len(text.split()) for _, text in items),
        )
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
        if scripted is not None:
            step = scripted(record) if callable(scripted) else scripted
            step = Step(text=step) if isinstance(step, str) else step
            reasoning = (
                step.reasoning if record.api == "responses" and record.reasoning_summary else ()
            )
            answer = replace(answer, reasoning=reasoning)
            if step.tool is not None:
                return replace(answer, tool_name=step.tool, text=_dumps(step.arguments))
            return replace(answer, text=default_reply(record) if step.text is None else step.text)
        last_role, last_text = items[-1] if items else ("", "")
        if record.json.get("tools") and last_role == "user" and last_text.startswith("/tool "):
            name, _, arguments = last_text.removeprefix("/tool ").strip().partition(" ")
            return replace(answer, tool_name=name, text=arguments or "{}")
        reply = self.reply
        text = reply(record) if callable(reply) else reply
        return replace(answer, text=default_reply(record) if text is None else text)


# --- request normalization ------------------------------------------------------------

_SYSTEM = ("system", "developer")


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of text/input_text/output_text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text", p.get("refusal", "")) for p in content if isinstance(p, dict))
        return "".join(str(part) for part in parts)
    return str(content)


def _chat_items(messages: Iterable[Any]) -> Iterable[tuple[str, str]]:
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, text = str(message.get("role")), _text_of(message.get("content"))
        calls = message.get("tool_calls") or []
        if text or not calls:
            yield role, text
        for call in calls:
            function = call.get("function") or {}
            yield "tool_call", f"{function.get('name')} {function.get('arguments')}"


def _responses_items(items: Iterable[Any]) -> Iterable[tuple[str, str]]:
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            yield str(item.get("role")), _text_of(item.get("content"))
        elif kind == "function_call":
            yield "tool_call", f"{item.get('name')} {item.get('arguments')}"
        elif kind == "function_call_output":
            yield "tool", _text_of(item.get("output"))
        else:
            yield str(kind), _text_of(item.get("content"))


# --- response rendering ---------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """What to send back: ``text``, or a call to ``tool_name`` with arguments ``text``."""

    number: int
    model: str
    chunk_size: int
    input_tokens: int
    text: str = ""
    tool_name: str | None = None
    reasoning: tuple[str, ...] = ()  # summary parts, sent before the answer (Responses)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def pieces(self) -> list[str]:
        size = self.chunk_size
        return [self.text[i : i + size] for i in range(0, len(self.text), size)] or [""]

    @property
    def output_tokens(self) -> int:
        return len(self.text.split())

    @property
    def call_id(self) -> str:
        return f"call_fake{self.number}"

    @property
    def item_id(self) -> str:
        return f"fc_fake{self.number}" if self.tool_name else f"msg_fake{self.number}"

    @property
    def reasoning_id(self) -> str:
        return f"rs_fake{self.number}"

    @property
    def answer_index(self) -> int:
        """The answer's output_index: after the reasoning item when there is one."""
        return 1 if self.reasoning else 0


Frames: TypeAlias = tuple[list[bytes], list[bytes], list[bytes]]  # head, deltas, tail


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _error(message: str, kind: str, code: str | None = None) -> JSON:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


_ERROR_FAULTS = {
    Fault.HTTP_401: (
        401,
        _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    ),
    Fault.RATE_LIMIT: (
        429,
        _error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    ),
    Fault.HTTP_500: (
        500,
        _error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
    ),
}


def _chat_usage(answer: _Answer) -> JSON:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _chat_completion(answer: _Answer) -> JSON:
    message: JSON = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.tool_name:
        function = {"name": answer.tool_name, "arguments": answer.text}
        call = {"id": answer.call_id, "type": "function", "function": function}
        message.update(content=None, tool_calls=[call])
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": "tool_calls" if answer.tool_name else "stop",
    }
    return {
        "id": f"chatcmpl-fake{answer.number}",
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": None,
        "choices": [choice],
        "usage": _chat_usage(answer),
    }


def _chat_stream(answer: _Answer, body: JSON) -> Frames:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: JSON = {
        "id": f"chatcmpl-fake{answer.number}",
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": None,
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: JSON, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return f"data: {_dumps({**base, 'choices': [choice]})}\n\n".encode()

    if answer.tool_name:
        function = {"name": answer.tool_name, "arguments": ""}
        call = {"index": 0, "id": answer.call_id, "type": "function", "function": function}
        head = [chunk({"role": "assistant", "content": None, "tool_calls": [call]})]
        deltas = [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in answer.pieces
        ]
        tail = [chunk({}, "tool_calls")]
    else:
        head = [chunk({"role": "assistant", "content": "", "refusal": None})]
        deltas = [chunk({"content": piece}) for piece in answer.pieces]
        tail = [chunk({}, "stop")]
    if include_usage:
        tail.append(
            f"data: {_dumps({**base, 'choices': [], 'usage': _chat_usage(answer)})}\n\n".encode()
        )
    tail.append(b"data: [DONE]\n\n")
    return head, deltas, tail


def _output_item(answer: _Answer, status: str, text: str) -> JSON:
    if answer.tool_name:
        return {
            "id": answer.item_id,
            "type": "function_call",
            "status": status,
            "call_id": answer.call_id,
            "name": answer.tool_name,
            "arguments": text,
        }
    content = [_output_text(text)] if status == "completed" else []
    return {
        "id": answer.item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _reasoning_item(answer: _Answer, status: str) -> JSON:
    done = status == "completed"
    summary = [{"type": "summary_text", "text": text} for text in answer.reasoning] if done else []
    return {"id": answer.reasoning_id, "type": "reasoning", "summary": summary, "status": status}


def _outputs(answer: _Answer) -> list[JSON]:
    reasoning = [_reasoning_item(answer, "completed")] if answer.reasoning else []
    return [*reasoning, _output_item(answer, "completed", answer.text)]


def _output_text(text: str) -> JSON:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _response(answer: _Answer, body: JSON, status: str) -> JSON:
    completed = status == "completed"
    parallel = body.get("parallel_tool_calls")
    usage = {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }
    return {
        "id": f"resp_fake{answer.number}",
        "object": "response",
        "created_at": answer.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": answer.model,
        "output": _outputs(answer) if completed else [],
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage if completed else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def _responses_stream(answer: _Answer, body: JSON) -> Frames:
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        data = {"type": kind, **fields, "sequence_number": next(sequence)}
        return f"event: {kind}\ndata: {_dumps(data)}\n\n".encode()

    index = answer.answer_index
    where = {"item_id": answer.item_id, "output_index": index}
    head = [
        event("response.created", response=_response(answer, body, "in_progress")),
        event("response.in_progress", response=_response(answer, body, "in_progress")),
    ]
    if answer.reasoning:
        thought = {"item_id": answer.reasoning_id, "output_index": 0}
        head.append(
            event(
                "response.output_item.added",
                output_index=0,
                item=_reasoning_item(answer, "in_progress"),
            )
        )
        for number, text in enumerate(answer.reasoning):
            part = {**thought, "summary_index": number}
            head += [
                event(
                    "response.reasoning_summary_part.added",
                    **part,
                    part={"type": "summary_text", "text": ""},
                ),
                event("response.reasoning_summary_text.delta", **part, delta=text),
                event("response.reasoning_summary_text.done", **part, text=text),
                event(
                    "response.reasoning_summary_part.done",
                    **part,
                    part={"type": "summary_text", "text": text},
                ),
            ]
        head.append(
            event(
                "response.output_item.done",
                output_index=0,
                item=_reasoning_item(answer, "completed"),
            )
        )
    head.append(
        event(
            "response.output_item.added",
            output_index=index,
            item=_output_item(answer, "in_progress", ""),
        )
    )
    if answer.tool_name:
        deltas = [
            event("response.function_call_arguments.delta", **where, delta=piece)
            for piece in answer.pieces
        ]
        tail = [event("response.function_call_arguments.done", **where, arguments=answer.text)]
    else:
        part = {**where, "content_index": 0}
        head.append(event("response.content_part.added", **part, part=_output_text("")))
        deltas = [
            event("response.output_text.delta", **part, delta=piece, logprobs=[])
            for piece in answer.pieces
        ]
        tail = [
            event("response.output_text.done", **part, text=answer.text, logprobs=[]),
            event("response.content_part.done", **part, part=_output_text(answer.text)),
        ]
    tail += [
        event(
            "response.output_item.done",
            output_index=index,
            item=_output_item(answer, "completed", answer.text),
        ),
        event("response.completed", response=_response(answer, body, "completed")),
    ]
    return head, deltas, tail


# --- ASGI plumbing --------------------------------------------------------------------


async def _start(send: Send, status: int, content_type: str, headers: dict[str, str]) -> None:
    pairs = [(b"content-type", content_type.encode())]
    pairs += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})


async def _body(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _send_json(
    send: Send, status: int, payload: JSON, headers: dict[str, str] | None = None
) -> None:
    data = _dumps(payload).encode()
    await _start(
        send, status, "application/json", {**(headers or {}), "content-length": str(len(data))}
    )
    await _body(send, data, more=False)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pause(seconds: float, disconnected: asyncio.Future[None]) -> bool:
    """Sleep, waking early if the client hangs up; False means stop sending."""
    if seconds > 0:
        await asyncio.wait([disconnected], timeout=seconds)
    return not disconnected.done()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_provider",
        description="Serve a fake OpenAI-compatible API on loopback; prints its base URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("--chunk-size", type=int, default=8, help="characters per delta")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between deltas")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fake = FakeProvider(
        host=args.host,
        port=args.port,
        chunk_size=args.chunk_size,
        delay_seconds=args.delay,
        access_log=True,
    )
    with fake, contextlib.suppress(KeyboardInterrupt):
        print(fake.base_url, flush=True)
        logging.info("Set LLM_BASE_URL=%s (any API key works). Ctrl-C stops.", fake.base_url)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
