"""docs/RELIABILITY.md: the table of every check with its figures, the date and versions."""

from __future__ import annotations

import datetime as dt
import platform
import re
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

from reliability.harness import TEMPLATE, Postgres
from reliability.suite import Row, Suite

PACKAGES = (
    "openai-chatkit",
    "openai-agents",
    "openai",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "httpx",
    "hypothesis",
    "cookiecutter",
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _template_commit(template: Path) -> str:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=template, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted changes" if git("status", "--porcelain") else "")


def _order(row: Row) -> tuple[int, str]:
    match = re.match(r"(\d+)([a-z]?)\.", row.check)
    return (int(match.group(1)), match.group(2)) if match else (99, row.check)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(
    path: Path,
    suite: Suite,
    rows: list[Row],
    selected: list[str],
    duration: float,
    postgres: Postgres,
) -> None:
    try:
        pg_version = postgres.version()
    except Exception as error:
        pg_version = f"unreachable ({type(error).__name__})"
    rows = sorted(rows, key=_order)  # the numbering, whatever the run order
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    passed = sum(row.passed for row in rows)
    mode = "quick (CI)" if suite.quick else "full"
    lines = [
        "# Reliability and security report",
        "",
        'Written by `python -m reliability` (see the README\'s "Reliability" section); do not',
        "edit by hand. Every figure below was measured in the run described here, against",
        "freshly rendered projects whose backends ran as real uvicorn processes on loopback",
        "(started with the Dockerfile's CMD flags), talking to the generated project's loopback",
        "fake provider.",
        "",
        f"- Date: {now}; mode: {mode}; duration: {duration:.0f} s; fuzzing seed: {suite.seed}",
        f"- Result: **{passed} of {len(rows)} passed**"
        + ("" if len(selected) > 1 else f" (only the `{selected[0]}` check ran)"),
        f"- Template commit: {_template_commit(suite.template)}"
        + ("" if suite.template == TEMPLATE else f" ({suite.template})"),
        "- Projects: "
        + ", ".join(f"{p.label} (`llm_provider={p.provider}`)" for p in suite.projects),
        f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
        f"SQLite {sqlite3.sqlite_version}; PostgreSQL {pg_version}",
        "- Packages: " + ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
        "",
        "| Check | Project | Figures | Result |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        figures = "<br>".join(_cell(figure) for figure in row.figures)
        result = "PASS" if row.passed else "**FAIL**"
        lines.append(f"| {_cell(row.check)} | {row.project} | {figures} | {result} |")
    failed = [row for row in rows if not row.passed]
    if failed:
        lines += ["", "## Failures", ""]
        for row in failed:
            lines.append(f"### {row.check} ({row.project})")
            lines.append("")
            for failure in row.failures:
                lines += ["```", failure.strip()[:4000], "```", ""]
    detailed = [row for row in rows if row.details]
    if detailed:
        lines += ["", "## Details", ""]
        for row in detailed:
            lines += [f"### {row.check} ({row.project})", ""]
            for key, value in row.details.items():
                lines.append(f"- {key}: {value}")
            lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
