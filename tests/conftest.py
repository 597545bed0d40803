"""Fixtures for testing the template: render it, then run what it generated."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
# Renders skip the hook's install-and-smoke step unless a test asks for it.
FAST = {"run_smoke_test": False}

Render = Callable[..., Path]


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Render the template with `answers` over the defaults; returns the project dir."""

    def _render(output_dir: Path | None = None, **answers: object) -> Path:
        out = output_dir or tmp_path / "out"
        out.mkdir(parents=True, exist_ok=True)
        return Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                extra_context={**FAST, **answers},
                output_dir=str(out),
            )
        )

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
