"""Shared plumbing: rendering, child processes, statistics."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reliability.harness import free_port
from tests import provider_table

TEMPLATE = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SKIP_SMOKE = {"CHATKIT_TEMPLATE_SKIP_SMOKE": "1"}
# The provider keys a generated backend may read; every one gets the dummy key.
KEY_VARIABLES = provider_table.KEY_VARIABLES


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- statistics ---------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# --- rendering ------------------------------------------------------------------------


def clean_template_caches() -> list[str]:
    """Tool caches inside the project template would be rendered as project files."""
    removed = []
    project = TEMPLATE / "{{cookiecutter.project_slug}}"
    names = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}
    for path in sorted(project.rglob("*"), reverse=True):
        if path.is_dir() and path.name in names and "node_modules" not in path.parts:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path.relative_to(TEMPLATE)))
    return removed


def render(output_dir: Path, **answers: Any) -> Path:
    """Render the template with cookiecutter's API, the hook's install and smoke test off."""
    return render_with_output(output_dir, **answers)[0]


def render_with_output(output_dir: Path, **answers: Any) -> tuple[Path, str]:
    """`render`, and what the hooks printed (they write to file descriptor 1 directly)."""
    from cookiecutter.main import cookiecutter

    output_dir.mkdir(parents=True, exist_ok=True)
    with patched_env(SKIP_SMOKE), captured_fd1() as output:
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                extra_context={"run_smoke_test": False, **answers},
                output_dir=str(output_dir),
            )
        )
    return project, "".join(output)


@contextlib.contextmanager
def captured_fd1() -> Iterator[list[str]]:
    """Send file descriptor 1 (ours and our children's) to a temporary file; the yielded
    list holds its text once the block ends."""
    import tempfile

    text: list[str] = []
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as capture:
        os.dup2(capture.fileno(), 1)
        try:
            yield text
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            capture.seek(0)
            text.append(capture.read())


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- child processes --------------------------------------------------------------------


@dataclass
class Service:
    """A server in a process of its own, stopped (by its pid) when the block ends."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    health: str | None = "/health"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    launched_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def launch(self, log_dir: Path) -> Service:
        """Start the process; `wait_ready()` waits for it to answer."""
        self.log_path = log_dir / f"{self.name}.log"
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.launched_at = time.perf_counter()
        return self

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from launch until the health URL answered."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited on start:\n{self.log()}")
            try:
                if httpx.get(self.url + (self.health or "/"), timeout=1).status_code < 500:
                    return time.perf_counter() - self.launched_at
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer in {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def start(self, log_dir: Path, timeout: float = 120) -> Service:
        self.launch(log_dir)
        self.wait_ready(timeout)
        return self

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path and self.log_path.exists() else ""

    def stop(self, signal_int: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if signal_int:
            self.process.send_signal(2)
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fake_provider(backend: Path, log_dir: Path) -> Iterator[str]:
    """The generated project's fake provider in its own process; yields its base URL."""
    log = (log_dir / "fake.log").open("w")
    process = subprocess.Popen(
        [PYTHON, "-m", "benchmarks.servers.fake", str(backend)],
        cwd=TEMPLATE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(
                f"the fake provider did not start: {(log_dir / 'fake.log').read_text()}"
            )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def backend_env(fake_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment a generated backend runs with against the fake provider."""
    return {
        **dict.fromkeys(KEY_VARIABLES, "bench-key"),
        "LLM_BASE_URL": fake_url,
        "LLM_MAX_RETRIES": "0",
        "DATABASE_URL": database_url,
        "SESSION_SECRET": secrets.token_urlsafe(32),
        "MCP_SERVER_URL": "",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        "LOG_LEVEL": "WARNING",
        # The load runs more turns per minute from one IP than the default limits allow.
        "RATE_LIMIT_USER_TURNS_PER_MINUTE": "0",
        "RATE_LIMIT_IP_TURNS_PER_MINUTE": "0",
        "RATE_LIMIT_USER_TURNS_PER_DAY": "0",
        "RATE_LIMIT_IP_THREADS_PER_HOUR": "0",
        # The attachments section uploads more 50 MiB files than a user's day allows.
        "RATE_LIMIT_USER_UPLOADS_PER_MINUTE": "0",
        "RATE_LIMIT_USER_UPLOAD_BYTES_PER_DAY": "0",
        **extra,
    }


def run_load(
    url: str,
    protocol: str,
    conversations: int,
    turns: int = 5,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """One run of the load driver, in a process of its own."""
    command = [
        PYTHON,
        "-m",
        "benchmarks.load",
        "--url",
        url,
        "--protocol",
        protocol,
        "--conversations",
        str(conversations),
        "--turns",
        str(turns),
    ]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    result = subprocess.run(
        command, cwd=TEMPLATE, capture_output=True, text=True, check=False, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(f"the load driver failed:\n{result.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(result.stdout)
    if data["failures"]:
        raise RuntimeError(
            f"{data['failures']} turn(s) failed against {url}: {data['first_failures']}"
        )
    return data
