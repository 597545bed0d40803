"""The shared state of one run, and what a check reports."""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from reliability.harness import (
    TEMPLATE,
    Backend,
    Browser,
    Database,
    Postgres,
    Project,
    Recorder,
    new_database,
)


@dataclass
class Row:
    """One line of the report: a check on one project, its figures and what failed."""

    check: str
    project: str
    figures: list[str]
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Extra figures for the report's detail section (e.g. status counts per category).
    details: dict[str, Any] = field(default_factory=dict)
    # The headline numbers, machine-readable (--json), for tests/test_reliability.py.
    metrics: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Sizes:
    fuzz_requests: int  # per project
    conversations: int
    turns: int
    disconnects: int  # one at a time, then as many at once
    crash_rounds: int
    stateless_turns: int
    upload_fuzz_requests: int  # per project
    concurrent_uploads: int
    upload_crash_rounds: int  # alternately a first upload and a replacing one
    action_fuzz_requests: int  # per project: widget actions and client tool outputs


FULL = Sizes(
    fuzz_requests=2000,
    conversations=50,
    turns=10,
    disconnects=20,
    crash_rounds=4,
    stateless_turns=10,
    upload_fuzz_requests=1200,
    concurrent_uploads=50,
    upload_crash_rounds=4,
    action_fuzz_requests=1000,
)
QUICK = Sizes(
    fuzz_requests=150,
    conversations=10,
    turns=3,
    disconnects=3,
    crash_rounds=1,
    stateless_turns=4,
    upload_fuzz_requests=200,
    concurrent_uploads=50,
    upload_crash_rounds=2,
    action_fuzz_requests=140,
)


UPLOAD_MAX_BYTES = 1024 * 1024

# The backend processes each project gets, started together at the beginning (startup
# is seconds of imports, so fewer and overlapping starts keep the run short), with their
# settings beyond the shared ones (fake provider URL, key, database, SESSION_SECRET).
ROLES: dict[str, dict[str, str]] = {
    # The template's defaults. Fuzzing, disconnects, concurrency, isolation and headers
    # run on it one after the other, as on a long-running server; it is process A of
    # the statelessness check.
    "main": {},
    # Process B of the statelessness check: another process on main's database.
    "peer": {},
    # Provider faults: a short timeout; LLM_MAX_RETRIES is the template's default, 2.
    "faults": {"LLM_TIMEOUT_SECONDS": "1", "LLM_MAX_RETRIES": "2"},
    # Killed with SIGKILL and restarted, on a database of its own.
    "crash": {},
    # The attachment rows (10-13), on a database of their own, with a 1 MiB limit so
    # that bodies past it stay small; killed mid-upload last.
    "uploads": {"ATTACHMENT_MAX_BYTES": str(UPLOAD_MAX_BYTES)},
}
SHARES_MAIN_DATABASE = {"main", "peer"}
# The processes start together and import for seconds each; on a busy machine (CI, two
# cores) the last of them may need far longer than one alone.
START_TIMEOUT = 180.0


@dataclass
class Suite:
    quick: bool
    sizes: Sizes
    workdir: Path
    projects: list[Project]
    fake: Any  # the project's FakeProvider, running in this process
    fake_module: ModuleType
    postgres: Postgres
    seed: int
    frontends: bool = False  # run the frontend build test (needs npm)
    template: Path = TEMPLATE  # the template under test
    api_key: str = field(default_factory=lambda: f"sk-reliability-{secrets.token_hex(20)}")
    session_secret: str = field(default_factory=lambda: f"session-{secrets.token_urlsafe(36)}")
    backends: list[Backend] = field(default_factory=list)
    roles: dict[tuple[str, str], Backend] = field(default_factory=dict)
    recorder: Recorder = field(init=False)
    started: float = field(default_factory=time.monotonic)
    # What a check started at the beginning of the run (checks/__init__.py PREPARE), by name.
    prepared: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.recorder = Recorder({"API key": self.api_key, "SESSION_SECRET": self.session_secret})

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[reliability {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    def database(self, project: Project) -> Database:
        return new_database(project.store, self.workdir, self.postgres)

    def backend(
        self,
        project: Project,
        database: Database,
        name: str,
        *,
        provider_url: str | None = None,
        session_secret: str | None = None,
        **env: str,
    ) -> Backend:
        """A backend (not started) whose log the secrets check reads at the end."""
        backend = Backend(
            project,
            database,
            provider_url=provider_url or self.fake.base_url,
            api_key=self.api_key,
            session_secret=session_secret or self.session_secret,
            log_dir=self.workdir / "logs",
            name=f"{project.store}-{name}-{len(self.backends)}",
            extra_env=env,
        )
        self.backends.append(backend)
        return backend

    def launch_roles(self, needed: set[str]) -> None:
        """Start the processes of these roles for every project, without waiting for them
        (a run of some checks starts only what they use: fewer starts competing)."""
        for project in self.projects:
            main_database = self.database(project)
            for role, env in ROLES.items():
                if role not in needed:
                    continue
                database = main_database if role in SHARES_MAIN_DATABASE else self.database(project)
                backend = self.backend(project, database, role, **env)
                backend.launch()
                self.roles[(project.store, role)] = backend

    def running(self, project: Project, role: str) -> Backend:
        """The project's backend for `role`, once it answers /health.

        A process that died earlier is not restarted: the check using it fails.
        """
        backend = self.roles[(project.store, role)]
        if backend.process is None:
            return backend.start(START_TIMEOUT)
        return backend.wait_ready(START_TIMEOUT)

    def browser(self, backend: Backend) -> Browser:
        return Browser(backend.url, self.recorder)
