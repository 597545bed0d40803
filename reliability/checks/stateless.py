"""6. Statelessness: two backend processes on one database, turns alternating between them.

One browser (one cookie jar) talks to process A and process B in turn; both have the
same SESSION_SECRET. The same script also runs against a single process. Expected: one
session cookie for the whole conversation (B accepts A's), every turn sees the whole
history whichever process serves it, both processes list the same threads and items
after every turn, and the final thread equals the single-process one.
"""

from __future__ import annotations

import re
import time
from typing import Any

from reliability.harness import Backend, Browser, Project
from reliability.suite import Row, Suite

CHECK = "6. Statelessness (2 processes, round-robin)"
SEEN = re.compile(r'you said "(.*)" \(I can see (\d+) earlier messages\)')
REPLY_NUMBER = re.compile(r"^Reply #\d+: ")


def _normalized(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, text) per item; the fake's global reply counter is not part of the content."""
    return [
        (
            item["type"],
            REPLY_NUMBER.sub("", "".join(p.get("text", "") for p in item.get("content", []))),
        )
        for item in items
    ]


def _conversation(
    suite: Suite, backends: list[Backend], turns: int
) -> tuple[list[tuple[str, str]], dict[str, int], list[str]]:
    """Run the script, turn i on backends[i % len(backends)]; return the final thread."""
    problems: list[str] = []
    counts = {"cookies issued": 0, "turns with full history": 0, "views agreeing": 0}
    with Browser(backends[0].url, suite.recorder) as browser:
        thread_id = ""
        for t in range(turns):
            serving = backends[t % len(backends)]
            browser.use(serving.url)
            text = f"turn {t} on process {'AB'[t % len(backends)]}"
            turn = browser.create_thread(text) if not thread_id else browser.send(thread_id, text)
            if "set-cookie" in turn.headers:
                counts["cookies issued"] += 1
            if turn.status != 200 or turn.errors:
                problems.append(f"{text}: HTTP {turn.status} {turn.errors}")
                continue
            thread_id = thread_id or turn.thread_id
            match = SEEN.search(turn.reply_text)
            if match and match.group(1) == text and int(match.group(2)) == 2 * t:
                counts["turns with full history"] += 1
            else:
                problems.append(f"{text}: the reply was {turn.reply_text!r}")
            views = []
            for backend in backends:
                browser.use(backend.url)
                views.append((browser.threads(), browser.items(thread_id)))
            if all(view == views[0] for view in views):
                counts["views agreeing"] += 1
            else:
                problems.append(f"{text}: the processes list different threads or items")
        final = _normalized(browser.items(thread_id)) if thread_id else []
    return final, counts, problems


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    turns = suite.sizes.stateless_turns
    failures: list[str] = []
    suite.fake.reset()
    # A is the main backend, B another process on its database; the single-process
    # reference is A alone (another browser, so another user and thread).
    pair = [suite.running(project, "main"), suite.running(project, "peer")]
    final, counts, problems = _conversation(suite, pair, turns)
    reference, _, single_problems = _conversation(suite, pair[:1], turns)
    alive = all(backend.alive() for backend in pair)
    failures += problems + [f"single process: {p}" for p in single_problems]
    # The texts name the process; the single-process run was all on "A".
    same = [(kind, text.replace("process B", "process A")) for kind, text in final] == [
        (kind, re.sub(r"process [AB]", "process A", text)) for kind, text in reference
    ]
    if not same:
        failures.append(f"the two-process thread differs from the single-process one: {final}")
    if counts["cookies issued"] != 1:
        failures.append(f"{counts['cookies issued']} session cookies were issued, expected 1")
    if not alive:
        failures.append("a backend died")
    figures = [
        f"{turns} turns alternating between 2 uvicorn processes on one {project.label} "
        "database (same SESSION_SECRET, one cookie jar)",
        f"session cookies issued: {counts['cookies issued']} (the second process accepted the "
        f"first one's); turns that saw the whole history: "
        f"{counts['turns with full history']}/{turns}",
        f"both processes listed the same threads and items after "
        f"{counts['views agreeing']}/{turns} turns; final thread equals the single-process "
        f"run: {'yes' if same else 'NO'} ({len(final)} items)",
    ]
    metrics = {"turns": turns, **counts, "same as one process": int(same)}
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def run(suite: Suite) -> list[Row]:
    # PostgreSQL is the multi-process deployment; two workers on one SQLite file are
    # checked too (WAL and busy_timeout are set for it).
    ordered = sorted(suite.projects, key=lambda p: p.store != "postgres")
    return [run_project(suite, project) for project in ordered]
