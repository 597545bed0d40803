"""8. Secrets and headers, over everything the run produced.

Runs last. The API key and SESSION_SECRET that every backend of the run was given must
appear in none of the HTTP responses the suite received (bodies and headers, every
check's) and in none of the backends' logs (stdout and stderr at LOG_LEVEL=INFO). Error
events must show no stack trace. Every response must carry X-Content-Type-Options:
nosniff and no Server header, also for the app's own 404/405/413 and the docs pages.
Every documented way to start uvicorn must pass --no-server-header (the app cannot drop
uvicorn's header itself). The frontend bundles are checked by
tests/test_frontends.py::test_build_keeps_backend_secrets_out; `--frontends` runs it here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import httpx

from reliability.harness import TEMPLATE, Browser, Project
from reliability.suite import Row, Suite

CHECK = "8. Secrets, error bodies and headers"
DOCS = ("README.md", "Makefile", "scripts/dev.py", "backend/Dockerfile", "docker-compose.yml")
UVICORN_RUN = re.compile(r"uvicorn[^\n]*app\.main:app|\"uvicorn\",?\s*\n?\s*\"app\.main:app\"")
FRONTEND_TEST = "tests/test_frontends.py::test_build_keeps_backend_secrets_out"


def _documented_commands(project: Project) -> tuple[int, list[str]]:
    """uvicorn invocations in the project's docs and scripts, and those without the flag."""
    found, missing = 0, []
    for name in DOCS:
        path = project.root / name
        if not path.exists():
            continue
        text = path.read_text()
        if name == "scripts/dev.py":
            if '"uvicorn"' in text:
                found += 1
                if '"--no-server-header"' not in text:
                    missing.append(name)
            continue
        for line in text.splitlines():
            if "uvicorn" in line and "app.main:app" in line:
                found += 1
                if "--no-server-header" not in line:
                    missing.append(f"{name}: {line.strip()[:100]}")
    return found, missing


def _extra_responses(suite: Suite, project: Project) -> list[str]:
    """Responses the other checks do not produce: docs, 404, 405, 413, a preflight."""
    problems: list[str] = []
    backend = suite.running(project, "main")
    with Browser(backend.url, suite.recorder) as browser:
        requests = [
            ("GET", "/health", None),
            ("GET", "/", None),
            ("GET", "/docs", None),
            ("GET", "/openapi.json", None),
            ("GET", "/chatkit", None),
            ("GET", "/no-such-page", None),
            ("POST", "/chatkit", b"x" * 1_100_000),
        ]
        for method, path, body in requests:
            response = browser.http.request(method, path, content=body)
            suite.recorder.record(response.status_code, response.headers, response.content, path)
        preflight = browser.http.options(
            "/chatkit",
            headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"},
        )
        suite.recorder.record(
            preflight.status_code, preflight.headers, preflight.content, "OPTIONS"
        )
        if httpx.get(f"{backend.url}/health").headers.get("server"):
            problems.append("the production command still sends a Server header")
    return problems


def _frontends() -> tuple[str, bool]:
    if shutil.which("npm") is None:
        return "npm is not installed here: not run", False
    result = subprocess.run(
        [sys.executable, "-m", "pytest", FRONTEND_TEST, "-q", "-p", "no:cacheprovider"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    summary = (result.stdout.strip().splitlines() or ["no output"])[-1]
    return summary, result.returncode == 0


def run(suite: Suite) -> list[Row]:
    started = time.monotonic()
    failures: list[str] = []
    for project in suite.projects:
        failures += _extra_responses(suite, project)

    recorder = suite.recorder
    for name, count in recorder.leaks.items():
        failures.append(f"{name} appeared in {count} HTTP responses")
    if recorder.without_nosniff:
        failures.append(
            f"{recorder.without_nosniff} responses lack X-Content-Type-Options: nosniff"
        )
    if recorder.server_headers:
        failures.append(f"Server headers sent: {dict(recorder.server_headers)}")
    if recorder.tracebacks:
        failures.append(f"{recorder.tracebacks} responses show a stack trace")
    failures += recorder.examples[:5] if failures else []

    log_bytes = 0
    log_hits: dict[str, int] = {}
    for backend in suite.backends:
        text = backend.log_text()
        log_bytes += len(text)
        for name, secret in recorder.secrets.items():
            if secret in text:
                log_hits[name] = log_hits.get(name, 0) + text.count(secret)
    for name, count in log_hits.items():
        failures.append(f"{name} appears {count} times in the backends' INFO logs")

    found, missing = 0, []
    for project in suite.projects:
        n, lacking = _documented_commands(project)
        found += n
        missing += [f"{project.label}: {m}" for m in lacking]
    failures += [f"runs uvicorn without --no-server-header: {m}" for m in missing]

    if suite.frontends:
        frontend_summary, frontend_ok = _frontends()
        if not frontend_ok:
            failures.append(f"{FRONTEND_TEST}: {frontend_summary}")
        frontend_text = f"{FRONTEND_TEST}: {frontend_summary}"
    else:
        frontend_text = f"frontend bundles: checked by {FRONTEND_TEST} (run with --frontends)"

    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(recorder.statuses.items()))
    figures = [
        f"{recorder.responses} HTTP responses from {len(suite.backends)} backend processes "
        f"({statuses})",
        f"API key / SESSION_SECRET in responses: {recorder.leaks.get('API key', 0)} / "
        f"{recorder.leaks.get('SESSION_SECRET', 0)}; in {log_bytes // 1024} KB of INFO logs: "
        f"{log_hits.get('API key', 0)} / {log_hits.get('SESSION_SECRET', 0)}",
        f"error events seen: {recorder.error_events}; responses with a stack trace: "
        f"{recorder.tracebacks}",
        f"without nosniff: {recorder.without_nosniff}; with a Server header: "
        f"{sum(recorder.server_headers.values())}",
        f"documented uvicorn commands: {found}, without --no-server-header: {len(missing)}",
        frontend_text,
    ]
    metrics = {
        "responses": recorder.responses,
        "secrets in responses": sum(recorder.leaks.values()),
        "secrets in logs": sum(log_hits.values()),
        "stack traces": recorder.tracebacks,
        "without nosniff": recorder.without_nosniff,
        "server headers": sum(recorder.server_headers.values()),
        "commands without --no-server-header": len(missing),
    }
    return [Row(CHECK, "both", figures, failures, time.monotonic() - started, {}, metrics)]
