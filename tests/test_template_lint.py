"""The template's own Python (hooks, tests, suites) is ruff-clean, like what it generates."""

from __future__ import annotations

import shutil

from tests.conftest import TEMPLATE, run


def test_ruff_check_and_format() -> None:
    ruff = shutil.which("ruff") or "ruff"
    run([ruff, "check", "."], cwd=TEMPLATE)
    run([ruff, "format", "--check", "."], cwd=TEMPLATE)
