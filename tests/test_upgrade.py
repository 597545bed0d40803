"""Regenerating to compare upgrades: recorded answers, replay, byte-identical output,
cruft end to end on a real template history, and the project's `make upgrade-diff`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE
from tests.project_support import (
    PROJECT_DIR,
    generate,
    git,
    template_repo,
    tool_env,
    tracked_files,
)

DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
ANSWER_KEYS = {key for key in DEFAULTS if not key.startswith("_")}
CUSTOM = {
    "project_name": "Acme Support Bot",
    "description": "Answers questions about Acme's products.",
    "llm_provider": "openrouter",
    "model_name": "meta-llama/llama-3.3-70b-instruct",
    "store_backend": "postgres",
    "frontend": "vite",
    "mcp_server_url": "http://localhost:8001/mcp",
}
# Without these the hook would install and smoke-test whenever a test forgot to say so;
# the cruft test below runs without them on purpose.
NO_SMOKE = {"CHATKIT_TEMPLATE_SKIP_SMOKE": "1"}
# Any attempt to install would fail loudly (and quickly) rather than quietly succeed.
OFFLINE = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_NO_CACHE": "1"}
ENV_COMMENT = "# DEBUG, INFO, WARNING or ERROR."
ENV_COMMENT_V2 = "# DEBUG, INFO, WARNING or ERROR (DEBUG logs every request)."
USER_NOTE = "## Our deployment notes\n\nProduction runs on three replicas.\n"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=tool_env(env),
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result.stdout + result.stderr


def commit_template_v2(template: Path) -> str:
    """A second template commit that changes a generated file; returns its sha."""
    env_example = template / PROJECT_DIR / ".env.example"
    text = env_example.read_text()
    assert ENV_COMMENT in text
    env_example.write_text(text.replace(ENV_COMMENT, ENV_COMMENT_V2))
    git(template, "commit", "-q", "-am", "template v2: explain DEBUG")
    return git(template, "rev-parse", "HEAD").strip()


# --- recorded answers, replay, determinism ---------------------------------------------


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One template commit (the working tree may change under concurrent edits)."""
    return template_repo(tmp_path_factory.mktemp("snapshot") / "template")


def test_answers_are_recorded_without_paths_or_private_keys(tmp_path: Path) -> None:
    generated = generate(tmp_path / "out", **CUSTOM)
    assert generated.status == 0, generated.output
    text = (generated.project / ".cookiecutter.json").read_text()
    recorded = json.loads(text)
    # The replay format cookiecutter loads, and the template commit when there is one.
    assert set(recorded) <= {"cookiecutter", "template_commit"}
    answers = recorded["cookiecutter"]
    assert set(answers) == ANSWER_KEYS
    assert {key: answers[key] for key in CUSTOM} == CUSTOM
    assert answers["project_slug"] == "acme_support_bot"
    assert answers["run_smoke_test"] is False
    assert str(tmp_path) not in text and str(TEMPLATE) not in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text), "no timestamps"


def test_the_template_commit_is_recorded_from_a_clean_checkout_only(
    snapshot: Path, tmp_path: Path
) -> None:
    head = git(snapshot, "rev-parse", "HEAD").strip()
    clean = generate(tmp_path / "clean", template=snapshot, frontend="none")
    assert clean.status == 0, clean.output
    recorded = json.loads((clean.project / ".cookiecutter.json").read_text())
    assert recorded["template_commit"] == head

    # Uncommitted changes: what is rendered is no commit, so none is recorded.
    dirty = template_repo(tmp_path / "dirty")
    with (dirty / PROJECT_DIR / "README.md").open("a") as readme:
        readme.write("\nNot committed.\n")
    unrecorded = generate(tmp_path / "from-dirty", template=dirty, frontend="none")
    assert unrecorded.status == 0, unrecorded.output
    assert "template_commit" not in json.loads(
        (unrecorded.project / ".cookiecutter.json").read_text()
    )


def test_replay_file_regenerates_byte_identical_tracked_files(
    snapshot: Path, tmp_path: Path
) -> None:
    first = generate(tmp_path / "first", template=snapshot, **CUSTOM)
    assert first.status == 0, first.output
    replay = first.project / ".cookiecutter.json"
    out = tmp_path / "replayed"
    run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(snapshot),
            "--replay-file",
            str(replay),
            "-o",
            str(out),
        ],
        cwd=tmp_path,
        env=NO_SMOKE,
    )
    replayed = out / first.project.name
    assert tracked_files(replayed) == tracked_files(first.project)


def test_same_answers_and_commit_give_the_same_bytes(snapshot: Path, tmp_path: Path) -> None:
    one = generate(tmp_path / "one", template=snapshot, frontend="nextjs")
    two = generate(tmp_path / "elsewhere" / "two", template=snapshot, frontend="nextjs")
    files = tracked_files(one.project)
    assert files == tracked_files(two.project)
    assert {
        ".cookiecutter.json",
        "Makefile",
        "docker-compose.yml",
        ".github/workflows/ci.yml",
    } <= set(files)
    # The secret lives only in the untracked .env, fresh for each project.
    assert ".env" not in files
    assert (one.project / ".env").read_text() != (two.project / ".env").read_text()


# --- cruft -----------------------------------------------------------------------------


def test_cruft_create_check_diff_and_update(tmp_path: Path) -> None:
    cruft = [sys.executable, "-m", "cruft"]
    template = template_repo(tmp_path / "template")
    run(
        [*cruft, "create", str(template), "--no-input", "--output-dir", str(tmp_path / "p")],
        cwd=tmp_path,
        env=NO_SMOKE,  # the answers still say run_smoke_test=true
    )
    project = tmp_path / "p" / "my_chatkit_app"
    assert (
        json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"][
            "run_smoke_test"
        ]
        is True
    )
    secret_env = (project / ".env").read_text()
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    assert "up to date" in run([*cruft, "check"], cwd=project)

    # The user's own change, committed (cruft update wants a clean tree).
    with (project / "README.md").open("a") as readme:
        readme.write("\n" + USER_NOTE)
    git(project, "commit", "-q", "-am", "our notes")

    new_commit = commit_template_v2(template)
    check = subprocess.run(
        [*cruft, "check"], cwd=project, capture_output=True, text=True, env=tool_env()
    )
    assert check.returncode == 1 and "out of date" in check.stdout, check.stdout

    # From here on, no skip variable: the hook must recognise cruft's re-rendering itself.
    # Offline, any install attempt would fail with a warning in the output.
    started = time.perf_counter()
    diff = run([*cruft, "diff"], cwd=project, env=OFFLINE)
    assert diff.startswith("diff --git"), f"the hook printed into cruft diff:\n{diff[:500]}"
    assert "+Production runs on three replicas." not in diff  # old template vs the user's
    assert "Production runs on three replicas." in diff
    assert ".env\n" not in diff and ".cookiecutter.json" not in diff

    update = run([*cruft, "update", "--skip-apply-ask"], cwd=project, env=OFFLINE)
    seconds = time.perf_counter() - started
    assert "has been updated" in update, update
    for noise in ("Checking the new project", "WARNING:", "smoke [", "install the backend"):
        assert noise not in diff + update, f"the hook ran its generation steps: {noise!r}"

    env_example = (project / ".env.example").read_text()
    assert ENV_COMMENT_V2 in env_example, "the template's change was applied"
    assert USER_NOTE in (project / "README.md").read_text(), "the user's edit was kept"
    assert (project / ".env").read_text() == secret_env, "the project's secret is untouched"
    assert not (project / "backend" / ".venv").exists()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    assert not list(project.rglob("*.rej"))
    assert seconds < 30, f"cruft diff + update took {seconds:.1f} s: did the hook install?"
    assert "up to date" in run([*cruft, "check"], cwd=project)


# --- make upgrade-diff -----------------------------------------------------------------


def test_upgrade_diff_shows_template_changes_and_user_edits(tmp_path: Path) -> None:
    template = template_repo(tmp_path / "template")
    first_commit = git(template, "rev-parse", "HEAD").strip()
    project = generate(tmp_path / "out", template=template, frontend="none").project
    with (project / "README.md").open("a") as readme:
        readme.write("\n" + USER_NOTE)
    (project / "notes.txt").write_text("ours\n")
    # Local-only things the diff must ignore.
    (project / "backend" / ".venv" / "lib").mkdir(parents=True)
    (project / "backend" / ".venv" / "lib" / "x.py").write_text("x = 1\n")
    (project / "backend" / "my_chatkit_app.db").write_bytes(b"SQLite format 3\0")
    (project / "node_modules").mkdir()
    commit_template_v2(template)
    script = [sys.executable, "scripts/upgrade_diff.py", "--template", str(template)]

    latest = subprocess.run(script, cwd=project, capture_output=True, text=True, env=tool_env())
    assert latest.returncode == 0, latest.stderr
    patch = latest.stdout
    assert f"-{ENV_COMMENT}\n+{ENV_COMMENT_V2}\n" in patch
    assert "-Production runs on three replicas.\n" in patch
    for ignored in (".env\n", ".venv", ".db", "node_modules"):
        assert ignored not in patch
    assert "Only in your project (1):\n  notes.txt" in latest.stderr

    pinned = subprocess.run(
        [*script, "--checkout", first_commit],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert pinned.returncode == 0, pinned.stderr
    assert ENV_COMMENT_V2 not in pinned.stdout, "the pinned ref predates the change"
    assert "-Production runs on three replicas.\n" in pinned.stdout

    # The patch applies: afterwards the project is what the latest template generates.
    git(project, "init", "-q")
    subprocess.run(["git", "apply"], input=patch, cwd=project, text=True, check=True)
    again = subprocess.run(
        [*script, "--exit-code"], cwd=project, capture_output=True, text=True, env=tool_env()
    )
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr


def test_make_upgrade_diff_passes_template_and_checkout(tmp_path: Path) -> None:
    template = template_repo(tmp_path / "template")
    first_commit = git(template, "rev-parse", "HEAD").strip()
    project = generate(tmp_path / "out", template=template, frontend="none").project
    commit_template_v2(template)
    result = subprocess.run(
        ["make", "upgrade-diff", f"TEMPLATE={template}", f"PYTHON={sys.executable}"],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert result.returncode == 0, result.stderr
    assert f"+{ENV_COMMENT_V2}" in result.stdout
    pinned = subprocess.run(
        [
            "make",
            "upgrade-diff",
            f"TEMPLATE={template}",
            f"CHECKOUT={first_commit}",
            f"PYTHON={sys.executable}",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout == "" and "No differences" in pinned.stderr
