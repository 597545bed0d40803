"""14. Limits under a flood: two backend processes on one database share the counters.

Two uvicorn processes (same SESSION_SECRET) on one database, with small turn limits.
Requests alternate between them, many at once; each phase comes from its own client
address, forwarded in X-Forwarded-For by this loopback client (uvicorn's default trusted
proxy), so the phases' per-IP counters are apart. Expected:
- one user's flood: accepted turns within 1 of the per-user limit;
- one IP's flood from a few users: accepted turns within 1 of the per-IP limit;
- many requests with fresh cookies (a new user each): new threads capped at the per-IP
  thread limit;
- every refusal a 429 with Retry-After, never a 5xx.
A minute boundary passing during a flood opens new windows: that phase runs again, from
new addresses (the first attempt's late requests already count in the new minute).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from reliability.harness import COOKIE, Backend, Project
from reliability.suite import START_TIMEOUT, Row, Suite

CHECK = "14. Limits under a flood (2 processes)"
USER_LIMIT = 10
IP_LIMIT = 30
THREAD_LIMIT = 20
LIMITS = {
    "RATE_LIMIT_USER_TURNS_PER_MINUTE": str(USER_LIMIT),
    "RATE_LIMIT_IP_TURNS_PER_MINUTE": str(IP_LIMIT),
    "RATE_LIMIT_USER_TURNS_PER_DAY": "0",
    "RATE_LIMIT_IP_THREADS_PER_HOUR": str(THREAD_LIMIT),
}


def _create(text: str) -> str:
    content = [{"type": "input_text", "text": text}]
    message = {"content": content, "attachments": [], "inference_options": {}}
    return json.dumps({"type": "threads.create", "params": {"input": message}})


def _send(thread_id: str, text: str) -> str:
    content = [{"type": "input_text", "text": text}]
    message = {"content": content, "attachments": [], "inference_options": {}}
    params = {"thread_id": thread_id, "input": message}
    return json.dumps({"type": "threads.add_user_message", "params": params})


class Flood:
    def __init__(self, suite: Suite, urls: list[str], address: str) -> None:
        self.suite = suite
        self.urls = urls
        self.address = address
        self.problems: list[str] = []

    def post(self, n: int, body: str, cookie: str | None = None) -> httpx.Response:
        headers = {"content-type": "application/json", "x-forwarded-for": self.address}
        if cookie is not None:
            headers["cookie"] = f"{COOKIE}={cookie}"
        response = httpx.post(
            f"{self.urls[n % len(self.urls)]}/chatkit", content=body, headers=headers, timeout=60
        )
        self.suite.recorder.record(
            response.status_code, response.headers, response.content, "POST /chatkit"
        )
        if response.status_code == 429 and not response.headers.get("retry-after"):
            self.problems.append(f"a 429 without Retry-After from {self.address}")
        if response.status_code >= 500:
            self.problems.append(f"HTTP {response.status_code} from {self.address}")
        return response

    def statuses(self, requests: list[tuple[str, str | None]]) -> Counter[int]:
        def one(job: tuple[int, tuple[str, str | None]]) -> int:
            n, (body, cookie) = job
            return self.post(n, body, cookie).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            return Counter(pool.map(one, enumerate(requests)))


def _in_one_minute(run: Any) -> Counter[int]:
    """``run(attempt)``, again (once) when a minute boundary passed while it ran."""
    for attempt in range(2):
        started = int(time.time() // 60)
        result: Counter[int] = run(attempt)
        if int(time.time() // 60) == started:
            return result
    return result


def _user_flood(suite: Suite, urls: list[str], n: int) -> tuple[int, Counter[int], list[str]]:
    def run(attempt: int) -> Counter[int]:
        flood = Flood(suite, urls, f"198.51.100.{n + 10 * attempt}")
        cookie = flood.post(0, _create("who am I")).cookies.get(COOKIE)
        statuses = flood.statuses([(_create("flood"), cookie)] * (3 * USER_LIMIT))
        statuses[200] += 1  # the first turn counts too
        problems.extend(flood.problems)
        return statuses

    problems: list[str] = []
    statuses = _in_one_minute(run)
    return statuses[200], statuses, problems


def _ip_flood(suite: Suite, urls: list[str], n: int) -> tuple[int, Counter[int], list[str]]:
    users = 5  # their per-user limits together (50) are over the IP's (30)

    def run(attempt: int) -> Counter[int]:
        setup = Flood(suite, urls, f"198.51.100.{n + 100 + 10 * attempt}")
        owners = []
        for i in range(users):
            response = setup.post(i, _create("my thread"))
            thread_id = _thread_id(response.text)
            owners.append((thread_id, response.cookies.get(COOKIE)))
        flood = Flood(suite, urls, f"203.0.113.{n + 10 * attempt}")
        jobs = [(_send(t, "flood"), c) for t, c in owners] * (3 * IP_LIMIT // users)
        statuses = flood.statuses(jobs)
        problems.extend(setup.problems + flood.problems)
        return statuses

    problems: list[str] = []
    statuses = _in_one_minute(run)
    return statuses[200], statuses, problems


def _thread_id(stream: str) -> str:
    for line in stream.splitlines():
        if line.startswith("data: "):
            event = json.loads(line[len("data: ") :])
            if event.get("type") == "thread.created":
                return str(event["thread"]["id"])
    raise AssertionError(f"no thread.created in {stream[:300]!r}")


def run_project(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    suite.fake.reset()
    database = suite.database(project)
    pair: list[Backend] = [suite.backend(project, database, f"limits-{x}", **LIMITS) for x in "ab"]
    for backend in pair:
        backend.launch()
    for backend in pair:
        backend.wait_ready(START_TIMEOUT)
    urls = [backend.url for backend in pair]
    failures: list[str] = []
    seed = 1 if project.store == "sqlite" else 2
    user_accepted, user_statuses, problems = _user_flood(suite, urls, seed)
    failures += problems
    ip_accepted, ip_statuses, problems = _ip_flood(suite, urls, seed)
    failures += problems
    fresh = 2000 if not suite.quick else 300
    # Fresh cookies: no cookie header, so every request is a new user.
    flood = Flood(suite, urls, f"192.0.2.{seed}")
    fresh_statuses = flood.statuses([(_create("fresh"), None)] * fresh)
    failures += flood.problems
    threads = fresh_statuses[200]
    alive = all(backend.alive() for backend in pair)
    for backend in pair:
        backend.stop()
    if abs(user_accepted - USER_LIMIT) > 1:
        failures.append(f"one user got {user_accepted} turns; the limit is {USER_LIMIT}")
    if abs(ip_accepted - IP_LIMIT) > 1:
        failures.append(f"one IP got {ip_accepted} turns; the limit is {IP_LIMIT}")
    if threads > THREAD_LIMIT:
        failures.append(f"{threads} threads created from one IP; the cap is {THREAD_LIMIT}")
    if not alive:
        failures.append("a backend died")
    figures = [
        f"2 uvicorn processes on one {project.label} database, requests alternating, 8 at once",
        f"one user, {3 * USER_LIMIT + 1} turns: {user_accepted} accepted "
        f"(limit {USER_LIMIT}/min), statuses {dict(user_statuses)}",
        f"one IP, 5 users, {3 * IP_LIMIT} turns: {ip_accepted} accepted "
        f"(limit {IP_LIMIT}/min), statuses {dict(ip_statuses)}",
        f"{fresh} requests with fresh cookies from one IP: {threads} threads created "
        f"(cap {THREAD_LIMIT}/hour), statuses {dict(fresh_statuses)}",
    ]
    metrics = {
        "user accepted": user_accepted,
        "ip accepted": ip_accepted,
        "threads created": threads,
        "fresh requests": fresh,
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def run(suite: Suite) -> list[Row]:
    return [run_project(suite, project) for project in suite.projects]
