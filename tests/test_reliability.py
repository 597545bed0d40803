"""The reliability suite's quick mode, in CI: any regression in what it measures fails.

`python -m reliability --quick` renders a SQLite and a PostgreSQL project, runs their
backends as uvicorn processes against the loopback fake provider and attacks them (see
reliability/__init__.py and docs/RELIABILITY.md). Here it runs once per session, writes
its report and rows to a temporary folder (docs/RELIABILITY.md is the full run's), and
each test below holds one check to its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import TEMPLATE

QUICK_TIMEOUT = 900  # the quick run took 459 s on 2 busy cores (2026-12-02)
Rows = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Rows, str]:
    out = tmp_path_factory.mktemp("reliability")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability",
            "--quick",
            "--output",
            str(out / "RELIABILITY.md"),
            "--json",
            str(out / "rows.json"),
        ],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT,
        check=False,
    )
    assert (out / "rows.json").exists(), f"the suite did not finish:\n{result.stderr[-6000:]}"
    rows = {
        (row["check"].split(".")[0], row["project"]): row
        for row in json.loads((out / "rows.json").read_text())
    }
    report = (out / "RELIABILITY.md").read_text()
    # Exit status 1 means a failed check; the tests below say which.
    assert result.returncode in (0, 1), result.stderr[-6000:]
    return rows, report


def row(quick_run: tuple[Rows, str], number: str, project: str) -> dict[str, Any]:
    rows, _ = quick_run
    found = rows.get((number, project))
    assert found is not None, f"no row {number} for {project}: {sorted(rows)}"
    assert found["failures"] == [], "\n".join(found["failures"])
    return found["metrics"]


PROJECTS = ["SQLite", "PostgreSQL"]


@pytest.mark.parametrize("project", PROJECTS)
def test_malformed_input_never_gets_a_5xx(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "1", project)
    assert metrics["requests"] >= 150
    assert metrics["5xx"] == 0
    assert metrics["transport errors"] == 0
    assert metrics["unhandled exceptions"] == 0
    assert metrics["worker alive"] == 1 and metrics["health"] == 200
    assert metrics["reads"] == 0 and metrics["changed"] == 0
    assert metrics["broken threads"] == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_provider_faults_give_clear_errors(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "2", project)
    n = metrics["faults"]
    assert n == 7
    assert metrics["clear error"] == metrics["message kept"] == n
    assert metrics["next turn ok"] == metrics["history intact"] == n
    assert metrics["secrets shown"] == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_transient_faults_are_retried(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "2b", project)
    assert metrics["as expected"] == metrics["cases"] == 5


@pytest.mark.parametrize("project", PROJECTS)
def test_disconnects_leak_nothing(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "3", project)
    assert metrics["disconnects"] >= 6
    assert metrics["leaks"] == 0
    assert metrics["inconsistent threads"] == 0
    assert metrics["error log lines"] == 0
    assert metrics["retry ok"] == metrics["history ok"] == 1


@pytest.mark.parametrize("project", PROJECTS)
def test_concurrent_conversations_lose_nothing(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "4", project)
    assert metrics["turns"] == 30
    assert metrics["failed turns"] == 0
    assert metrics["items expected"] == metrics["items listed"] == metrics["items stored"] == 60
    assert metrics["duplicated"] == metrics["out of order"] == 0
    assert metrics["database is locked"] == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_kill_9_loses_no_completed_turn(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "5", project)
    assert metrics["kills"] >= 1
    assert metrics["completed found"] == metrics["completed expected"] > 0
    assert metrics["interrupted kept"] == metrics["continued"] == metrics["interrupted"]
    assert metrics["half-written"] == 0
    assert metrics["integrity ok"] == metrics["kills"]


@pytest.mark.parametrize("project", PROJECTS)
def test_two_processes_behave_as_one(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "6", project)
    assert metrics["cookies issued"] == 1
    assert metrics["turns with full history"] == metrics["views agreeing"] == metrics["turns"]
    assert metrics["same as one process"] == 1


@pytest.mark.parametrize("project", PROJECTS)
def test_users_are_isolated(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "7", project)
    assert metrics["attempts"] >= 19
    assert metrics["reads"] == metrics["changes"] == 0
    assert metrics["forged cookies"] >= 11 and metrics["forged accepted"] == 0


def test_no_secrets_and_safe_headers(quick_run: tuple[Rows, str]) -> None:
    metrics = row(quick_run, "8", "both")
    assert metrics["responses"] > 500
    assert metrics["secrets in responses"] == metrics["secrets in logs"] == 0
    assert metrics["stack traces"] == 0
    assert metrics["without nosniff"] == metrics["server headers"] == 0
    assert metrics["commands without --no-server-header"] == 0


def test_invalid_template_answers_are_refused(quick_run: tuple[Rows, str]) -> None:
    metrics = row(quick_run, "9", "template")
    assert metrics["refused"] == metrics["with the message"] == metrics["cases"] >= 20
    assert metrics["left behind"] == 0
    assert metrics["control created"] == 1


@pytest.mark.parametrize("project", PROJECTS)
def test_malformed_uploads_never_get_a_5xx(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "10", project)
    # The quick run's share; the full run sends 1,200 cases a project (the report says so).
    assert metrics["cases"] >= 200
    assert metrics["5xx"] == metrics["problems"] == metrics["unhandled exceptions"] == 0
    assert metrics["worker alive"] == 1 and metrics["health"] == 200
    assert metrics["failed uploads"] > 0 and metrics["failed uploads readable"] == 0
    assert metrics["changed"] == metrics["new files"] == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_attachments_are_isolated(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "11", project)
    assert metrics["attempts"] == 21
    assert metrics["reads"] == metrics["changes"] == metrics["not 404"] == 0
    assert metrics["intact"] == 3


@pytest.mark.parametrize("project", PROJECTS)
def test_kill_9_mid_upload_leaves_nothing_attachable(
    quick_run: tuple[Rows, str], project: str
) -> None:
    metrics = row(quick_run, "12", project)
    assert metrics["first uploads"] >= 1 and metrics["replaced"] >= 1
    assert metrics["readable"] == metrics["attached"] == 0
    assert metrics["old file intact"] == metrics["replaced"]
    assert metrics["retry ok"] == metrics["integrity ok"] == metrics["kills"]


@pytest.mark.parametrize("project", PROJECTS)
def test_concurrent_uploads_lose_nothing(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "13", project)
    assert metrics["uploads"] == 50
    assert metrics["failed uploads"] == 0 and metrics["identical"] == 50
    assert metrics["database is locked"] == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_limits_hold_across_two_processes(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "14", project)
    # Limits 10 turns/min per user, 30 per IP, 20 new threads/hour per IP (checks/limits.py).
    assert abs(metrics["user accepted"] - 10) <= 1
    assert abs(metrics["ip accepted"] - 30) <= 1
    assert metrics["threads created"] <= 20
    assert metrics["fresh requests"] >= 300


@pytest.mark.parametrize("project", PROJECTS)
def test_every_jwt_attack_gets_401(quick_run: tuple[Rows, str], project: str) -> None:
    metrics = row(quick_run, "15", project)
    # The project's own matrix (backend/tests/test_oidc.py ATTACKS), 15 tokens today.
    assert metrics["attacks"] >= 15
    assert metrics["refused"] == metrics["requests"] >= 4 * (metrics["attacks"] + 9)
    assert metrics["5xx"] == metrics["reached model"] == 0
    assert metrics["successor ok"] == 1
    assert metrics["flood fetches over limit"] == 0
    assert metrics["isolation attempts"] == 5 and metrics["isolation leaks"] == 0
    assert metrics["intact"] == 1


@pytest.mark.parametrize("project", PROJECTS)
def test_json_logs_hold_no_message_text_and_no_secrets(
    quick_run: tuple[Rows, str], project: str
) -> None:
    metrics = row(quick_run, "16", project)
    # The quick run's share; the full run writes 1 MB a project (the report says so).
    assert metrics["log bytes"] >= metrics["target bytes"] >= 128 * 1024
    assert metrics["markers"] >= metrics["turns"] > 100
    assert metrics["markers found"] == metrics["secrets found"] == 0
    # A bearer token, a cookie and its signature per browser (4 turns each), and 3 settings.
    assert metrics["secrets"] >= 3 * (metrics["turns"] // 4) + 3
    assert metrics["not json"] == 0
    assert metrics["turn lines"] >= metrics["turns"] - metrics["refused 413"]
    assert metrics["refused 413"] > 0


@pytest.mark.parametrize("project", PROJECTS)
def test_fuzzed_widget_actions_and_tool_outputs_change_nothing_of_others(
    quick_run: tuple[Rows, str], project: str
) -> None:
    metrics = row(quick_run, "17", project)
    assert metrics["requests"] >= 140
    assert metrics["5xx"] == metrics["transport errors"] == metrics["unhandled exceptions"] == 0
    assert metrics["worker alive"] == 1 and metrics["health"] == 200
    assert metrics["cross-user requests"] > 0
    assert metrics["cross-user accepted"] == metrics["reads"] == metrics["changed"] == 0
    assert metrics["her card refreshes"] == metrics["her call answered"] == 1
    assert metrics["actions accepted"] > 0 and metrics["outputs accepted"] > 0
    assert metrics["broken threads"] == 0
    assert metrics["own cards refreshed"] == metrics["own cards"] == 2


def test_the_report_has_every_check(quick_run: tuple[Rows, str]) -> None:
    rows, report = quick_run
    assert len(rows) == 34
    assert "mode: quick (CI)" in report
    numbers = ("1.", "2.", "2b.", "3.", "4.", "5.", "6.", "7.", "8.", "9.")
    for number in (*numbers, "10.", "11.", "12.", "13.", "14.", "15.", "16.", "17."):
        assert f"| {number} " in report
