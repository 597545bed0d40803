"""Fixtures for testing the template: render it, then run what it generated.

The suite runs in parallel (pytest-xdist, `--dist loadgroup`, see pyproject.toml). Tests
that share a module- or class-scoped fixture of their module, or one frontend build, run
on one worker, so nothing expensive is made twice; the slowest modules start first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# Renders skip the hook's install-and-smoke step unless a test asks for it.
FAST = {"run_smoke_test": False}

Render = Callable[..., Path]


def render_project(output_dir: Path, template: Path = TEMPLATE, **answers: object) -> Path:
    """Render `template` in this process with `answers` over the defaults (no smoke test).

    The tests' one in-process renderer (tests/project_support.generate is the CLI one).
    pytest-cookies' `cookies.bake()` would do the same, but it renders into a folder of its
    own choosing (test_pregen checks that a refused render leaves the folder it names
    empty) and returns errors instead of raising them.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    return Path(
        cookiecutter(
            str(template),
            no_input=True,
            extra_context={**FAST, **answers},
            output_dir=str(output_dir),
        )
    )


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Render the template with `answers` over the defaults; returns the project dir."""

    def _render(output_dir: Path | None = None, **answers: object) -> Path:
        return render_project(output_dir or tmp_path / "out", **answers)

    return _render


def run(
    command: list[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with its output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-8000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
        )
    return result


PYTHON = sys.executable

# --- one clean template tree, before any worker renders --------------------------------

PROJECT_DIR = "{{cookiecutter.project_slug}}"
CACHE_DIRS = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache", ".venv"}


def clean_template_tree() -> None:
    """Caches left in the template's project directory would be rendered as project files."""
    for path in sorted((TEMPLATE / PROJECT_DIR).rglob("*"), reverse=True):
        if path.is_dir() and path.name in CACHE_DIRS and "node_modules" not in path.parts:
            shutil.rmtree(path, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    # Once, in the controlling process: a worker deleting caches while another renders
    # would pull files from under its render. Nothing in the run writes caches there.
    if not hasattr(config, "workerinput"):
        clean_template_tree()


# --- parallel groups and order -----------------------------------------------------------

# What starts first (matched in order against "nodeid@group"): the longest units of work,
# so that no worker draws one late. Everything else follows in collection order.
SLOW_FIRST = [
    "tests/test_render.py::test_generated_suite",  # mostly waiting: one per worker
    "@test_hook.smoked",  # install, pre-commit, make smoke and make dev in turn
    "@frontend-nextjs",  # npm ci and two builds, then the browser tests
    "@test_reliability.",  # the quick reliability suite, once
    "@test_render.mypy_cache",  # the matrix renders, on one warm mypy cache
    "tests/test_benchmarks_smoke.py",
    "@frontend-vite",
    "tests/test_hook.py",
    "tests/test_upgrade.py",
    "tests/test_project_tooling.py",
]
SHARED_SCOPES = ("module", "class", "package", "session")


def shared_work(item: pytest.Item) -> list[str]:
    """What this test shares with others that must not be made twice: its frontend build,
    or the module- and class-scoped fixtures its own module defines."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    # A frontend is installed and built once per process (browser_support/frontend_build.py).
    if {"build", "stack"} & set(item.fixturenames) or (
        "kind" in params and item.nodeid.startswith("tests/test_frontends.py")
    ):
        return [f"frontend-{params.get('kind') or params.get('stack')}"]
    shared = []
    for name in item.fixturenames:
        definitions = item._fixtureinfo.name2fixturedefs.get(name, ())
        if not definitions:
            continue
        fixture = definitions[-1]
        # Plugins' and conftest's shared fixtures are cheap or made per worker on purpose.
        if fixture.scope in SHARED_SCOPES and fixture.baseid.endswith(".py"):
            value = params.get(name)
            # No brackets: xdist reads the group after the last "@" only past the last "]".
            shared.append(f"{Path(fixture.baseid).stem}.{name}" + (f"={value}" if value else ""))
    return shared


def xdist_groups(items: list[pytest.Item]) -> dict[str, str]:
    """nodeid -> group: tests that share anything, directly or through others, share one."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    work = {item.nodeid: shared_work(item) for item in items}
    for keys in work.values():
        for key in keys:
            parent[root(key)] = root(keys[0])
    members: dict[str, list[str]] = {}
    for key in list(parent):
        members.setdefault(root(key), []).append(key)
    names = {top: min(keys) for top, keys in members.items()}
    return {nodeid: names[root(keys[0])] for nodeid, keys in work.items() if keys}


def _rank(where: str) -> int:
    return next((n for n, part in enumerate(SLOW_FIRST) if part in where), len(SLOW_FIRST))


@pytest.hookimpl(tryfirst=True)  # before xdist turns the marks into groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    groups = xdist_groups(items)
    for item in items:
        if item.nodeid in groups:
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    # Stable: a module keeps its own order.
    items.sort(key=lambda item: _rank(f"{item.nodeid}@{groups.get(item.nodeid, '')}"))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`--dist loadgroup`, handing a worker its next unit only once it has run out.

    xdist's own keeps up to three tests queued per worker, and a unit of one long test
    (a generated suite) pulls the next long one in behind it while another worker idles.
    A worker needs one test queued behind the running one, so a unit of one test still
    brings its successor along.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class JustInTime(LoadGroupScheduling):  # type: ignore[misc]
        def _reschedule(self, node: Any) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    return JustInTime(config, log)
