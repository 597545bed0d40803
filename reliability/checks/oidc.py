"""15. The JWT attack matrix against a running backend in AUTH_MODE=oidc.

The generated project's loopback OpenID provider runs in a process of its own
(reliability/oidc_issuer_process.py), a uvicorn backend trusts it (OIDC_ISSUER,
OIDC_AUDIENCE; OIDC_JWKS_REFRESH_SECONDS=1 so that a key rotation is picked up within the
row). Two users sign in with valid tokens; alice holds a thread. Then, from outside:
- every attack token of the project's own matrix (backend/tests/test_oidc.py ATTACKS:
  expired, not yet valid, wrong issuer and audience, alg none, HS256 with the public key,
  unknown kid, tampered payload and signature...), missing and malformed Authorization
  headers, and a valid session cookie alone or beside an expired token, each on four
  operations (create a thread, list, read alice's thread and its items): every answer a
  401 with a JSON error, WWW-Authenticate and no cookie, never a 5xx, nothing reaching
  the model;
- a key rotation: the withdrawn key's token refused, its successor's accepted (one JWKS
  refetch); a flood of tokens with random kids costs the issuer at most one JWKS fetch
  per OIDC_JWKS_REFRESH_SECONDS;
- bob, validly signed in, on alice's thread: every read and change a 404, alice's thread
  intact afterwards.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reliability.harness import COOKIE, Backend, Browser, Project, user_input
from reliability.suite import START_TIMEOUT, Row, Suite

CHECK = "15. JWT attack matrix (AUTH_MODE=oidc)"
HELPER = Path(__file__).resolve().parents[1] / "oidc_issuer_process.py"
REFRESH_SECONDS = 1.0
RANDOM_KIDS = 30
MALFORMED_HEADERS = ("Basic YWxpY2U6cHc=", "Bearer", "bearer", "token", "Bearer not-a-jwt")


class Issuer:
    """The project's loopback OpenID provider, spoken to over the helper's stdin."""

    def __init__(self, project: Project, session_secret: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HELPER)],
            cwd=project.backend_dir,
            env={"PATH": "/usr/bin:/bin", "SESSION_SECRET": session_secret},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self._line()
        self.url: str = first["url"]
        self.audience: str = first["audience"]

    def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the OpenID provider helper exited")
        return dict(json.loads(line))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Matrix:
    """Requests that must all be refused, counted by how they were answered."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.requests = 0
        self.refused = 0
        self.server_errors = 0
        self.problems: list[str] = []

    def expect_401(
        self, name: str, headers: dict[str, str], thread_id: str, only: str | None = None
    ) -> None:
        """`headers` on the four operations (or `only` one of them): each must be refused."""
        operations = {
            "threads.create": {"input": user_input(f"attack {name}")},
            "threads.list": {},
            "threads.get_by_id": {"thread_id": thread_id},
            "items.list": {"thread_id": thread_id},
        }
        for op, params in operations.items():
            if only is not None and op != only:
                continue
            body = json.dumps({"type": op, "params": params})
            reply = self.browser.post(body, headers)
            self.requests += 1
            problem = _refusal_problem(reply.status, reply.headers, reply.body)
            if reply.status >= 500:
                self.server_errors += 1
            if problem:
                self.problems.append(f"{name}, {op}: {problem}")
            else:
                self.refused += 1


def _refusal_problem(status: int, headers: Any, body: bytes) -> str:
    if status != 401:
        return f"HTTP {status}: {body[:200]!r}"
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"401 without a JSON error: {body[:200]!r}"
    if code != "unauthorized":
        return f"401 with error code {code!r}"
    if not headers.get("www-authenticate", "").startswith("Bearer"):
        return "401 without WWW-Authenticate: Bearer"
    if headers.get("set-cookie"):
        return "401 that sets a cookie"
    return ""


def _signed_in(backend_url: str, suite: Suite, token: str) -> Browser:
    browser = Browser(backend_url, suite.recorder)
    browser.http.headers["authorization"] = f"Bearer {token}"
    return browser


def _isolation(bob: Browser, thread_id: str) -> tuple[int, list[str]]:
    """bob on alice's thread: how many operations, and those not answered 404."""
    attempts = {
        "threads.get_by_id": {"thread_id": thread_id},
        "items.list": {"thread_id": thread_id},
        "threads.update": {"thread_id": thread_id, "title": "pwned"},
        "threads.delete": {"thread_id": thread_id},
        "threads.add_user_message": {"thread_id": thread_id, "input": user_input("mine now")},
    }
    leaks = []
    for op, params in attempts.items():
        reply = bob.post(json.dumps({"type": op, "params": params}))
        if reply.status != 404:
            leaks.append(f"bob's {op} on alice's thread: HTTP {reply.status}")
    return len(attempts), leaks


def start(suite: Suite, project: Project) -> tuple[Issuer, Backend]:
    """The project's OpenID provider, and a backend trusting it (launched, not yet up)."""
    issuer = Issuer(project, suite.session_secret)
    backend = suite.backend(
        project,
        suite.database(project),
        "oidc",
        AUTH_MODE="oidc",
        OIDC_ISSUER=issuer.url,
        OIDC_AUDIENCE=issuer.audience,
        OIDC_JWKS_REFRESH_SECONDS=str(REFRESH_SECONDS),
    )
    backend.launch()
    return issuer, backend


def run_project(suite: Suite, project: Project, issuer: Issuer, backend: Backend) -> Row:
    started = time.monotonic()
    suite.fake.reset()
    failures: list[str] = []
    try:
        backend.wait_ready(START_TIMEOUT)
        tokens = issuer.ask("mint alice bob")["tokens"]
        alice = _signed_in(backend.url, suite, tokens["alice"])
        bob = _signed_in(backend.url, suite, tokens["bob"])
        first = alice.create_thread("alice's own thread")
        thread_id = first.thread_id
        if first.status != 200 or first.errors or not first.reply_text:
            failures.append(f"alice's first turn: HTTP {first.status}, errors {first.errors}")
        if bob.threads():
            failures.append("bob sees threads he never made")

        # The key rotation first: it needs the one refetch an unknown kid may cause.
        time.sleep(REFRESH_SECONDS + 0.1)
        rotated = issuer.ask("rotate")
        before = issuer.ask("stats")["jwks_requests"]
        # alice with a token of the successor key: still alice. bob too, from here on.
        alice.http.headers["authorization"] = f"Bearer {rotated['new']}"
        successor_ok = [t["id"] for t in alice.threads()] == [thread_id]
        refetches = issuer.ask("stats")["jwks_requests"] - before
        if not successor_ok:
            failures.append("the successor key's token is not alice")
        bob.http.headers["authorization"] = f"Bearer {issuer.ask('mint bob')['tokens']['bob']}"

        with Browser(backend.url, suite.recorder) as attacker:
            matrix = Matrix(attacker)
            model_calls = len(suite.fake.requests)
            attacks = issuer.ask("attacks")["tokens"]
            for name, token in attacks.items():
                matrix.expect_401(name, {"authorization": f"Bearer {token}"}, thread_id)
            matrix.expect_401(
                "withdrawn key", {"authorization": f"Bearer {rotated['old']}"}, thread_id
            )
            matrix.expect_401("no Authorization", {}, thread_id)
            for header in MALFORMED_HEADERS:
                matrix.expect_401(f"Authorization: {header}", {"authorization": header}, thread_id)
            cookie = issuer.ask("cookie usr_alice")["cookie"]
            attacker.http.cookies.set(COOKIE, cookie, domain="127.0.0.1", path="/")
            matrix.expect_401("session cookie alone", {}, thread_id)
            expired = attacks["expired"]
            matrix.expect_401(
                "session cookie + expired token", {"authorization": f"Bearer {expired}"}, thread_id
            )
            attacker.http.cookies.clear()
            flood_started = time.monotonic()
            fetches_before = issuer.ask("stats")["jwks_requests"]
            for _ in range(RANDOM_KIDS):
                forged = _with_kid(attacks["unknown-kid"], secrets.token_hex(8))
                headers = {"authorization": f"Bearer {forged}"}
                matrix.expect_401("random kid", headers, thread_id, only="threads.list")
            flood_seconds = time.monotonic() - flood_started
            flood_fetches = issuer.ask("stats")["jwks_requests"] - fetches_before
            reached_model = len(suite.fake.requests) - model_calls
        failures += matrix.problems[:10]
        allowed_fetches = 1 + int(flood_seconds / REFRESH_SECONDS)
        if flood_fetches > allowed_fetches:
            failures.append(
                f"{RANDOM_KIDS} random kids in {flood_seconds:.1f} s cost {flood_fetches} JWKS "
                f"fetches (at most {allowed_fetches})"
            )
        if reached_model:
            failures.append(f"{reached_model} refused requests reached the model")

        alice_view = (alice.threads(), alice.items(thread_id))
        isolation_attempts, leaks = _isolation(bob, thread_id)
        failures += leaks
        intact = (alice.threads(), alice.items(thread_id)) == alice_view
        if not intact:
            failures.append("alice's thread changed")
        alive = backend.alive()
        if not alive:
            failures.append("the backend died")
        for browser in (alice, bob):
            browser.close()
    finally:
        backend.stop()
        issuer.stop()

    figures = [
        f"uvicorn in AUTH_MODE=oidc on {project.label}, trusting the project's loopback "
        "OpenID provider (tests/oidc_issuer.py) in its own process",
        f"{len(attacks)} attack tokens (tests/test_oidc.py ATTACKS: {', '.join(attacks)}), "
        f"the withdrawn key, no/5 malformed Authorization headers, a valid session cookie "
        f"alone and with an expired token, each on 4 operations, + {RANDOM_KIDS} random kids",
        f"requests {matrix.requests}: 401 with a JSON error and WWW-Authenticate "
        f"{matrix.refused}, otherwise {matrix.requests - matrix.refused}, 5xx "
        f"{matrix.server_errors}; reached the model: {reached_model}",
        f"key rotation: successor accepted {'yes' if successor_ok else 'NO'} "
        f"({refetches} JWKS refetch), withdrawn key refused; {RANDOM_KIDS} random kids in "
        f"{flood_seconds:.1f} s: {flood_fetches} JWKS fetches",
        f"bob on alice's thread: {isolation_attempts} operations, not 404: {len(leaks)}; "
        f"alice's thread intact: {'yes' if intact else 'NO'}",
    ]
    metrics = {
        "attacks": len(attacks),
        "requests": matrix.requests,
        "refused": matrix.refused,
        "5xx": matrix.server_errors,
        "reached model": reached_model,
        "successor ok": int(successor_ok),
        "flood fetches over limit": max(0, flood_fetches - allowed_fetches),
        "isolation attempts": isolation_attempts,
        "isolation leaks": len(leaks),
        "intact": int(intact),
    }
    return Row(CHECK, project.label, figures, failures, time.monotonic() - started, {}, metrics)


def _with_kid(token: str, kid: str) -> str:
    """`token` with another kid in its header."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    decoded["kid"] = kid
    encoded = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    return ".".join([encoded, payload, signature])


def prepare(suite: Suite) -> list[tuple[Project, Issuer, Backend]]:
    """Each project's provider and backend, launched at once (their imports overlap)."""
    return [(project, *start(suite, project)) for project in suite.projects]


def run(suite: Suite) -> list[Row]:
    started = suite.prepared.pop("oidc", None) or prepare(suite)
    return [run_project(suite, project, *pair) for project, *pair in started]
