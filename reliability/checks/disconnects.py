"""3. Client disconnects: browsers hang up mid-stream, one at a time and all at once.

Measured from outside the uvicorn process: open fds, threads, TCP sockets to the
provider, to PostgreSQL and from clients (psutil), the SQLite files it holds, and its
asyncio task count and connection-pool checkouts (reliability/probe.py's SIGUSR1
snapshot; nothing in the app). The baseline is taken after the same number of complete
concurrent turns, so the pools have their working size. After the disconnects every
figure must come back to the baseline, every thread must be consistent (each user
message once, in order, no empty or duplicated items), and a retry of the interrupted
message and a next message must both work with the history intact.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reliability.harness import (
    Backend,
    Browser,
    Project,
    Resources,
    temporary,
    user_input,
    user_texts,
)
from reliability.suite import Row, Suite

CHECK = "3. Client disconnects mid-stream"
SETTLE_SECONDS = 20
# How chatkit's converter shows the model its hidden "the user cancelled" notes.
HIDDEN_NOTE = "Hidden context for the agent"
FILLER = " Streaming slowly so that the client can hang up in the middle." * 8


def _slow_reply(default_reply: Any) -> Any:
    def reply(record: Any) -> str:
        return str(default_reply(record)) + FILLER

    return reply


def _leaks(baseline: Resources, now: Resources) -> dict[str, tuple[int, int]]:
    """What leaked: name -> (allowed, found).

    Back to the baseline: asyncio tasks, sockets to the provider and from clients, and
    every other fd. The database pool may keep more idle connections after a burst (up
    to its size), so database handles are held to the pool's own books instead: none
    checked out, no more idle than its size, and exactly one PostgreSQL socket per
    pooled connection. SQLite keeps the file descriptor of a closed connection open
    while another connection of the process holds a lock (POSIX locks are per process)
    and reuses it for the next one, so its database-file handles may exceed the pool's
    count, but never the most connections the pool opens at once (size + overflow).
    """
    grown = {
        name: (allowed, found)
        for name, allowed, found in (
            ("asyncio tasks", baseline.tasks, now.tasks),
            ("sockets to the provider", baseline.tcp_to_provider, now.tcp_to_provider),
            ("client sockets", baseline.tcp_from_clients, now.tcp_from_clients),
            ("other fds", baseline.other_fds, now.other_fds),
            ("pool checked out", 0, now.pool_checked_out),
            ("pool idle", max(now.pool_size, 0), now.pool_idle),
        )
        if found > allowed
    }
    pooled = now.pool_idle + now.pool_checked_out
    if now.sqlite_files == 0 and now.tcp_to_postgres != pooled:
        grown["PostgreSQL sockets outside the pool"] = (pooled, now.tcp_to_postgres)
    most = now.pool_size + now.pool_max_overflow
    if now.sqlite_files and now.sqlite_connections > most:
        grown["SQLite database handles"] = (most, now.sqlite_connections)
    return grown


def _settle(backend: Backend, baseline: Resources) -> Resources:
    deadline = time.monotonic() + SETTLE_SECONDS
    now = backend.resources()
    while _leaks(baseline, now) and time.monotonic() < deadline:
        time.sleep(0.25)
        now = backend.resources()
    return now


def _disconnect(
    suite: Suite,
    backend: Backend,
    cookie: str,
    thread_id: str,
    text: str,
    underway: threading.Semaphore | None = None,
    hang_up: threading.Event | None = None,
) -> str:
    """One browser tab that sends a message and hangs up after three deltas.

    With `underway`/`hang_up`, it reports when its stream is flowing and waits for the
    word before hanging up, so that a burst can be measured while all are in flight.
    """
    payload = json.dumps(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input(text)},
        }
    )
    body = bytearray()
    status = 0
    with Browser(backend.url, suite.recorder) as tab:
        tab.set_session(cookie)
        try:
            with tab.http.stream(
                "POST", "/chatkit", content=payload, headers={"content-type": "application/json"}
            ) as response:
                status = response.status_code
                # Not a for loop: leaving it would close the stream, i.e. hang up now.
                chunks = response.iter_raw()
                while body.count(b'"thread.item.updated"') < 3:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    body.extend(chunk)
                if underway is not None:
                    underway.release()
                if hang_up is not None:
                    hang_up.wait(timeout=30)
                suite.recorder.record(status, response.headers, bytes(body), "dropped stream")
        finally:
            if underway is not None and status == 0:
                underway.release()
    deltas = body.count(b'"thread.item.updated"')
    if status != 200 or deltas < 3:
        return f"{text}: the stream did not get going (HTTP {status}, {deltas} deltas)"
    return ""


def _consistency(browser: Browser, thread_id: str, expected_users: list[str]) -> str:
    items = browser.items(thread_id)
    ids = [item["id"] for item in items]
    if len(ids) != len(set(ids)):
        return "duplicated item ids"
    if user_texts(items) != expected_users:
        return f"user messages {user_texts(items)} != {expected_users}"
    for item in items:
        if (
            item["type"] == "assistant_message"
            and not "".join(part.get("text", "") for part in item["content"]).strip()
        ):
            return "an empty assistant message was stored"
    return ""


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    details: dict[str, Any] = {}
    n = suite.sizes.disconnects
    fake = suite.fake
    fake.reset()
    backend = suite.running(project, "main")
    log_start = len(backend.log_text())
    with (
        suite.browser(backend) as browser,
        temporary(
            fake,
            reply=_slow_reply(suite.fake_module.default_reply),
            chunk_size=8,
            delay_seconds=0,
        ),
    ):
        # n threads, then n complete turns at once: the pools reach their working size.
        threads = [browser.create_thread(f"thread {i} first").thread_id for i in range(n)]
        fake.delay_seconds = 0.02
        cookie = browser.cookie or ""
        expected = {thread_id: [f"thread {i} first"] for i, thread_id in enumerate(threads)}

        def complete(index: int) -> str:
            with Browser(backend.url, suite.recorder) as tab:
                tab.set_session(cookie)
                turn = tab.send(threads[index], f"thread {index} warm-up")
            return "" if turn.reply_text and not turn.errors else f"warm-up {index} failed"

        with ThreadPoolExecutor(max_workers=n) as pool:
            failures += [f for f in pool.map(complete, range(n)) if f]
        for index, thread_id in enumerate(threads):
            expected[thread_id].append(f"thread {index} warm-up")
        # And n dropped streams at once: the baseline includes whatever the pools keep
        # after a burst of them, so only growth per disconnect counts as a leak.
        with ThreadPoolExecutor(max_workers=n) as pool:
            failures += [
                f
                for f in pool.map(
                    lambda i: _disconnect(suite, backend, cookie, threads[i], f"thread {i} warm"),
                    range(n),
                )
                if f
            ]
        for index, thread_id in enumerate(threads):
            expected[thread_id].append(f"thread {index} warm")
        time.sleep(0.5)
        baseline = _settle(backend, backend.resources())
        details["baseline"] = baseline.as_dict()
        details["baseline tasks"] = baseline.task_names

        # One at a time, in thread 0.
        for k in range(n):
            text = f"thread 0 dropped {k}"
            failures += [f for f in [_disconnect(suite, backend, cookie, threads[0], text)] if f]
            expected[threads[0]].append(text)
        after_sequential = _settle(backend, baseline)

        # All at once, one per thread; measured while all of them stream.
        underway, hang_up = threading.Semaphore(0), threading.Event()

        def drop(index: int) -> str:
            text = f"thread {index} burst"
            return _disconnect(suite, backend, cookie, threads[index], text, underway, hang_up)

        with ThreadPoolExecutor(max_workers=n) as pool:
            pending = [pool.submit(drop, i) for i in range(n)]
            for _ in range(n):
                underway.acquire(timeout=30)
            peak = backend.resources()
            hang_up.set()
            failures += [f for f in (p.result() for p in pending) if f]
        for index, thread_id in enumerate(threads):
            expected[thread_id].append(f"thread {index} burst")
        after_burst = _settle(backend, baseline)
        details["during the burst"] = peak.as_dict()
        details["after"] = after_burst.as_dict()

        for label, now in (("one at a time", after_sequential), ("all at once", after_burst)):
            grown = _leaks(baseline, now)
            if grown:
                extra = {
                    k: v for k, v in now.task_names.items() if baseline.task_names.get(k, 0) < v
                }
                failures.append(
                    f"{label}: above the baseline after {SETTLE_SECONDS} s: {grown}; tasks: {extra}"
                )
        if peak.tasks <= baseline.tasks:
            failures.append("the probe saw no streams in flight: the measurement has no teeth")

        inconsistent = [
            f"{thread_id}: {problem}"
            for thread_id in threads
            if (problem := _consistency(browser, thread_id, expected[thread_id]))
        ]
        failures += inconsistent

        # The widget's retry button on the interrupted message, then a new message.
        fake.delay_seconds = 0
        last_user = next(
            item for item in reversed(browser.items(threads[1])) if item["type"] == "user_message"
        )
        retry = browser.stream(
            "threads.retry_after_item", thread_id=threads[1], item_id=last_user["id"]
        )
        retried = not retry.errors and bool(retry.reply_text)
        if not retried:
            failures.append(f"retry_after_item failed: {retry.errors or retry.status}")
        after_retry = browser.items(threads[1])
        if (
            after_retry[-1]["type"] != "assistant_message"
            or after_retry[-2]["id"] != last_user["id"]
        ):
            failures.append(
                "after the retry the thread does not end with the message and its reply"
            )
        follow = browser.send(threads[1], "after the retry")
        expected[threads[1]].append("after the retry")
        seen = [
            text
            for role, text in fake.requests[-1].messages_text()
            if role == "user" and not text.startswith(HIDDEN_NOTE)
        ]
        history_ok = not follow.errors and seen == expected[threads[1]]
        if not history_ok:
            failures.append(f"the next message: errors {follow.errors}, model saw {seen}")
        alive = backend.alive()
    if not alive:
        failures.append("the backend died")
    errors = [
        line
        for line in backend.log_text()[log_start:].splitlines()
        if line.startswith(("ERROR", "CRITICAL"))
    ]
    if errors:
        failures.append(f"{len(errors)} ERROR lines in the backend's log, e.g. {errors[:2]}")
    grown_total = _leaks(baseline, after_burst)
    figures = [
        f"{n} disconnects one at a time + {n} at once, each after 3 deltas",
        "baseline → during burst → after: "
        f"tasks {baseline.tasks} → {peak.tasks} → {after_burst.tasks}, "
        f"fds {baseline.fds} → {peak.fds} → {after_burst.fds}, "
        f"provider sockets {baseline.tcp_to_provider} → {peak.tcp_to_provider} → "
        f"{after_burst.tcp_to_provider}",
        f"DB pool after: {after_burst.pool_idle} idle (size {after_burst.pool_size}), "
        f"{after_burst.pool_checked_out} checked out; "
        + (
            f"SQLite file handles {baseline.sqlite_connections} → "
            f"{after_burst.sqlite_connections} (at most {after_burst.pool_size} + "
            f"{after_burst.pool_max_overflow} overflow)"
            if after_burst.sqlite_files
            else f"PostgreSQL sockets {baseline.tcp_to_postgres} → {after_burst.tcp_to_postgres}"
        ),
        f"leaks: {len(grown_total)}; inconsistent threads: {len(inconsistent)}/{n}; "
        f"ERROR lines in the log: {len(errors)}",
        f"retry of the interrupted message: {'ok' if retried else 'FAILED'}; next message with "
        f"history: {'ok' if history_ok else 'FAILED'}",
    ]
    metrics = {
        "disconnects": 2 * n,
        "leaks": len(grown_total) + len(_leaks(baseline, after_sequential)),
        "inconsistent threads": len(inconsistent),
        "error log lines": len(errors),
        "retry ok": int(retried),
        "history ok": int(history_ok),
    }
    return Row(
        CHECK, project.label, figures, failures, time.monotonic() - started, details, metrics
    )


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
