"""12. kill -9 mid-upload: the backend dies while a file streams in, then restarts.

Each round starts a slow upload (raw POST, the whole Content-Length announced, the last
piece held back) and sends SIGKILL once the backend has stored some of its chunks. Rounds
alternate between a first upload and one replacing a file that was already uploaded.
After the restart on the same database: the half-uploaded file can never be read or
attached (a first upload stays 404 and naming it in a message is refused, storing
nothing); a replaced file still reads back as the old one, byte for byte; the database
passes its integrity check; and the same upload sent again completes and reads back
byte-identical (no stale chunk mixed in).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

from reliability.checks.attachment_support import (
    CHUNK_BYTES,
    chunk_count,
    download,
    message_with,
    new_attachment,
    png,
    raw_request,
    upload,
    upload_columns,
    upload_path,
)
from reliability.harness import Backend, Browser, Project
from reliability.suite import Row, Suite

CHECK = "12. kill -9 mid-upload"
SIZE = 900_000  # under the uploads backend's 1 MiB limit: 4 chunks
PIECE = 16 * 1024
CHUNKS_BEFORE_KILL = 2


def _slow_upload(
    backend: Backend, cookie: str, path: str, data: bytes, stop: threading.Event
) -> None:
    request = raw_request(
        "POST",
        path,
        host=f"127.0.0.1:{backend.port}",
        cookie=cookie,
        headers=[("Content-Type", "image/png")],
        body=b"",
        content_length=len(data),
    )
    try:
        with socket.create_connection(("127.0.0.1", backend.port), timeout=30) as sock:
            sock.sendall(request)
            # All but the last piece: the upload is still unfinished when the kill comes,
            # however late a busy machine lets the watcher see the stored chunks.
            for start in range(0, len(data) - PIECE, PIECE):
                if stop.is_set():
                    return
                sock.sendall(data[start : start + PIECE])
                time.sleep(0.02)
            stop.wait(30)
    except OSError:
        pass  # the backend died under it: expected


def _round(
    suite: Suite, backend: Backend, alice: Browser, number: int, replacing: bool
) -> dict[str, Any]:
    rng = random.Random(suite.seed + 1200 + number)
    database = backend.database
    data, original = png(rng, SIZE), png(rng, SIZE)
    attachment = new_attachment(alice, f"killed-{number}.png", data, "image/png")
    attachment_id = str(attachment["id"])
    result: dict[str, Any] = {"problems": []}
    stored_before = 0
    if replacing:
        first = upload(alice, attachment, original)
        if first.status_code != 200:
            result["problems"].append(f"the first upload: HTTP {first.status_code}")
        stored_before = chunk_count(database, attachment_id)
    stop = threading.Event()
    sender = threading.Thread(
        target=_slow_upload,
        args=(backend, alice.cookie or "", upload_path(attachment), data, stop),
        daemon=True,
    )
    sender.start()
    deadline = time.monotonic() + 30
    while chunk_count(database, attachment_id) < stored_before + CHUNKS_BEFORE_KILL:
        if time.monotonic() > deadline:
            result["problems"].append("no chunk of the upload was stored within 30 s")
            break
        time.sleep(0.02)
    result["chunks at the kill"] = chunk_count(database, attachment_id) - stored_before
    backend.kill9()
    stop.set()
    sender.join(timeout=30)
    backend.start()
    alice.use(backend.url)
    result["integrity"] = database.integrity() == "ok"

    got = download(alice, attachment_id)
    columns = upload_columns(database, attachment_id)
    if replacing:
        result["old file intact"] = got.status_code == 200 and got.content == original
        if not result["old file intact"]:
            result["problems"].append(
                f"the replaced file reads HTTP {got.status_code}, "
                f"{'the old bytes' if got.content == original else 'other bytes'}"
            )
    else:
        result["readable"] = got.status_code != 404
        if columns is not None and columns[0] is not None:
            result["readable"] = True
            result["problems"].append(f"the half upload was marked finished: {columns}")
        threads_before = len(alice.threads())
        turn = alice.stream("threads.create", input=message_with([attachment_id]))
        stored = len(alice.threads()) - threads_before
        refused = turn.status in (404, 409) or (turn.status == 200 and bool(turn.errors))
        result["attached"] = not refused or stored > 0
        if result["attached"]:
            result["problems"].append(
                f"naming the half upload in a message: HTTP {turn.status} {turn.errors}, "
                f"{stored} threads stored"
            )
    retry = upload(alice, attachment, data)
    back = download(alice, attachment_id)
    result["retry ok"] = retry.status_code == 200 and back.content == data
    if not result["retry ok"]:
        result["problems"].append(
            f"the upload again: HTTP {retry.status_code}, read back HTTP {back.status_code} "
            f"{'identical' if back.content == data else 'different'}"
        )
    # Chunks of the killed upload wait for the orphan sweep; only the finished one counts.
    result["leftover chunks"] = chunk_count(database, attachment_id) - -(-SIZE // CHUNK_BYTES)
    return result


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    suite.fake.reset()
    backend = suite.running(project, "uploads")
    rounds = suite.sizes.upload_crash_rounds
    results = []
    with suite.browser(backend) as alice:
        alice.threads()  # her session, before the first kill
        for number in range(rounds):
            results.append(_round(suite, backend, alice, number, replacing=number % 2 == 1))
    backend.stop()
    firsts = [r for r in results if "readable" in r]
    replaced = [r for r in results if "old file intact" in r]
    readable = sum(r["readable"] for r in firsts)
    attached = sum(r["attached"] for r in firsts)
    intact = sum(r["old file intact"] for r in replaced)
    retried = sum(r["retry ok"] for r in results)
    integrity = sum(r["integrity"] for r in results)
    for number, result in enumerate(results):
        failures += [f"round {number}: {p}" for p in result["problems"]]
        if not result["integrity"]:
            failures.append(f"round {number}: the database failed its integrity check")
    chunks = ", ".join(str(r["chunks at the kill"]) for r in results)
    figures = [
        f"{rounds} kill -9 mid-upload ({len(firsts)} first uploads, {len(replaced)} replacing "
        f"an uploaded file), chunks stored at the kill: {chunks}; restarts on the same database",
        f"half uploads readable: {readable}/{len(firsts)}, attachable to a message: "
        f"{attached}/{len(firsts)}; replaced files still the old bytes: {intact}/{len(replaced)}",
        f"the same upload again, byte-identical: {retried}/{rounds}; integrity check ok: "
        f"{integrity}/{rounds}; chunks left for the orphan sweep: "
        f"{sum(max(0, r['leftover chunks']) for r in results)}",
    ]
    metrics = {
        "kills": rounds,
        "first uploads": len(firsts),
        "readable": readable,
        "attached": attached,
        "replaced": len(replaced),
        "old file intact": intact,
        "retry ok": retried,
        "integrity ok": integrity,
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
