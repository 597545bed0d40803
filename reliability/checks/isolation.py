"""7. Isolation: a second user tries every operation on the first user's threads and items.

Every ChatKit operation that names a thread, an item or an attachment is tried with the
first user's ids, on her threads and (where a request names both) on the attacker's own
thread with her item ids. A read is a response that carries any of her data the attacker
did not send; a change is any difference in her threads and items, through the API and
row by row in the database. Then forged session cookies: tampered, expired, future-dated,
signed with another secret, malformed; none may map to an existing user.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from reliability.harness import (
    COOKIE,
    Browser,
    Project,
    load_module,
    user_id_of,
    user_input,
)
from reliability.suite import Row, Suite

CHECK = "7. Isolation between users"
SECRET = "alice-private-note"


def _state(browser: Browser) -> str:
    threads = browser.threads()
    return json.dumps(
        {"threads": threads, "items": {t["id"]: browser.items(t["id"]) for t in threads}},
        sort_keys=True,
    )


def _attempts(alice: dict[str, Any], own_thread: str) -> list[tuple[str, str, dict[str, Any]]]:
    thread, other_thread = alice["threads"]
    user_item, reply_item = alice["user_items"][0], alice["reply_items"][0]
    action = {"type": "pwn", "payload": {"x": 1}}
    return [
        ("list her threads after her cursor", "threads.list", {"after": thread, "limit": 50}),
        ("get her thread", "threads.get_by_id", {"thread_id": thread}),
        ("list her items", "items.list", {"thread_id": thread}),
        (
            "page own thread from her item",
            "items.list",
            {"thread_id": own_thread, "after": user_item},
        ),
        ("rename her thread", "threads.update", {"thread_id": thread, "title": "pwned"}),
        ("delete her thread", "threads.delete", {"thread_id": other_thread}),
        (
            "add a message to her thread",
            "threads.add_user_message",
            {"thread_id": thread, "input": user_input("pwned")},
        ),
        (
            "retry her message",
            "threads.retry_after_item",
            {"thread_id": thread, "item_id": user_item},
        ),
        (
            "retry her message in own thread",
            "threads.retry_after_item",
            {"thread_id": own_thread, "item_id": user_item},
        ),
        (
            "feedback on her reply",
            "items.feedback",
            {"thread_id": thread, "item_ids": [reply_item], "kind": "negative"},
        ),
        (
            "feedback on her reply via own thread",
            "items.feedback",
            {"thread_id": own_thread, "item_ids": [reply_item], "kind": "negative"},
        ),
        (
            "custom action on her thread",
            "threads.custom_action",
            {"thread_id": thread, "item_id": reply_item, "action": action},
        ),
        (
            "custom action on her item via own thread",
            "threads.custom_action",
            {"thread_id": own_thread, "item_id": reply_item, "action": action},
        ),
        (
            "sync custom action on her thread",
            "threads.sync_custom_action",
            {"thread_id": thread, "item_id": reply_item, "action": action},
        ),
        (
            "client tool output into her thread",
            "threads.add_client_tool_output",
            {"thread_id": thread, "result": {"pwned": True}},
        ),
        (
            "structured input on her item",
            "threads.add_structured_input",
            {"thread_id": thread, "item_id": user_item, "input": {"status": "skipped"}},
        ),
        (
            "create a thread citing her item as an attachment",
            "threads.create",
            {"input": {**user_input("x"), "attachments": [user_item]}},
        ),
        ("delete an attachment by her item id", "attachments.delete", {"attachment_id": user_item}),
        (
            "create an attachment",
            "attachments.create",
            {"name": "a.txt", "size": 1, "mime_type": "text/plain"},
        ),
    ]


def _markers(alice: dict[str, Any]) -> list[str]:
    return [
        SECRET,
        *alice["threads"],
        *alice["user_items"],
        *alice["reply_items"],
        *alice["replies"],
    ]


def _read(body: bytes, sent: bytes, markers: list[str]) -> list[str]:
    """Her data in a response that the attacker did not put in the request."""
    return [m for m in markers if m.encode() in body and m.encode() not in sent]


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    details: dict[str, Any] = {}
    suite.fake.reset()
    backend = suite.running(project, "main")
    database = backend.database
    identity = load_module("reliability_identity", project.backend_dir / "app" / "identity.py")
    with suite.browser(backend) as alice_browser, suite.browser(backend) as mallory:
        alice: dict[str, Any] = {"threads": [], "user_items": [], "reply_items": [], "replies": []}
        for n in range(2):
            first = alice_browser.create_thread(f"{SECRET} {n}")
            thread_id = first.thread_id
            second = alice_browser.send(thread_id, f"{SECRET} {n} again")
            alice["threads"].append(thread_id)
            for turn in (first, second):
                alice["user_items"].append(turn.user_item["id"] if turn.user_item else "")
                alice["reply_items"] += [item["id"] for item in turn.assistant_items]
                alice["replies"] += [turn.reply_text]
        alice_id = user_id_of(alice_browser.cookie)
        own_thread = mallory.create_thread("mallory's own").thread_id
        mallory_id = user_id_of(mallory.cookie)
        before_api = _state(alice_browser)
        before_rows = database.user_rows(alice_id or "")
        markers = _markers(alice)

        statuses: Counter[int] = Counter()
        reads: list[str] = []
        changed_by: list[str] = []
        attempts = _attempts(alice, own_thread)
        for name, op, params in attempts:
            sent = json.dumps({"type": op, "params": params}).encode()
            reply = mallory.post(sent)
            statuses[reply.status] += 1
            details[name] = f"{op} → HTTP {reply.status}"
            found = _read(reply.body, sent, markers)
            if found:
                reads.append(f"{name}: {found[:2]}")
            if database.user_rows(alice_id or "") != before_rows:
                changed_by.append(name)
                before_rows = database.user_rows(alice_id or "")
        listed = [t["id"] for t in mallory.threads()]
        if set(listed) & set(alice["threads"]):
            reads.append("threads.list shows her threads")
        after_api = _state(alice_browser)
        if after_api != before_api:
            changed_by.append("(through the API)")

        # Forged cookies.
        sessions = identity.SessionCookies(suite.session_secret, COOKIE, 365 * 86_400)
        foreign = identity.SessionCookies("another-secret-" + "x" * 32, COOKIE, 365 * 86_400)
        real = alice_browser.cookie or ""
        version, user, issued, signature = real.split(".")
        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        mallory_signature = (mallory.cookie or "...").split(".")[3]
        now = time.time()
        forged = {
            "signature flipped": f"{version}.{user}.{issued}.{flipped}",
            "her id, another user's signature": f"{version}.{user}.{issued}.{mallory_signature}",
            "expired (366 days old)": sessions.issue(user, now=now - 366 * 86_400),
            "issued in the future": sessions.issue(user, now=now + 30 * 86_400),
            "signed with another secret": foreign.issue(user),
            "version v2": f"v2.{user}.{issued}.{signature}",
            "no signature": f"{version}.{user}.{issued}.",
            "extra segment": f"{real}.x",
            "non-numeric date, valid signature": (
                f"{version}.{user}.soon.{sessions._sign(f'{version}.{user}.soon')}"
            ),
            "empty": "",
            "8 KB of junk": "v1." + "A" * 8000,
        }
        mapped: list[str] = []
        for name, cookie in forged.items():
            with suite.browser(backend) as forger:
                forger.set_session(cookie)
                reply = forger.request("threads.list", limit=50)
                data = reply.json().get("data", []) if reply.status == 200 else []
                new_user = user_id_of(forger.cookie)
                got_hers = forger.request("threads.get_by_id", thread_id=alice["threads"][0])
            if (
                reply.status != 200
                or data
                or new_user in (alice_id, mallory_id)
                or got_hers.status != 404
            ):
                mapped.append(f"{name}: HTTP {reply.status}, {len(data)} threads, user {new_user}")
        with suite.browser(backend) as control:
            control.set_session(real)
            control_sees = len(control.threads())
        if control_sees != len(alice["threads"]):
            failures.append(f"her own cookie sees {control_sees} threads: the check has no teeth")
    failures += [f"read: {r}" for r in reads]
    failures += [f"changed by: {c}" for c in changed_by]
    failures += [f"forged cookie accepted: {m}" for m in mapped]
    status_text = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    figures = [
        f"{len(attempts)} operations by a second user on the first user's 2 threads and "
        f"{len(alice['user_items']) + len(alice['reply_items'])} items: {status_text}",
        f"reads: {len(reads)}; changes: {len(changed_by)} (API view and database rows compared)",
        f"{len(forged)} forged cookies (tampered, expired, future, foreign secret, malformed) "
        f"mapped to an existing user: {len(mapped)}; the real cookie still sees her "
        f"{control_sees} threads",
    ]
    metrics = {
        "attempts": len(attempts),
        "reads": len(reads),
        "changes": len(changed_by),
        "forged cookies": len(forged),
        "forged accepted": len(mapped),
    }
    return Row(
        CHECK, project.label, figures, failures, time.monotonic() - started, details, metrics
    )


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
