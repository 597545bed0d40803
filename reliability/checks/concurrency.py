"""4. Concurrency: many conversations of several turns each, all at once.

The conversations belong to a handful of browsers (several threads per user). Every turn
must stream a reply that quotes its own message and saw exactly the earlier turns of its
own thread (the fake provider's reply says how many messages it saw). Afterwards the
API and the database itself must hold exactly the expected items: none lost, none
duplicated, every thread's items in order, and no "database is locked" in the log.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections import Counter
from typing import Any

from reliability.harness import AsyncBrowser, Browser, Project, user_input
from reliability.suite import Row, Suite

CHECK = "4. Concurrent conversations"
THREADS_PER_USER = 5
SEEN = re.compile(r'you said "(.*)" \(I can see (\d+) earlier messages\)')


def _text(item: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in item["content"])


async def _conversation(
    suite: Suite, url: str, cookie: str, index: int, turns: int, latencies: list[float]
) -> tuple[str | None, list[str]]:
    problems: list[str] = []
    browser = AsyncBrowser(url, suite.recorder)
    browser.set_session(cookie)
    thread_id: str | None = None
    try:
        for turn_number in range(turns):
            text = f"conversation {index} turn {turn_number}"
            began = time.monotonic()
            if thread_id is None:
                turn = await browser.stream("threads.create", input=user_input(text))
            else:
                turn = await browser.stream(
                    "threads.add_user_message", thread_id=thread_id, input=user_input(text)
                )
            latencies.append(time.monotonic() - began)
            if turn.status != 200 or turn.errors or turn.broken:
                problems.append(f"{text}: HTTP {turn.status} {turn.errors} {turn.broken}")
                continue
            if thread_id is None:
                thread_id = turn.thread_id
            match = SEEN.search(turn.reply_text)
            if not match or match.group(1) != text or int(match.group(2)) != 2 * turn_number:
                problems.append(f"{text}: the reply was {turn.reply_text!r}")
    finally:
        await browser.aclose()
    return thread_id, problems


async def _run_all(
    suite: Suite, url: str, cookies: list[str], conversations: int, turns: int
) -> tuple[list[str | None], list[str], list[float], float]:
    latencies: list[float] = []
    began = time.monotonic()
    results = await asyncio.gather(
        *(
            _conversation(suite, url, cookies[i // THREADS_PER_USER], i, turns, latencies)
            for i in range(conversations)
        )
    )
    elapsed = time.monotonic() - began
    thread_ids = [thread_id for thread_id, _ in results]
    problems = [problem for _, found in results for problem in found]
    return thread_ids, problems, latencies, elapsed


async def _verify(
    suite: Suite, url: str, cookies: list[str], thread_ids: list[str | None], turns: int
) -> tuple[list[str], int]:
    problems: list[str] = []
    seen_ids: Counter[str] = Counter()
    api_items = 0
    for index, thread_id in enumerate(thread_ids):
        if thread_id is None:
            problems.append(f"conversation {index} has no thread")
            continue
        browser = AsyncBrowser(url, suite.recorder)
        browser.set_session(cookies[index // THREADS_PER_USER])
        try:
            items = await browser.items(thread_id)
        finally:
            await browser.aclose()
        api_items += len(items)
        seen_ids.update(item["id"] for item in items)
        kinds = [item["type"] for item in items]
        if kinds != ["user_message", "assistant_message"] * turns:
            problems.append(f"conversation {index}: items {kinds}")
            continue
        users = [_text(item) for item in items[::2]]
        if users != [f"conversation {index} turn {t}" for t in range(turns)]:
            problems.append(f"conversation {index}: out of order: {users}")
        for t, reply in enumerate(items[1::2]):
            match = SEEN.search(_text(reply))
            if not match or match.group(1) != users[t] or int(match.group(2)) != 2 * t:
                problems.append(f"conversation {index}: reply {t} is {_text(reply)!r}")
                break
    duplicated = [item_id for item_id, n in seen_ids.items() if n > 1]
    if duplicated:
        problems.append(f"{len(duplicated)} item ids appear more than once: {duplicated[:3]}")
    return problems, api_items


async def _user_cookies(suite: Suite, url: str, users: int) -> list[str]:
    cookies = []
    for _ in range(users):
        browser = AsyncBrowser(url, suite.recorder)
        try:
            reply = await browser.request("threads.list", limit=1)
            if reply.status != 200:
                raise AssertionError(f"threads.list: HTTP {reply.status}")
            cookies.append(browser.cookie or "")
        finally:
            await browser.aclose()
    return cookies


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    conversations, turns = suite.sizes.conversations, suite.sizes.turns
    users = -(-conversations // THREADS_PER_USER)
    failures: list[str] = []
    fake = suite.fake
    fake.reset()
    backend = suite.running(project, "main")
    database = backend.database
    log_start = len(backend.log_text())
    url = backend.url
    cookies = asyncio.run(_user_cookies(suite, url, users))
    thread_ids, problems, latencies, elapsed = asyncio.run(
        _run_all(suite, url, cookies, conversations, turns)
    )
    failures += problems[:10]
    if len(problems) > 10:
        failures.append(f"... and {len(problems) - 10} more failed turns")
    verify_problems, api_items = asyncio.run(_verify(suite, url, cookies, thread_ids, turns))
    failures += verify_problems[:10]
    # Each user sees exactly their own threads.
    listed_ok = 0
    for user, cookie in enumerate(cookies):
        with Browser(url, suite.recorder) as browser:
            browser.set_session(cookie)
            listed = sorted(thread["id"] for thread in browser.threads())
        mine = sorted(t for i, t in enumerate(thread_ids) if i // THREADS_PER_USER == user and t)
        if listed == mine:
            listed_ok += 1
        else:
            failures.append(f"user {user} lists {len(listed)} threads, owns {len(mine)}")
    alive = backend.alive()
    known = [t for t in thread_ids if t]
    stored = database.items_of(known)
    per_thread: dict[str, list[str]] = {}
    for thread_id, _item_id, kind in stored:
        per_thread.setdefault(thread_id, []).append(kind)
    stored_ids = Counter(item_id for _, item_id, _ in stored)
    expected_items = conversations * turns * 2
    if len(stored) != expected_items:
        failures.append(f"the database holds {len(stored)} items, expected {expected_items}")
    if any(n > 1 for n in stored_ids.values()):
        failures.append("the database holds duplicated item ids")
    out_of_order = [
        t
        for t, kinds in per_thread.items()
        if kinds != ["user_message", "assistant_message"] * turns
    ]
    if out_of_order:
        failures.append(f"{len(out_of_order)} threads are out of order in the database")
    locked = backend.log_text()[log_start:].lower().count("database is locked")
    if locked:
        failures.append(f'"database is locked" appears {locked} times in the log')
    if not alive:
        failures.append("the backend died")
    p50 = statistics.median(latencies) if latencies else 0.0
    p95 = (
        statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 20 else max(latencies or [0])
    )
    figures = [
        f"{conversations} conversations x {turns} turns at once ({users} users), "
        f"{len(latencies)} turns in {elapsed:.1f} s (p50 {p50:.2f} s, p95 {p95:.2f} s)",
        f"failed turns: {len(problems)}; replies that saw the wrong history: "
        f"{sum('reply was' in p for p in problems)}",
        f"items expected {expected_items}, listed by the API {api_items}, stored in the "
        f"database {len(stored)}; duplicated: {sum(n > 1 for n in stored_ids.values())}; "
        f"threads out of order: {len(out_of_order)}",
        f"users listing exactly their own threads: {listed_ok}/{users}; "
        f'"database is locked": {locked}',
    ]
    metrics = {
        "turns": len(latencies),
        "failed turns": len(problems),
        "items expected": expected_items,
        "items listed": api_items,
        "items stored": len(stored),
        "duplicated": sum(n > 1 for n in stored_ids.values()),
        "out of order": len(out_of_order),
        "database is locked": locked,
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
