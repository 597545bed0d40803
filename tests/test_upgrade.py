"""Upgrades: recorded answers and template commit, replay, byte-identical output, and
a user's life on a real template history: a project generated at commit A, the edits
users make, a commit B that changes plumbing and one default the user edited, then
`cruft update` and `make upgrade-diff APPLY=1`. Every edit stays, the plumbing arrives,
the one overlap is a conflict, and the project's tests pass after it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


# --- a user's life: generated at A, edited, upgraded to B ---------------------------------

# (file, text at commit A, what the user makes of it). Each must stay after an upgrade.
INSTRUCTIONS_A = (
    '"You are a helpful assistant in a chat app. Answer concisely. Use the tools when they "\n'
    '    "help. When the user asks for their own local time, call get_browser_time_zone, then "\n'
    '    "current_time with the time zone it returns. current_time shows the user a card; set "\n'
    '    "show_card to false when they want the answer as plain text."'
)
USER_INSTRUCTIONS = '"You are the Acme support assistant. Answer in two sentences at most."'
TEMPLATE_INSTRUCTIONS = '"You are a helpful assistant in a chat app. Answer concisely."'
USER_TOOL = '''@function_tool
def order_status(order_id: str) -> str:
    """Where an Acme order is.

    Args:
        order_id: The order number.
    """
    return f"Order {order_id} shipped yesterday."


'''
USER_ROUTER = """orders = APIRouter()


@orders.get("/api/orders/{order_id}")
async def order(order_id: str) -> dict[str, str]:
    return {"order": order_id, "status": "shipped"}


ROUTERS: list[APIRouter] = [orders]
"""
USER_TESTS = '''"""Our own: the order route and the order tool."""

import httpx

from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory


def test_the_order_route(backend: BackendFactory) -> None:
    with backend() as url:
        assert httpx.get(f"{url}/api/orders/42").json() == {"order": "42", "status": "shipped"}


def test_the_order_tool(backend: BackendFactory) -> None:
    with backend() as url, ChatKitClient(url) as browser:
        turn = browser.create_thread('/tool order_status {"order_id": "42"}')
        assert "Order 42 shipped yesterday." in turn.reply_text
'''
GREETING_A = '"greeting": "How can I help you today?"'
USER_GREETING = '"greeting": "Welcome to Acme support. What is your order number?"'
USER_INTRO = "Acme's support chat: it answers questions about orders.\n"
USER_DEPENDENCY = '    "pyyaml>=6",\n'
USER_ENV = "MODEL_NAME=acme-model\n"
# What commit B changes that the user never touched.
HEALTH_A = 'JSONResponse({"status": "ok"})'
HEALTH_B = 'JSONResponse({"status": "ok", "template": "v2"})'
README_A = "They run the real app over real HTTP against"
README_B = "They run the real app (no mocks) over real HTTP against"
PROMPT_A = '"label": "Draft a message"'
PROMPT_B = '"label": "Write a message"'
TEMPLATE_TEST = "backend/tests/test_template_v2.py"
TEMPLATE_TEST_TEXT = '''"""Added by the template after the project was generated."""

import httpx

from tests.conftest import BackendFactory


def test_health_names_the_template_version(backend: BackendFactory) -> None:
    with backend() as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "template": "v2"}
'''
# The upgraded project's own tests that the edits and commit B touch.
PROJECT_TESTS = ["tests/test_ours.py", "tests/test_extensions.py", "tests/test_template_v2.py"]
CONFLICT = re.compile(r"<<<<<<< [^\n]*\n(.*?)=======\n(.*?)>>>>>>> [^\n]*\n", re.S)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def commit_template_b(template: Path) -> str:
    """Plumbing the user never touches, one default the user does, a new test."""
    project = template / PROJECT_DIR
    edit(project / ".env.example", ENV_COMMENT, ENV_COMMENT_V2)
    edit(project / "backend" / "app" / "routes.py", HEALTH_A, HEALTH_B)
    edit(project / "README.md", README_A, README_B)
    edit(project / "frontends" / "shared" / "site.config.json", PROMPT_A, PROMPT_B)
    edit(project / "backend" / "app" / "extensions.py", INSTRUCTIONS_A, TEMPLATE_INSTRUCTIONS)
    (project / TEMPLATE_TEST).write_text(TEMPLATE_TEST_TEXT)
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "template B")
    return git(template, "rev-parse", "HEAD").strip()


def make_user_edits(project: Path) -> None:
    """What users change in their first weeks, each through the user's side."""
    extensions = project / "backend" / "app" / "extensions.py"
    edit(extensions, INSTRUCTIONS_A, USER_INSTRUCTIONS)
    edit(extensions, "# The agent's function tools.", USER_TOOL + "# The agent's function tools.")
    edit(
        extensions,
        "TOOLS: list[Tool] = [current_time]",
        "TOOLS: list[Tool] = [current_time, order_status]",
    )
    edit(extensions, "ROUTERS: list[APIRouter] = []\n", USER_ROUTER)
    (project / "backend" / "tests" / "test_ours.py").write_text(USER_TESTS)
    edit(project / "frontend" / "site.config.json", GREETING_A, USER_GREETING)
    readme = project / "README.md"
    description = DEFAULTS["description"] + "\n"
    edit(readme, description, USER_INTRO)
    edit(
        project / "backend" / "pyproject.toml",
        '    "python-multipart',
        USER_DEPENDENCY + '    "python-multipart',
    )
    with (project / ".env").open("a") as env:
        env.write(USER_ENV)


def assert_user_edits_kept(project: Path) -> None:
    extensions = (project / "backend" / "app" / "extensions.py").read_text()
    assert USER_INSTRUCTIONS in extensions
    assert USER_TOOL in extensions and "[current_time, order_status]" in extensions
    assert USER_ROUTER in extensions
    assert (project / "backend" / "tests" / "test_ours.py").read_text() == USER_TESTS
    assert USER_GREETING in (project / "frontend" / "site.config.json").read_text()
    assert USER_INTRO in (project / "README.md").read_text()
    assert USER_DEPENDENCY in (project / "backend" / "pyproject.toml").read_text()
    assert (project / ".env").read_text().endswith(USER_ENV)


def assert_plumbing_arrived(project: Path) -> None:
    assert ENV_COMMENT_V2 in (project / ".env.example").read_text()
    assert HEALTH_B in (project / "backend" / "app" / "routes.py").read_text()
    assert README_B in (project / "README.md").read_text()
    assert PROMPT_B in (project / "frontend" / "site.config.json").read_text()
    assert (project / TEMPLATE_TEST).read_text() == TEMPLATE_TEST_TEXT


def take_the_users_side(path: Path) -> None:
    """The one conflict: both sides are shown; the user keeps their instructions."""
    text = path.read_text()
    [(ours, theirs)] = CONFLICT.findall(text)
    assert USER_INSTRUCTIONS in ours and TEMPLATE_INSTRUCTIONS in theirs
    path.write_text(CONFLICT.sub(lambda match: match.group(1), text))


def run_project_tests(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PROJECT_TESTS],
        cwd=project / "backend",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """(the template repository at B, a checkout of A beside it, commit A, commit B)."""
    root = tmp_path_factory.mktemp("history")
    template = template_repo(root / "template")
    commit_a = git(template, "rev-parse", "HEAD").strip()
    at_a = root / "template-at-a"
    git(template, "worktree", "add", "--detach", "-q", str(at_a), commit_a)
    commit_b = commit_template_b(template)
    return template, at_a, commit_a, commit_b


def statuses(listing: str) -> dict[str, str]:
    found = re.findall(r"^  (clean|merged|conflicting|added|deleted) +(\S+)", listing, re.M)
    return {path: status for status, path in found}


def upgrade_diff(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/upgrade_diff.py", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=600,
        check=False,
    )


def test_upgrade_diff_merges_the_template_onto_a_users_edits(
    history: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    template, at_a, commit_a, commit_b = history
    generated = generate(tmp_path / "out", template=at_a, frontend="vite")
    assert generated.status == 0, generated.output
    project = generated.project
    assert json.loads((project / ".cookiecutter.json").read_text())["template_commit"] == commit_a
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "generated")
    make_user_edits(project)
    # Local-only things, never compared.
    (project / "backend" / ".venv" / "lib").mkdir(parents=True)
    (project / "backend" / ".venv" / "lib" / "x.py").write_text("x = 1\n")
    (project / "backend" / "chat.db").write_bytes(b"SQLite format 3\0")
    commit_all(project, "our edits")

    dry = upgrade_diff(project, "--template", str(template))
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert f"from {commit_a[:12]}" in dry.stdout and f"to {commit_b[:12]}" in dry.stdout
    assert statuses(dry.stdout) == {
        "backend/app/extensions.py": "conflicting",
        ".env.example": "clean",
        "backend/app/routes.py": "clean",
        "README.md": "merged",
        "frontend/site.config.json": "merged",
        TEMPLATE_TEST: "added",
    }
    assert "Dry run: nothing written" in dry.stdout
    assert git(project, "status", "--porcelain") == "", "a dry run writes nothing"

    applied = subprocess.run(
        [
            "make",
            "upgrade-diff",
            f"TEMPLATE={template}",
            "CHECKOUT=main",
            "APPLY=1",
            f"PYTHON={sys.executable}",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=600,
        check=False,
    )
    assert applied.returncode != 0, "a conflict remains: the exit says so"
    assert "1 file(s) conflict" in applied.stderr, applied.stdout + applied.stderr
    assert_user_edits_kept(project)
    assert_plumbing_arrived(project)
    assert json.loads((project / ".cookiecutter.json").read_text())["template_commit"] == commit_b
    assert (project / "backend" / ".venv" / "lib" / "x.py").read_text() == "x = 1\n"
    assert not list(project.rglob("*.rej")) and not list(project.rglob("*.orig"))

    take_the_users_side(project / "backend" / "app" / "extensions.py")
    run_project_tests(project)
    again = upgrade_diff(project, "--template", str(template))
    assert again.returncode == 0 and "Nothing to merge" in again.stdout, again.stdout


def test_cruft_update_keeps_the_edits_and_leaves_the_conflict_marked(
    history: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    template, _, commit_a, commit_b = history
    cruft = [sys.executable, "-m", "cruft"]
    run(
        [
            *cruft,
            "create",
            str(template),
            "--checkout",
            commit_a,
            "--no-input",
            "--output-dir",
            str(tmp_path / "p"),
            "--extra-context",
            '{"frontend": "vite"}',
        ],
        cwd=tmp_path,
        env=NO_SMOKE,  # the answers still say run_smoke_test=true
    )
    project = tmp_path / "p" / "my_chatkit_app"
    assert json.loads((project / ".cookiecutter.json").read_text())["template_commit"] == commit_a
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "generated")
    make_user_edits(project)
    commit_all(project, "our edits")  # cruft update wants a clean tree
    secret_env = (project / ".env").read_text()

    # From here on, no skip variable: the hook must recognise cruft's re-rendering itself.
    # Offline, any install attempt would fail with a warning in the output.
    diff = run([*cruft, "diff"], cwd=project, env=OFFLINE)
    # `cruft diff` shows your edits against the template you have, not what changed in it.
    assert f"-{USER_INTRO}" in diff and f"+{DEFAULTS['description']}" in diff
    assert ENV_COMMENT_V2 not in diff
    update = run(
        [*cruft, "update", "--skip-apply-ask", "--checkout", "main"], cwd=project, env=OFFLINE
    )
    for noise in ("Checking the new project", "WARNING:", "smoke [", "install the backend"):
        assert noise not in diff + update, f"the hook ran its generation steps: {noise!r}"
    # What the README says cruft does: conflict markers in a git repository, and still
    # "Good work!" with exit 0 (run() fails the test on any other exit).
    assert "Good work!" in update
    assert_user_edits_kept(project)
    assert_plumbing_arrived(project)
    assert (project / ".env").read_text() == secret_env, "the project's secret is untouched"
    assert not (project / "backend" / ".venv").exists()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_b
    assert json.loads((project / ".cookiecutter.json").read_text())["template_commit"] == commit_b
    take_the_users_side(project / "backend" / "app" / "extensions.py")
    run_project_tests(project)


def test_upgrade_diff_on_an_unedited_project_has_nothing_to_merge(
    history: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    template, _, _, commit_b = history
    project = generate(tmp_path / "out", template=template, frontend="none").project
    assert json.loads((project / ".cookiecutter.json").read_text())["template_commit"] == commit_b
    before = tracked_files(project)
    result = upgrade_diff(project, "--template", str(template))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nothing to merge" in result.stdout
    assert tracked_files(project) == before


def test_upgrade_diff_errors_name_the_problem_and_the_fix(
    history: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    template, _, _, _ = history
    project = generate(tmp_path / "out", template=template, frontend="none").project
    answers_file = project / ".cookiecutter.json"
    recorded = json.loads(answers_file.read_text())

    def error(*args: str) -> str:
        result = upgrade_diff(project, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        [line] = result.stderr.strip().splitlines()
        return line

    assert "TEMPLATE=" in error()
    assert "cannot be cloned" in error("--template", str(tmp_path / "nowhere"))
    assert "not in the template" in error("--template", str(template), "--base", "0" * 40)
    del recorded["template_commit"]
    answers_file.write_text(json.dumps(recorded))
    assert "records no template_commit" in error("--template", str(template))
    assert "BASE=<commit>" in error("--template", str(template))
    answers_file.unlink()
    assert ".cookiecutter.json is missing" in error("--template", str(template))
