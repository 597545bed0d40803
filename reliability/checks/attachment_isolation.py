"""11. Attachments between users: a second user tries every attachment operation on the
first user's attachments.

She has three: one uploaded, one created but not uploaded yet, one sent in a message
(bound to her thread). He tries to upload to each (multipart POST, raw POST, raw PUT),
read each, delete each (`attachments.delete`), and name each in a message (a new thread
and his own thread). Every attempt must be 404, as for an id that does not exist. A
read is a response carrying her bytes or her file names; a change is any difference in
her attachment rows and chunks, or in what she downloads.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from reliability.checks.attachment_support import (
    attachment_rows,
    download,
    message_with,
    new_attachment,
    png,
    text_file,
    upload,
    uploaded,
)
from reliability.harness import Browser, Project, user_id_of
from reliability.suite import Row, Suite

CHECK = "11. Attachments between users"


def _attempts(mine: dict[str, str], own_thread: str) -> list[tuple[str, str, Any]]:
    """(what, how, target): how is an upload style, "read", or a ChatKit op's params."""
    attempts: list[tuple[str, str, Any]] = []
    for label, attachment_id in mine.items():
        for style in ("multipart", "raw", "put"):
            attempts.append((f"upload ({style}) to her {label}", style, attachment_id))
        attempts.append((f"read her {label}", "read", attachment_id))
        attempts.append(
            (
                f"name her {label} in a new thread",
                "threads.create",
                {"input": message_with([attachment_id])},
            )
        )
        attempts.append(
            (
                f"name her {label} in his thread",
                "threads.add_user_message",
                {"thread_id": own_thread, "input": message_with([attachment_id])},
            )
        )
        attempts.append(
            (f"delete her {label}", "attachments.delete", {"attachment_id": attachment_id})
        )
    return attempts


def _try(browser: Browser, how: str, target: Any, rng: random.Random) -> tuple[int, bytes]:
    if how in ("multipart", "raw", "put"):
        data = png(rng, 5000)
        attachment = {"id": target, "name": "his.png", "mime_type": "image/png"}
        response = upload(browser, attachment, data, how)
        return response.status_code, response.content
    if how == "read":
        response = download(browser, target)
        return response.status_code, response.content
    if how.startswith("threads."):
        turn = browser.stream(how, **target)
        # A refusal may come as HTTP 404 or as a streamed error event before anything
        # is stored; either way nothing of hers may be in it.
        not_found = turn.status == 404 or any(
            "not found" in json.dumps(e).lower() or "404" in json.dumps(e) for e in turn.errors
        )
        return (404 if not_found else turn.status), turn.body
    reply = browser.request(how, **target)
    return reply.status, reply.body


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    details: dict[str, Any] = {}
    suite.fake.reset()
    rng = random.Random(suite.seed + 11)
    backend = suite.running(project, "uploads")
    database = backend.database
    with suite.browser(backend) as alice, suite.browser(backend) as mallory:
        files = {
            "uploaded image": png(rng, 400_000),
            "image in a message": png(rng, 3000),
            "pending file": text_file(rng, 2000),
        }
        mine = {
            "uploaded image": uploaded(alice, "alice-secret-photo.png", files["uploaded image"]),
            "image in a message": uploaded(
                alice, "alice-secret-sent.png", files["image in a message"]
            ),
            "pending file": str(
                new_attachment(
                    alice, "alice-secret-pending.txt", files["pending file"], "text/plain"
                )["id"]
            ),
        }
        sent = alice.stream(
            "threads.create", input=message_with([mine["image in a message"]], "my photo")
        )
        if sent.status != 200 or sent.errors:
            failures.append(f"she could not send her image: HTTP {sent.status} {sent.errors}")
        alice_id = user_id_of(alice.cookie) or ""
        own_thread = mallory.create_thread("his own thread").thread_id
        before = attachment_rows(database, alice_id)
        markers = [b"alice-secret", *(data[8:40] for data in files.values())]

        statuses: Counter[int] = Counter()
        reads: list[str] = []
        changes: list[str] = []
        not_404: list[str] = []
        attempts = _attempts(mine, own_thread)
        for name, how, target in attempts:
            status, body = _try(mallory, how, target, rng)
            statuses[status] += 1
            details[name] = f"HTTP {status}"
            if status != 404:
                not_404.append(f"{name}: HTTP {status}")
            if any(marker in body for marker in markers):
                reads.append(name)
            now = attachment_rows(database, alice_id)
            if now != before:
                changes.append(name)
                before = now
        his_threads = mallory.threads()
        if len(his_threads) != 1:
            changes.append(f"refused messages stored {len(his_threads) - 1} new threads of his")
        his_items = [item for t in his_threads for item in mallory.items(t["id"])]
        if any(attachment_id in json.dumps(his_items) for attachment_id in mine.values()):
            reads.append("his threads hold her attachment")
        # She still has all three, byte for byte (the pending one still pending).
        intact = 0
        for label, attachment_id in mine.items():
            got = download(alice, attachment_id)
            expected = 404 if label == "pending file" else 200
            if got.status_code == expected and (expected == 404 or got.content == files[label]):
                intact += 1
            else:
                changes.append(f"her {label} now reads HTTP {got.status_code}")
        # The check has teeth: her own delete works.
        own_delete = alice.request("attachments.delete", attachment_id=mine["uploaded image"])
        gone = download(alice, mine["uploaded image"]).status_code
        if own_delete.status != 200 or gone != 404:
            failures.append(f"her own delete: HTTP {own_delete.status}, then a read is HTTP {gone}")
    failures += [f"read: {r}" for r in reads]
    failures += [f"changed by: {c}" for c in changes]
    failures += [f"not 404: {n}" for n in not_404]
    status_text = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    figures = [
        f"{len(attempts)} attempts by a second user on the first user's 3 attachments "
        f"(uploaded, pending, sent in a message): upload x3 styles, read, name in a new "
        f"thread, name in his thread, attachments.delete: {status_text}",
        f"reads: {len(reads)}; changes: {len(changes)} (rows, chunks and downloads compared); "
        f"her attachments intact: {intact}/3; her own delete then works",
    ]
    metrics = {
        "attempts": len(attempts),
        "reads": len(reads),
        "changes": len(changes),
        "not 404": len(not_404),
        "intact": intact,
    }
    return Row(
        CHECK, project.label, figures, failures, time.monotonic() - started, details, metrics
    )


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
