"""10. Malformed uploads: generated bad and edge-case attachment requests, over raw HTTP.

Hypothesis draws the cases: `attachments.create` with declared sizes 0, -1, 10**10 and
other absurd ones, traversal and Unicode file names, odd types; uploads with a lying
Content-Length (longer or shorter than the body), bodies cut mid-way, zero bytes,
malformed multipart (no boundary, wrong boundary, no `file` field, two of them, cut),
bytes that do not match the declared type (HTML declared image/png), bodies past the
limit, broken chunked encoding; odd ids and methods on the upload and content URLs.
They are sent with a raw socket, so nothing in between fixes them up.

Expected: no 5xx; every complete request answered; the worker alive; no unhandled
exception in its log; an attachment whose upload never succeeded is never readable; the
other user's attachment unchanged; no file written outside the database.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from reliability.checks.attachment_support import (
    attachment_rows,
    content_path,
    create,
    download,
    multipart,
    png,
    raw_request,
    send_raw,
    text_file,
    upload_path,
    uploaded,
)
from reliability.checks.fuzz import collect
from reliability.harness import Backend, Browser, Project, user_id_of
from reliability.suite import FULL, UPLOAD_MAX_BYTES, Row, Suite

CHECK = "10. Malformed uploads (fuzzed attachment requests)"
WORKERS = 3

NAMES = (
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\cmd.exe",
    "/etc/shadow",
    "%2e%2e%2f%2e%2e%2fsecret.png",
    "....//....//x.png",
    "a/../../b.png",
    "photo\u0000.png",
    "evil\u202egnp.exe",
    "\u00e9t\u00e9 \U0001f600.png",
    "\u65e5\u672c\u8a9e\u306e\u30d5\u30a1\u30a4\u30eb.txt",
    "CON",
    "nul.txt",
    ".htaccess",
    "",
    " ",
    "a\r\nContent-Type: text/html\r\n\r\n<script>x</script>.png",
    '"; filename="x.html',
    "x" * 5000,
)
MIME_TYPES = (
    "image/png",
    "text/plain",
    "application/pdf",
    "image/svg+xml",
    "text/html",
    "application/x-msdownload",
    "image/png; charset=utf-8",
    "IMAGE/PNG",
    "",
    "../../x",
)
SIZES = (0, -1, 10**10, 2**63, -(2**63), 2**64, UPLOAD_MAX_BYTES + 1, 1, UPLOAD_MAX_BYTES)
WEIRD_SIZES: tuple[Any, ...] = (1.5, "10", None, True, [], {}, "1e400", float("1e300"))
WEIRD_IDS = (
    "",
    "..",
    "../../health",
    "%2e%2e%2f%2e%2e%2fhealth",
    "atc_missing",
    "atc_\u0000",
    "atc_\U0001f4a5",
    "' OR '1'='1",
    "atc_" + "a" * 3000,
)
CATEGORIES = (
    "declared sizes",
    "file names",
    "lying Content-Length",
    "cut mid-way",
    "zero bytes",
    "bad multipart",
    "bytes unlike the type",
    "past the limit",
    "chunked encoding",
    "odd ids and methods",
)


@dataclass(frozen=True)
class Case:
    category: str
    # attachments.create params (sent as JSON), or None to create a valid pending one.
    create: str | None = None
    upload: bool = True  # then upload to it
    target: str = "fresh"  # fresh | victim | weird
    weird_id: str = ""
    method: str = "POST"
    path_suffix: str = "/upload"
    declared: str = "image/png"  # the type at create
    content: str = "png"  # png | text | html | random
    size: int = 2000
    wrap: str = "raw"  # raw | multipart | one of the broken multiparts | chunked...
    length_delta: int | None = 0  # Content-Length minus the true length; None: no header
    send: int | None = None  # bytes of the body sent before we close our side
    content_type: str | None = None  # None: the declared type (or multipart's own)

    @property
    def answered(self) -> bool:
        """Must the server answer (the request reached its end)?"""
        cut = self.send is not None or self.wrap == "chunked-cut"
        return not cut and (self.length_delta or 0) <= 0


def _create_params(draw: st.DrawFn, category: str, size: int) -> str:
    params: dict[str, Any]
    if category == "declared sizes":
        params = {
            "name": draw(st.sampled_from(["a.png", "notes.txt"])),
            "size": draw(st.one_of(st.sampled_from(SIZES), st.sampled_from(WEIRD_SIZES))),
            "mime_type": draw(st.sampled_from(MIME_TYPES[:3])),
        }
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            del params[draw(st.sampled_from(list(params)))]
    else:
        params = {
            "name": draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=300))),
            "size": size,
            "mime_type": draw(st.sampled_from(MIME_TYPES)),
        }
    return json.dumps({"type": "attachments.create", "params": params})


@st.composite
def cases(draw: st.DrawFn, category: str) -> Case:
    # Mostly small bodies; some of two or three chunks.
    size = draw(st.one_of(st.integers(2, 5000), st.integers(5000, 600_000)))
    content = draw(st.sampled_from(["png", "png", "text"]))
    declared = "image/png" if content == "png" else "text/plain"
    wrap = draw(st.sampled_from(["raw", "multipart"]))
    method = draw(st.sampled_from(["POST", "PUT"])) if wrap == "raw" else "POST"
    base: dict[str, Any] = {"category": category, "content": content, "declared": declared}
    base |= {"size": size, "wrap": wrap, "method": method}
    match category:
        case "declared sizes":
            return Case(category, create=_create_params(draw, category, 1), upload=False)
        case "file names":
            # A valid file under an odd name: created, uploaded, then read back.
            small = draw(st.integers(1, 5000))
            return Case(category, create=_create_params(draw, category, small), size=small)
        case "lying Content-Length":
            delta = draw(
                st.one_of(st.integers(1, 10**6), st.integers(-size + 1, -1), st.just(10**10))
            )
            return Case(**base | {"length_delta": delta})
        case "cut mid-way":
            return Case(**base | {"send": draw(st.integers(0, size))})
        case "zero bytes":
            wrap = draw(st.sampled_from(["raw", "multipart", "raw-no-length"]))
            delta = None if draw(st.booleans()) else 0
            return Case(**base | {"size": 0, "wrap": wrap, "length_delta": delta})
        case "bad multipart":
            broken = draw(
                st.sampled_from(
                    [
                        "no-boundary",
                        "wrong-boundary",
                        "no-end",
                        "no-file-field",
                        "no-filename",
                        "two-files",
                        "junk",
                        "long-boundary",
                        "part-headers-only",
                    ]
                )
            )
            send = draw(st.one_of(st.none(), st.integers(0, 400)))
            return Case(**base | {"wrap": f"multipart-{broken}", "method": "POST", "send": send})
        case "bytes unlike the type":
            content = draw(st.sampled_from(["html", "random", "text", "svg", "png"]))
            declared = draw(st.sampled_from(["image/png", "text/plain", "application/pdf"]))
            return Case(**base | {"content": content, "declared": declared})
        case "past the limit":
            over = draw(st.integers(1, 200_000))
            # Honest: the whole body, announced (or chunked). Lying: announced as less.
            wrap = draw(st.sampled_from(["raw", "chunked", "lying"]))
            delta = (
                draw(st.integers(-(UPLOAD_MAX_BYTES + over) + 1, -over)) if wrap == "lying" else 0
            )
            wrap = "raw" if wrap == "lying" else wrap
            return Case(
                **base | {"size": UPLOAD_MAX_BYTES + over, "wrap": wrap, "length_delta": delta}
            )
        case "chunked encoding":
            wrap = draw(st.sampled_from(["chunked", "chunked-bad", "chunked-cut"]))
            return Case(**base | {"wrap": wrap, "length_delta": None})
    # odd ids and methods
    base["method"] = draw(st.sampled_from(["POST", "PUT", "GET", "DELETE", "PATCH"]))
    base["target"] = draw(st.sampled_from(["victim", "weird", "weird", "fresh"]))
    base["weird_id"] = draw(st.one_of(st.sampled_from(WEIRD_IDS), st.text(max_size=40)))
    base["path_suffix"] = draw(
        st.sampled_from(["/upload", "", "/upload/", "/upload/x", "/../upload"])
    )
    return Case(**base)


def _content(case: Case, rng: random.Random) -> bytes:
    match case.content:
        case "png":
            return png(rng, case.size) if case.size else b""
        case "text":
            return text_file(rng, case.size)
        case "html":
            return (b"<!DOCTYPE html><script>alert(document.cookie)</script>" * 50)[: case.size]
        case "svg":
            return b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    return rng.randbytes(case.size)


def _valid_file(mime_type: str, size: int, rng: random.Random) -> bytes:
    if mime_type.startswith("image/"):
        return png(rng, size)
    if mime_type == "application/pdf":
        return (b"%PDF-1.4\n" + text_file(rng, size))[:size]
    return text_file(rng, size)


def _body(case: Case, data: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    """The body carrying the file `data` and the headers that describe it (before any lie)."""
    declared = case.content_type or case.declared
    wrap = case.wrap
    if wrap in ("raw", "raw-no-length"):
        return data, [("Content-Type", declared)]
    if wrap.startswith("chunked"):
        pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
        body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
        if wrap == "chunked-bad":
            body = b"zz\r\n" + body
        elif wrap == "chunked-cut":
            body = body[: len(body) // 2]
        return body, [("Content-Type", declared), ("Transfer-Encoding", "chunked")]
    file_part = ("file", "photo.png", data, declared)
    broken = wrap.removeprefix("multipart").lstrip("-")
    if broken == "no-file-field":
        body, ctype = multipart([("other", "photo.png", data, declared)])
    elif broken == "no-filename":
        body, ctype = multipart([("file", None, data, declared)])
    elif broken == "two-files":
        body, ctype = multipart([file_part, file_part])
    elif broken == "long-boundary":
        body, ctype = multipart([file_part], boundary="b" * 5000)
    else:
        body, ctype = multipart([file_part])
    if broken == "no-boundary":
        ctype = "multipart/form-data"
    elif broken == "wrong-boundary":
        ctype = "multipart/form-data; boundary=not-the-one"
    elif broken == "no-end":
        body = body[: body.rindex(b"--")]
    elif broken == "junk":
        body = random.Random(len(body)).randbytes(len(body))
    elif broken == "part-headers-only":
        body = body[: body.index(b"\r\n\r\n") + 4]
    return body, [("Content-Type", ctype)]


@dataclass
class Outcome:
    category: str
    statuses: list[int]
    attachment_id: str | None = None
    uploaded: bool = False  # an upload to it answered 200
    problem: str = ""
    # No answer heard, but the server had the whole request: finished or not, either is
    # right; if it reads back, it must be `complete_file` (when known).
    maybe_uploaded: bool = False
    complete_file: bytes | None = None


class Fuzzer:
    def __init__(self, suite: Suite, backend: Backend, cookie: str, victim_id: str) -> None:
        self.suite = suite
        self.backend = backend
        self.cookie = cookie
        self.victim_id = victim_id

    def _browser(self) -> Browser:
        browser = self.suite.browser(self.backend)
        browser.set_session(self.cookie)
        return browser

    def run_case(self, case: Case, rng: random.Random) -> Outcome:
        outcome = Outcome(case.category, [])
        with self._browser() as browser:
            if case.create is not None:
                reply = browser.post(case.create)
                outcome.statuses.append(reply.status)
                if reply.status != 200 or not case.upload:
                    return outcome
                attachment = reply.json()
            elif case.target == "fresh":
                reply = create(browser, "fuzz.png", max(case.size, 1), case.declared)
                if reply.status != 200:
                    # Refused at create (past the limit, a type the provider does not
                    # take): the upload goes to a small PNG attachment instead.
                    outcome.statuses.append(reply.status)
                    reply = create(browser, "fuzz.png", 1000, "image/png")
                if reply.status != 200:
                    outcome.problem = f"could not create an attachment: HTTP {reply.status}"
                    return outcome
                attachment = reply.json()
            else:
                attachment = {"id": self.victim_id if case.target == "victim" else case.weird_id}
            attachment_id = str(attachment["id"])
            outcome.attachment_id = attachment_id if case.target == "fresh" else None
            path = upload_path(attachment) if case.target == "fresh" else ""
            if not path:
                path = content_path(attachment_id) + "/upload"
            if case.path_suffix != "/upload":
                path = f"/chatkit/attachments/{quote(attachment_id, safe='')}{case.path_suffix}"
            data = _content(case, rng)
            body, headers = _body(case, data)
            if case.create is not None:  # the odd name's file: a valid upload of its type
                mime = str(attachment.get("mime_type", "image/png")).lower()
                data = _valid_file(mime, case.size, rng)
                body, headers = data, [("Content-Type", mime)]
            length = None if case.length_delta is None else len(body) + case.length_delta
            if case.wrap == "raw-no-length" or case.wrap.startswith("chunked"):
                length = None
            sent = body if case.send is None else body[: case.send]
            request = raw_request(
                case.method,
                path,
                host=f"127.0.0.1:{self.backend.port}",
                cookie=self.cookie,
                headers=headers,
                body=sent,
                content_length=length,
            )
            reply = send_raw(self.backend.port, request, cut=not case.answered)
            outcome.statuses.append(reply.status)
            # Cut only after the whole file went (a multipart body to its closing
            # boundary, or as many bytes as announced): the upload may have finished
            # with nobody left to hear it. Then it must read back as exactly the file.
            announced = length is not None and length <= len(sent)
            whole_multipart = case.wrap.startswith("multipart") and len(sent) == len(body)
            if reply.status == 0 and (announced or whole_multipart):
                raw = case.wrap == "raw" and length is not None
                outcome.complete_file = data if whole_multipart else sent[:length] if raw else None
                outcome.maybe_uploaded = True
            # Broken chunked encoding is refused by uvicorn itself, before the app (so
            # without the app's headers); everything else complete is the app's answer.
            if case.answered and reply.status and not case.wrap.startswith("chunked-"):
                self.suite.recorder.record(reply.status, reply.headers, reply.body, "upload fuzz")
            if case.answered and reply.status == 0:
                outcome.problem = f"no answer to a complete {case.method} {path[:80]} ({case.wrap})"
            is_upload = case.method in ("POST", "PUT") and case.path_suffix == "/upload"
            if reply.status == 200 and case.target == "fresh" and is_upload:
                outcome.uploaded = True
            if reply.status < 300 and reply.status and case.target == "victim":
                outcome.problem = f"{case.method} on the other user's attachment: {reply.status}"
            if case.create is not None and reply.status == 200:
                got = download(browser, attachment_id)
                outcome.statuses.append(got.status_code)
                if got.status_code != 200 or got.content != body:
                    outcome.problem = (
                        f"{attachment.get('name')!r}: read back HTTP {got.status_code}"
                    )
        return outcome


def _files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def run_project(suite: Suite, project: Project, index: int) -> Row:
    started = time.monotonic()
    failures: list[str] = []
    backend = suite.running(project, "uploads")
    database = backend.database
    pid = backend.process.pid if backend.process else 0
    log_start = len(backend.log_text())
    rng = random.Random(suite.seed + index)
    files_before = _files(project.root)
    count = suite.sizes.upload_fuzz_requests
    with suite.browser(backend) as victim, suite.browser(backend) as fuzzer:
        victim_bytes = png(rng, 300_000)
        victim_id = uploaded(victim, "victim.png", victim_bytes)
        victim_user = user_id_of(victim.cookie) or ""
        fuzzer.threads()  # a session of its own
        rows_before = attachment_rows(database, victim_user)
        generated = collect(cases, CATEGORIES, count, suite.seed + 104_729 * index)
        engine = Fuzzer(suite, backend, fuzzer.cookie or "", victim_id)
        outcomes: list[Outcome] = []
        lock = threading.Lock()

        def send(chunk: list[Case], worker: int) -> None:
            local = random.Random(suite.seed * 31 + worker)
            for case in chunk:
                try:
                    outcome = engine.run_case(case, local)
                except Exception as error:  # a refused connection is a finding too
                    outcome = Outcome(
                        case.category, [0], problem=f"{type(error).__name__}: {error}"
                    )
                with lock:
                    outcomes.append(outcome)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(send, [generated[i::WORKERS] for i in range(WORKERS)], range(WORKERS)))

        alive = backend.alive()
        health = backend.health()
        # No upload that failed may have left something readable.
        never_uploaded = [o for o in outcomes if o.attachment_id and not o.uploaded]
        readable = []
        for o in never_uploaded:
            got = download(fuzzer, str(o.attachment_id))
            if got.status_code == 404:
                continue
            if o.maybe_uploaded and got.status_code == 200:
                if o.complete_file is None or got.content == o.complete_file:
                    continue
            readable.append(f"{o.category} (HTTP {o.statuses}, then GET {got.status_code})")
        victim_after = download(victim, victim_id)
        rows_after = attachment_rows(database, victim_user)
    log = backend.log_text()[log_start:]
    crashes = log.count("Exception in ASGI application") + log.count("Traceback (most recent")
    statuses: Counter[int] = Counter()
    by_category: dict[str, Counter[int]] = {}
    for outcome in outcomes:
        for status in outcome.statuses:
            statuses[status] += 1
            by_category.setdefault(outcome.category, Counter())[status] += 1
    total = sum(statuses.values())
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    problems = [o.problem for o in outcomes if o.problem]
    new_files = sorted(_files(project.root) - files_before)
    victim_intact = victim_after.status_code == 200 and victim_after.content == victim_bytes
    changed = rows_after != rows_before or not victim_intact

    if len(generated) < count:
        failures.append(f"only {len(generated)} cases were generated, not {count}")
    if server_errors:
        worst = {c: dict(n) for c, n in by_category.items() if any(s >= 500 for s in n)}
        failures.append(f"{server_errors} responses were 5xx: {worst}")
    if problems:
        failures.append(f"{len(problems)} cases went wrong: {problems[:5]}")
    if not alive or (backend.process.pid if backend.process else 0) != pid:
        failures.append("the uvicorn worker died")
    if crashes:
        failures.append(f"{crashes} unhandled exceptions or tracebacks in the backend log")
    if health != 200:
        failures.append(f"/health answered {health} afterwards")
    if readable:
        failures.append(
            f"{len(readable)} attachments whose upload failed are readable: {readable[:5]}"
        )
    if changed:
        failures.append("the other user's attachment changed")
    if new_files:
        failures.append(f"files written into the project: {new_files[:5]}")

    full = f" (quick mode; the full run sends {FULL.upload_fuzz_requests:,})" if suite.quick else ""
    status_text = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(statuses.items()))
    figures = [
        f"{len(outcomes)} generated cases in {len(by_category)} categories, {total} requests"
        f"{full}; ATTACHMENT_MAX_BYTES={UPLOAD_MAX_BYTES:,}",
        f"by status: {status_text} (no answer: the client cut the body short)",
        f"5xx: {server_errors}; complete requests left unanswered or wrong: {len(problems)}",
        f"worker alive: {'yes' if alive else 'NO'} (same pid), /health after: {health}; "
        f"unhandled exceptions in the log: {crashes}",
        f"attachments whose upload failed, readable: {len(readable)}/{len(never_uploaded)}; "
        f"the other user's attachment changed: {'YES' if changed else 'no'}; "
        f"files written outside the database: {len(new_files)}",
    ]
    details = {c: dict(sorted(n.items())) for c, n in sorted(by_category.items())}
    metrics = {
        "cases": len(outcomes),
        "requests": total,
        "5xx": server_errors,
        "problems": len(problems),
        "unhandled exceptions": crashes,
        "worker alive": int(alive),
        "health": health,
        "failed uploads readable": len(readable),
        "failed uploads": len(never_uploaded),
        "changed": int(changed),
        "new files": len(new_files),
    }
    return Row(
        CHECK, project.label, figures, failures, time.monotonic() - started, details, metrics
    )


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project, n) for n, project in enumerate(suite.projects)]
