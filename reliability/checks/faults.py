"""2. Provider faults: each fault in turn, in one thread, then the retries.

The backend runs with the template's retry setting, LLM_MAX_RETRIES=2, and a 1 s
LLM_TIMEOUT_SECONDS. Each fault is injected for as many attempts as the client makes
(3; once for the faults no client retries), so it reaches the user: HTTP 500, 429 with
Retry-After, a first byte later than the timeout, a refused connection (the fake provider
is stopped, then started again on the same port), a stream cut in the middle, an
invalid chunk, and a 401 whose body echoes the API key (as real providers do); the 500
body carries a stack trace and the key. Each must give one clear error event without
them, keep the user's message in the thread, and the next message in the same thread
must succeed with the whole history reaching the model.

Then the retries: a single 500, 429 or timeout must be invisible to the user (one more
attempt), and three in a row must give the error after three attempts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reliability.harness import Backend, Browser, Project, Turn, assistant_texts, user_texts
from reliability.suite import Row, Suite

CHECK = "2. Provider faults"
RETRY_CHECK = "2b. Transient faults and retries (LLM_MAX_RETRIES=2)"
TIMEOUT_SECONDS = 1
ATTEMPTS = 3  # LLM_MAX_RETRIES=2: the first try and two retries
FORBIDDEN_IN_ERRORS = ("Traceback", 'File "', "sk-", "Bearer", "Authorization")


@dataclass(frozen=True)
class FaultCase:
    name: str
    fault: str | None  # a Fault member name; None for the refused connection
    options: dict[str, float]
    expected: str  # a phrase the error message must contain
    allow_retry: bool
    times: int = ATTEMPTS  # how many attempts to break (faults after the headers: 1)


def _cases(key_variable: str) -> list[FaultCase]:
    return [
        FaultCase("HTTP 500", "HTTP_500", {}, "failed (HTTP 500)", True),
        FaultCase(
            "HTTP 429, Retry-After: 1",
            "RATE_LIMIT",
            {"retry_after": 1},
            "rate limiting requests (HTTP 429). Send your message again in 1 s",
            True,
        ),
        FaultCase(
            f"first byte after {TIMEOUT_SECONDS + 1.5:g} s (timeout {TIMEOUT_SECONDS} s)",
            "SLOW_FIRST_BYTE",
            {"seconds": TIMEOUT_SECONDS + 1.5},
            "did not answer in time",
            True,
        ),
        FaultCase("connection refused", None, {}, "Could not reach the model provider at", True),
        FaultCase("stream cut mid-reply", "CUT_STREAM", {}, "incomplete or invalid reply", True, 1),
        FaultCase("invalid chunk", "INVALID_CHUNK", {}, "incomplete or invalid reply", True, 1),
        FaultCase(
            "HTTP 401 echoing the key",
            "HTTP_401",
            {},
            f"rejected the API key (HTTP 401). Check {key_variable}",
            False,
            1,
        ),
    ]


class ProviderBodies:
    """Make the fake's error bodies carry what a careless app would pass on to users."""

    def __init__(self, suite: Suite) -> None:
        self.module = suite.fake_module
        self.saved = dict(self.module._ERROR_FAULTS)
        fault = self.module.Fault
        error = self.module._error
        self.module._ERROR_FAULTS[fault.HTTP_401] = (
            401,
            error(f"Incorrect API key provided: {suite.api_key}.", "invalid_request_error"),
        )
        self.module._ERROR_FAULTS[fault.HTTP_500] = (
            500,
            error(
                'Traceback (most recent call last):\n  File "/srv/model.py", line 1\n'
                f"RuntimeError: upstream key {suite.api_key} overloaded",
                "server_error",
            ),
        )

    def restore(self) -> None:
        self.module._ERROR_FAULTS.clear()
        self.module._ERROR_FAULTS.update(self.saved)


def _model_calls(suite: Suite) -> int:
    return len([r for r in suite.fake.requests if r.api])


def _history_problem(suite: Suite, browser: Browser, thread_id: str, sent: list[str]) -> str | None:
    """None when the stored thread and the model's last input both hold every message."""
    items = browser.items(thread_id)
    stored_users = user_texts(items)
    if stored_users != sent:
        return f"stored user messages {stored_users} != sent {sent}"
    last = [r for r in suite.fake.requests if r.api][-1]
    seen = last.messages_text()
    seen_users = [text for role, text in seen if role == "user"]
    if seen_users != sent:
        return f"the model saw user messages {seen_users}, expected {sent}"
    seen_assistant = [text for role, text in seen if role == "assistant"]
    stored_assistant = assistant_texts(items)
    # The model's last input ends before the reply it produced.
    if (
        seen_assistant != stored_assistant[: len(seen_assistant)]
        or len(seen_assistant) != len(stored_assistant) - 1
    ):
        return f"the model saw replies {seen_assistant}, stored {stored_assistant}"
    return None


def _error_problem(turn: Turn, case: FaultCase, suite: Suite) -> str | None:
    if turn.status != 200:
        return f"HTTP {turn.status}"
    if len(turn.errors) != 1:
        return f"{len(turn.errors)} error events ({turn.broken or 'stream complete'})"
    error = turn.errors[0]
    message = str(error.get("message") or "")
    if case.expected not in message:
        return f"error message {message!r} lacks {case.expected!r}"
    if bool(error.get("allow_retry")) != case.allow_retry:
        return f"allow_retry is {error.get('allow_retry')}"
    for secret in (suite.api_key, suite.session_secret, *FORBIDDEN_IN_ERRORS):
        if secret in message:
            return f"the error message shows {secret[:12]!r}"
    return None


def _inject(suite: Suite, case: FaultCase) -> None:
    fake = suite.fake
    if case.fault is None:
        fake.stop()
    else:
        fault = getattr(suite.fake_module.Fault, case.fault)
        fake.fail_next(fault, times=case.times, **case.options)


def _restore(suite: Suite, case: FaultCase) -> None:
    suite.fake.clear_faults()
    if case.fault is None:
        suite.fake.start()  # the same port: the provider is back


def run_faults(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    fake = suite.fake
    fake.reset()
    failures: list[str] = []
    counts = {"clear error": 0, "message kept": 0, "next turn ok": 0, "history intact": 0}
    details: dict[str, Any] = {}
    cases = _cases(project.key_variable)
    backend = suite.running(project, "faults")
    bodies = ProviderBodies(suite)
    try:
        with suite.browser(backend) as browser:
            first = browser.create_thread("before the faults")
            thread_id = first.thread_id
            sent = ["before the faults"]
            if first.errors:
                failures.append(f"the first turn failed: {first.errors}")
            for case in cases:
                _inject(suite, case)
                try:
                    during = browser.send(thread_id, f"during: {case.name}")
                finally:
                    _restore(suite, case)
                sent.append(f"during: {case.name}")
                problem = _error_problem(during, case, suite)
                message = during.errors[0].get("message") if during.errors else None
                details[case.name] = repr(message)
                if problem:
                    failures.append(f"{case.name}: {problem}")
                else:
                    counts["clear error"] += 1
                if f"during: {case.name}" in user_texts(browser.items(thread_id)):
                    counts["message kept"] += 1
                else:
                    failures.append(f"{case.name}: the user's message is not in the thread")
                after = browser.send(thread_id, f"after: {case.name}")
                sent.append(f"after: {case.name}")
                if after.status == 200 and not after.errors and after.reply_text:
                    counts["next turn ok"] += 1
                else:
                    failures.append(f"{case.name}: the next message failed: {after.errors}")
                    continue
                history = _history_problem(suite, browser, thread_id, sent)
                if history:
                    failures.append(f"{case.name}: {history}")
                else:
                    counts["history intact"] += 1
            alive = backend.alive()
    finally:
        bodies.restore()
        if not fake_running(suite):
            suite.fake.start()
    if not alive:
        failures.append("the backend died")
    n = len(cases)
    figures = [
        f"{n} faults, each on every attempt: " + ", ".join(c.name for c in cases),
        f"clear error event: {counts['clear error']}/{n}; user's message kept: "
        f"{counts['message kept']}/{n}",
        f"next message in the same thread succeeded: {counts['next turn ok']}/{n}, "
        f"with the whole history reaching the model: {counts['history intact']}/{n}",
        "API key, stack trace or provider body in an error event: "
        + str(sum(1 for f in failures if "shows" in f)),
    ]
    metrics = {"faults": n, **counts, "secrets shown": sum(1 for f in failures if "shows" in f)}
    return Row(
        CHECK, project.label, figures, failures, time.monotonic() - started, details, metrics
    )


def fake_running(suite: Suite) -> bool:
    return suite.fake._server is not None


@dataclass(frozen=True)
class RetryCase:
    name: str
    fault: str
    times: int
    options: dict[str, float]
    visible: bool  # whether the user must see an error
    expected: str = ""


RETRY_CASES = [
    RetryCase("one HTTP 500", "HTTP_500", 1, {}, False),
    RetryCase("one 429 (Retry-After: 1)", "RATE_LIMIT", 1, {"retry_after": 1}, False),
    RetryCase("one timeout", "SLOW_FIRST_BYTE", 1, {"seconds": TIMEOUT_SECONDS + 1.5}, False),
    RetryCase("three HTTP 500 in a row", "HTTP_500", 3, {}, True, "failed (HTTP 500)"),
    RetryCase("three 429 in a row", "RATE_LIMIT", 3, {"retry_after": 1}, True, "(HTTP 429)"),
]


def run_retries(suite: Suite, project: Project) -> Row:
    started = time.monotonic()
    fake = suite.fake
    fake.reset()
    failures: list[str] = []
    details: dict[str, Any] = {}
    held = 0
    backend: Backend = suite.running(project, "faults")
    with suite.browser(backend) as browser:
        thread_id = browser.create_thread("before").thread_id
        sent = ["before"]
        for case in RETRY_CASES:
            calls_before = _model_calls(suite)
            fake.fail_next(
                getattr(suite.fake_module.Fault, case.fault), times=case.times, **case.options
            )
            began = time.monotonic()
            turn = browser.send(thread_id, case.name)
            took = time.monotonic() - began
            fake.clear_faults()
            sent.append(case.name)
            attempts = _model_calls(suite) - calls_before
            expected_attempts = case.times + (0 if case.visible else 1)
            details[case.name] = f"{attempts} provider attempts, {took:.1f} s, errors {turn.errors}"
            problem = None
            if attempts != expected_attempts:
                problem = f"{attempts} provider attempts, expected {expected_attempts}"
            elif case.visible and not (
                len(turn.errors) == 1 and case.expected in str(turn.errors[0].get("message"))
            ):
                problem = f"expected the error {case.expected!r}, got {turn.errors}"
            elif not case.visible and (turn.errors or not turn.reply_text):
                problem = f"the user saw {turn.errors or 'no reply'}"
            elif case.fault == "RATE_LIMIT" and took < case.options["retry_after"] * (
                case.times - (1 if case.visible else 0)
            ):
                problem = f"Retry-After was not honoured ({took:.2f} s)"
            if problem:
                failures.append(f"{case.name}: {problem}")
            else:
                held += 1
        final = browser.send(thread_id, "after the retries")
        sent.append("after the retries")
        history = None if final.errors else _history_problem(suite, browser, thread_id, sent)
        if final.errors or history:
            failures.append(f"the last message: {final.errors or history}")
    invisible = [c for c in RETRY_CASES if not c.visible]
    visible = [c for c in RETRY_CASES if c.visible]
    figures = [
        f"invisible to the user (retried): {', '.join(c.name for c in invisible)}",
        f"shown as the error after 3 attempts: {', '.join(c.name for c in visible)}",
        f"behaved as expected: {held}/{len(RETRY_CASES)}; then the next message succeeded "
        f"with the whole history: {'yes' if not (final.errors or history) else 'NO'}",
    ]
    metrics = {"cases": len(RETRY_CASES), "as expected": held}
    return Row(
        RETRY_CHECK, project.label, figures, failures, time.monotonic() - started, details, metrics
    )


def run(suite: Suite) -> list[Row]:
    rows = [run_faults(suite, project) for project in suite.projects]
    rows += [run_retries(suite, project) for project in suite.projects]
    return rows
