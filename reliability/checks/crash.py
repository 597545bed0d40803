"""5. Crash durability: kill -9 the backend in the middle of streams, then restart it.

Each round completes some turns, starts slow streams (in one or several threads), and
sends SIGKILL once they are underway: mid-reply, or just after the user's message was
stored. The backend is restarted on the same database. Every completed turn must still
be there word for word, the interrupted messages too, no half-written item may appear,
the database must pass its integrity check, and each thread must continue with its whole
history reaching the model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.harness import (
    COOKIE,
    Backend,
    Browser,
    Project,
    assistant_texts,
    temporary,
    user_input,
    user_texts,
)
from reliability.suite import Row, Suite

CHECK = "5. Crash durability (kill -9 mid-stream)"
HIDDEN_NOTE = "Hidden context for the agent"
FILLER = " This reply is long and slow so that the backend can be killed in the middle." * 6
COMPLETED_PER_ROUND = 2


@dataclass
class Conversation:
    browser: Browser
    thread_id: str = ""
    users: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # completed turns' reply texts


@dataclass
class InFlight:
    conversation: Conversation
    text: str
    mode: str  # "mid-reply" or "after the message was stored"
    underway: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    deltas: int = 0


def _slow_reply(default_reply: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda record: default_reply(record) + FILLER


def _stream(suite: Suite, url: str, flight: InFlight) -> None:
    conversation = flight.conversation
    payload = json.dumps(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": conversation.thread_id, "input": user_input(flight.text)},
        }
    )
    body = bytearray()
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.cookies.set(COOKIE, conversation.browser.cookie or "")
            with client.stream("POST", "/chatkit", content=payload) as response:
                for chunk in response.iter_raw():
                    body.extend(chunk)
                    flight.deltas = body.count(b'"thread.item.updated"')
                    stored = b'"type":"user_message"' in body
                    if (flight.mode == "mid-reply" and flight.deltas >= 3) or (
                        flight.mode != "mid-reply" and stored
                    ):
                        flight.underway.set()
                flight.finished = True
                suite.recorder.record(response.status_code, response.headers, bytes(body), "kill")
    except httpx.HTTPError:
        pass  # the backend died under it: expected
    finally:
        flight.underway.set()


def _turn(conversation: Conversation, text: str) -> str:
    browser = conversation.browser
    if not conversation.thread_id:
        turn = browser.create_thread(text)
        if turn.status == 200 and not turn.errors:
            conversation.thread_id = turn.thread_id
    else:
        turn = browser.send(conversation.thread_id, text)
    conversation.users.append(text)
    if turn.status != 200 or turn.errors or not turn.reply_text:
        return f"{text}: HTTP {turn.status} {turn.errors}"
    conversation.replies.append(turn.reply_text)
    return ""


def _check_thread(conversation: Conversation) -> str:
    items = conversation.browser.items(conversation.thread_id)
    if user_texts(items) != conversation.users:
        return f"user messages {user_texts(items)} != {conversation.users}"
    replies = assistant_texts(items)
    if replies != conversation.replies:
        return f"{len(replies)} replies stored, {len(conversation.replies)} completed"
    ids = [item["id"] for item in items]
    if len(ids) != len(set(ids)):
        return "duplicated item ids"
    return ""


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    rounds = suite.sizes.crash_rounds
    fake = suite.fake
    fake.reset()
    backend: Backend = suite.running(project, "crash")
    database = backend.database
    conversations: list[Conversation] = []
    kills = interrupted = continued = integrity_ok = 0
    completed_expected = completed_found = kept = half_written = 0
    with temporary(fake, delay_seconds=0):
        try:
            for round_number in range(rounds):
                in_flight = 1 if round_number < 2 else 4
                mode = "after the message was stored" if round_number % 2 else "mid-reply"
                while len(conversations) < in_flight:
                    conversations.append(Conversation(suite.browser(backend)))
                for conversation in conversations:
                    conversation.browser.use(backend.url)
                # Completed turns first (fast).
                fake.delay_seconds = 0
                fake.reply = None
                for conversation in conversations[:in_flight]:
                    for k in range(COMPLETED_PER_ROUND):
                        problem = _turn(conversation, f"round {round_number} turn {k}")
                        if problem:
                            failures.append(problem)
                # Then slow streams, killed once underway.
                fake.delay_seconds = 0.05
                fake.reply = _slow_reply(suite.fake_module.default_reply)
                flights = [
                    InFlight(conversation, f"round {round_number} killed", mode)
                    for conversation in conversations[:in_flight]
                ]
                workers = [
                    threading.Thread(target=_stream, args=(suite, backend.url, flight), daemon=True)
                    for flight in flights
                ]
                for worker in workers:
                    worker.start()
                for flight in flights:
                    flight.underway.wait(timeout=30)
                backend.kill9()
                kills += 1
                for worker in workers:
                    worker.join(timeout=30)
                for flight in flights:
                    if flight.finished:
                        failures.append(f"round {round_number}: a stream ended before the kill")
                    flight.conversation.users.append(flight.text)
                    interrupted += 1
                # Restart on the same database.
                fake.delay_seconds = 0
                fake.reply = None
                backend.start()
                if database.integrity() == "ok":
                    integrity_ok += 1
                else:
                    failures.append(f"round {round_number}: integrity check {database.integrity()}")
                for conversation in conversations[:in_flight]:
                    conversation.browser.use(backend.url)
                    problem = _check_thread(conversation)
                    if problem:
                        failures.append(f"round {round_number} after the restart: {problem}")
                    text = f"round {round_number} after the restart"
                    problem = _turn(conversation, text)
                    seen = [
                        t
                        for role, t in fake.requests[-1].messages_text()
                        if role == "user" and not t.startswith(HIDDEN_NOTE)
                    ]
                    if problem or seen != conversation.users:
                        failures.append(
                            f"round {round_number}: the thread did not continue: "
                            f"{problem or f'the model saw {seen}'}"
                        )
                    else:
                        continued += 1
            # The final state of every thread, after all the kills.
            for conversation in conversations:
                stored = conversation.browser.items(conversation.thread_id)
                replies = assistant_texts(stored)
                completed_expected += len(conversation.replies)
                completed_found += sum(
                    1 for a, b in zip(replies, conversation.replies, strict=False) if a == b
                )
                if len(replies) != len(conversation.replies):
                    failures.append(
                        f"{len(replies)} replies stored, {len(conversation.replies)} completed"
                    )
                users = user_texts(stored)
                kept += sum(1 for text in users if "killed" in text)
                half_written += sum(1 for text in replies if not text.strip())
        finally:
            backend.stop()
            for conversation in conversations:
                conversation.browser.close()
    if half_written:
        failures.append(f"{half_written} empty replies were stored")
    modes = ["mid-reply", "after the message was stored"][: min(rounds, 2)]
    figures = [
        f"{kills} kill -9 ({', '.join(modes)}), {interrupted} streams interrupted, "
        f"{kills} restarts on the same database",
        f"completed turns expected {completed_expected}, found word for word {completed_found}; "
        f"interrupted messages kept {kept}/{interrupted}; half-written items: {half_written}",
        f"threads continued with their whole history: {continued}/{interrupted}; "
        f"integrity check ok: {integrity_ok}/{kills}",
    ]
    metrics = {
        "kills": kills,
        "completed expected": completed_expected,
        "completed found": completed_found,
        "interrupted": interrupted,
        "interrupted kept": kept,
        "half-written": half_written,
        "continued": continued,
        "integrity ok": integrity_ok,
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
