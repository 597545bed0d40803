"""The benchmark suite still runs end to end: `python -m benchmarks --quick`.

A smoke of the harness (tiny loads, one repetition): every section
but generate-to-verified, which needs the package index, and the frontend section, which
has a run of its own. The figures are not checked; that the report has every section and
every server is.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import PYTHON, TEMPLATE, run


def test_quick_run_writes_every_section(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    # Under four minutes on 2 busy cores (2026-12-02); the bound catches a hang.
    command = [PYTHON, "-m", "benchmarks", "--quick", "--output", str(report)]
    run(command, cwd=TEMPLATE, timeout=600)
    text = report.read_text(encoding="utf-8")
    for heading in (
        "## Goals",
        "## 1. Render time",
        "## 3. Streaming throughput and TTFT",
        "### Where the time goes",
        "### What each change bought",
        "## 9. Production settings: limits, metrics and JSON logs",
        "## 4. Store scaling",
        "## 5. Memory",
        "## 6. Start-up",
        "## 7. Attachments",
    ):
        assert heading in text, heading
    for server in ("generated backend (SQLite)", "docs-pattern ChatKit server", "relay floor"):
        assert server in text, server
    for server in ("limits, metrics, JSON logs off", "limits, metrics, JSON logs on"):
        assert f"| {server} |" in text, server
    assert "This is a `--quick` run" in text
    assert not re.search(r"\bnan\b|n/a", text), "a figure is missing"


def test_quick_frontend_section_loads_both_frontends(tmp_path: Path) -> None:
    """Left out of the bare --quick run (npm ci and two production builds): both frontends
    built, served (next start; nginx with the template's config) and loaded in Chromium."""
    report = tmp_path / "BENCHMARKS.md"
    # 76 to 191 s on 2 busy cores (2026-12-03), mostly npm ci and the builds.
    command = [PYTHON, "-m", "benchmarks", "--quick", "--only", "frontend", "--output", str(report)]
    run(command, cwd=TEMPLATE, timeout=600)
    text = report.read_text(encoding="utf-8")
    assert "## 8. The page" in text
    for page in ("ours, Next.js", "ours, Vite (nginx)"):
        assert f"| {page} |" in text, page
    assert not re.search(r"\bnan\b|n/a", text), "a figure is missing"
