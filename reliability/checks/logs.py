"""16. No message text and no secrets in the JSON logs.

A uvicorn backend with LOG_FORMAT=json, METRICS_TOKEN set and LOG_LEVEL=INFO. Browsers
(a new cookie every few turns) send turns whose texts are unique markers, every request
with a known bearer token in Authorization (the session mode ignores it) and an
X-Request-ID; some messages are over MAX_MESSAGE_CHARS (refused with 413) and /metrics is
read with its token and with a wrong one. The fake provider's replies quote the message,
so the markers are in the replies too. Once the log holds at least 1 MB (128 KB in the
quick run), it is scanned: no marker, and none of the API key, SESSION_SECRET,
METRICS_TOKEN, the bearer tokens, the session cookies (or their signatures) and the wrong
metrics token; every line is JSON; the turns' own lines (app.turns) are there.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from reliability.harness import Backend, Browser, Project
from reliability.suite import START_TIMEOUT, Row, Suite

CHECK = "16. No message text and no secrets in JSON logs"
FULL_LOG_BYTES = 1024 * 1024
QUICK_LOG_BYTES = 128 * 1024
WORKERS = 6
TURNS_PER_COOKIE = 4
MAX_MESSAGE_CHARS = 2000  # small, so that the refused messages stay small
OVERSIZED_EVERY = 10  # every tenth message is over MAX_MESSAGE_CHARS
HARNESS_LINE = "=== start #"  # Backend.launch writes these into the log file


class Traffic:
    """What was sent, to look for in the log afterwards."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.markers: list[str] = []
        self.secrets: dict[str, str] = {}  # value -> kind
        self.statuses: Counter[int] = Counter()
        self.turns = 0
        self.problems: list[str] = []

    def marker(self) -> str:
        value = f"marker-{uuid.uuid4().hex}"
        with self.lock:
            self.markers.append(value)
        return value

    def secret(self, value: str, kind: str) -> None:
        with self.lock:
            self.secrets[value] = kind

    def status(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def _conversation(suite: Suite, backend: Backend, traffic: Traffic, n: int) -> None:
    """One browser: a thread, TURNS_PER_COOKIE turns, its cookie and bearer token noted."""
    bearer = f"bearer-{secrets.token_urlsafe(24)}"
    traffic.secret(bearer, "bearer token")
    with Browser(backend.url, suite.recorder) as browser:
        browser.http.headers["authorization"] = f"Bearer {bearer}"
        browser.http.headers["x-request-id"] = f"reliability-logs-{n}"
        first = browser.create_thread(traffic.marker())
        traffic.status(first.status)
        cookie = browser.cookie
        if cookie is None or first.status != 200 or first.errors:
            traffic.problems.append(f"a first turn: HTTP {first.status}, {first.body[:200]!r}")
            return
        traffic.secret(cookie, "session cookie")
        traffic.secret(cookie.rsplit(".", 1)[-1], "session cookie signature")
        thread_id = first.thread_id
        for turn in range(1, TURNS_PER_COOKIE):
            text = traffic.marker()
            if (n * TURNS_PER_COOKIE + turn) % OVERSIZED_EVERY == 0:
                text = (text + " ") * (MAX_MESSAGE_CHARS // len(text) + 1)
            reply = browser.send(thread_id, text)
            traffic.status(reply.status)
            if reply.status == 200 and reply.errors:
                traffic.problems.append(f"a turn's error events: {reply.errors[:1]}")
        with traffic.lock:
            traffic.turns += TURNS_PER_COOKIE


def _read_metrics(suite: Suite, backend: Backend, token: str, traffic: Traffic) -> None:
    wrong = f"wrong-{secrets.token_urlsafe(16)}"
    traffic.secret(wrong, "wrong metrics token")
    for given, expected in ((token, 200), (wrong, 401)):
        response = httpx.get(
            f"{backend.url}/metrics", headers={"authorization": f"Bearer {given}"}, timeout=30
        )
        suite.recorder.record(response.status_code, response.headers, response.content, "metrics")
        traffic.status(response.status_code)
        if response.status_code != expected:
            traffic.problems.append(f"/metrics with a token: HTTP {response.status_code}")


def _scan(text: str, traffic: Traffic) -> tuple[int, Counter[str], int, int]:
    """Markers found, secrets found by kind, lines that are not JSON, app.turns lines."""
    markers = sum(1 for marker in traffic.markers if marker in text)
    found: Counter[str] = Counter()
    for value, kind in traffic.secrets.items():
        if value in text:
            found[kind] += 1
    not_json = turn_lines = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith(HARNESS_LINE):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            not_json += 1
            continue
        if isinstance(record, dict) and record.get("logger") == "app.turns":
            turn_lines += 1
    return markers, found, not_json, turn_lines


def start(suite: Suite, project: Project) -> tuple[Backend, str]:
    token = f"metrics-{secrets.token_urlsafe(24)}"
    backend = suite.backend(
        project,
        suite.database(project),
        "logs",
        LOG_FORMAT="json",
        METRICS_TOKEN=token,
        MAX_MESSAGE_CHARS=str(MAX_MESSAGE_CHARS),
    )
    backend.launch()
    return backend, token


def run_project(suite: Suite, project: Project, backend: Backend, token: str) -> Row:
    started = time.monotonic()
    target = QUICK_LOG_BYTES if suite.quick else FULL_LOG_BYTES
    traffic = Traffic()
    traffic.secret(suite.api_key, "API key")
    traffic.secret(suite.session_secret, "SESSION_SECRET")
    traffic.secret(token, "METRICS_TOKEN")
    failures: list[str] = []
    try:
        backend.wait_ready(START_TIMEOUT)
        rounds = 0
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            while backend.log_path.stat().st_size < target and rounds < 1000:
                first = rounds * WORKERS
                jobs = [
                    pool.submit(_conversation, suite, backend, traffic, first + i)
                    for i in range(WORKERS)
                ]
                for job in jobs:
                    job.result()
                _read_metrics(suite, backend, token, traffic)
                rounds += 1
        alive = backend.alive()
    finally:
        backend.stop()
    text = backend.log_text()
    size = len(text.encode())
    markers, found, not_json, turn_lines = _scan(text, traffic)
    failures += traffic.problems[:5]
    if size < target:
        failures.append(f"the log reached only {size} bytes")
    if markers:
        failures.append(f"{markers} message markers are in the log")
    for kind, count in found.items():
        failures.append(f"{count} {kind}(s) in the log")
    if not_json:
        failures.append(f"{not_json} log lines are not JSON")
    if turn_lines < traffic.turns - traffic.statuses[413]:
        failures.append(f"{turn_lines} app.turns lines for {traffic.turns} turns")
    if traffic.statuses[413] == 0:
        failures.append("no message was refused as too long")
    if not alive:
        failures.append("the backend died")
    secrets_sent = Counter(traffic.secrets.values())
    figures = [
        f"uvicorn with LOG_FORMAT=json, METRICS_TOKEN set, LOG_LEVEL=INFO on {project.label}",
        f"{traffic.turns} turns with unique marker texts ({len(traffic.markers)} markers, every "
        f"{OVERSIZED_EVERY}th message over MAX_MESSAGE_CHARS={MAX_MESSAGE_CHARS}), statuses "
        f"{dict(sorted(traffic.statuses.items()))}",
        f"{size // 1024} KB of log, {turn_lines} app.turns lines; lines not JSON: {not_json}",
        f"markers found: {markers}; secrets looked for: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(secrets_sent.items()))
        + f"; found: {sum(found.values())}",
    ]
    metrics = {
        "log bytes": size,
        "target bytes": target,
        "turns": traffic.turns,
        "markers": len(traffic.markers),
        "markers found": markers,
        "secrets": len(traffic.secrets),
        "secrets found": sum(found.values()),
        "not json": not_json,
        "turn lines": turn_lines,
        "refused 413": traffic.statuses[413],
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def prepare(suite: Suite) -> list[tuple[Project, Backend, str]]:
    """Each project's backend, launched at once (their imports overlap)."""
    return [(project, *start(suite, project)) for project in suite.projects]


def run(suite: Suite) -> list[Row]:
    started = suite.prepared.pop("logs", None) or prepare(suite)
    return [run_project(suite, project, backend, token) for project, backend, token in started]
