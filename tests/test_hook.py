"""The post-generation hook checks what it generated, installs it and smoke-tests it;
environmental failures keep the project and say what to run, defects fail loudly.
Also the generated project's own `make smoke`, `make db-upgrade` and `make dev`.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from reliability.harness import free_port
from tests.project_support import (
    PROJECT_DIR,
    TOOLS_DIR,
    Generated,
    fetch_value,
    find_tool,
    fresh_postgres_database,
    generate,
    git,
    template_repo,
    tool_env,
)

UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"
OFFLINE = {
    "UV_INDEX_URL": UNREACHABLE_INDEX,
    "UV_DEFAULT_INDEX": UNREACHABLE_INDEX,
    "UV_NO_CACHE": "1",
    "PIP_INDEX_URL": UNREACHABLE_INDEX,
    "PIP_NO_CACHE_DIR": "1",
    "PIP_RETRIES": "0",
    "PIP_TIMEOUT": "2",
}


def assert_ok(generated: Generated) -> None:
    assert generated.status == 0, generated.output
    assert generated.project.is_dir(), generated.output


@pytest.fixture(scope="module")
def smoked(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """The default answers, generated with the install and the smoke test on."""
    return generate(tmp_path_factory.mktemp("smoked"), run_smoke_test=True)


# --- without the smoke test --------------------------------------------------------------


def test_a_generation_without_the_smoke_test_shapes_records_and_says_what_is_next(
    tmp_path: Path,
) -> None:
    generated = generate(tmp_path, frontend="vite", store_backend="postgres", auth="oidc")
    assert_ok(generated)
    for step in (
        "ok   shape the project (openai, postgres, vite)",
        "ok   record the answers in .cookiecutter.json",
        "ok   write .env with a fresh SESSION_SECRET",
        "--   install and smoke test: skipped (run_smoke_test is false)",
    ):
        assert step in generated.output, generated.output
    # The template's own QA runs in its tests (tests/test_template_qa.py), not here.
    assert "static checks" not in generated.output
    assert not (generated.project / "backend" / ".venv").exists()
    assert not (generated.project / "GENERATION_FAILED.txt").exists()
    # The summary ends with the next commands.
    assert re.search(r"Next:\n\s+cd \w+\n\s+make install", generated.output), generated.output
    sign_in = "# sign-in: OIDC_ISSUER and OIDC_AUDIENCE in .env; VITE_OIDC_ISSUER and "
    assert sign_in + "VITE_OIDC_CLIENT_ID in frontend/.env.local" in generated.output


# --- the smoke test ----------------------------------------------------------------------


def test_default_answers_install_and_pass_the_smoke_test_in_time(smoked: Generated) -> None:
    assert_ok(smoked)
    out = smoked.output
    for step in (
        "ok   install the backend (make install-backend): uv sync --locked",
        "provider openai (model gpt-5.1), store sqlite",
        "history reached the model (responses API",
        "reply ids are distinct",
        "the store kept all 4 items (items.list)",
        "ok   smoke test (make smoke): two turns through the fake provider",
    ):
        assert step in out, f"missing {step!r} in:\n{out}"
    assert (smoked.project / "backend" / ".venv").is_dir()
    assert not (smoked.project / "GENERATION_FAILED.txt").exists()
    # SQLite: the smoke test used a temporary file, never the project's database.
    assert not list((smoked.project / "backend").glob("*.db"))
    # Timing is a benchmark's job (benchmarks/ measures it side by side), not an assertion.
    print(f"\ngeneration + install + smoke test: {smoked.seconds:.1f} s")


def test_openrouter_on_postgres_passes_the_smoke_test(tmp_path: Path) -> None:
    with fresh_postgres_database() as database_url:
        generated = generate(
            tmp_path,
            env={"DATABASE_URL": database_url},
            llm_provider="openrouter",
            store_backend="postgres",
            frontend="none",
            run_smoke_test=True,
        )
        assert_ok(generated)
        out = generated.output
        assert "provider openrouter (model mistralai/devstral-2512:free), store postgres" in out
        assert "history reached the model (chat API" in out, out
        assert "ok   smoke test" in out, out
        # The conversation is in the database the smoke test was pointed at.
        # Two turns of two items each, and the picture turn (attachments are on).
        stored = fetch_value(database_url, "SELECT count(*) FROM chatkit_items")
        assert stored == 6
        assert "picture turn:" in out, out


def test_unreachable_postgres_is_environmental(tmp_path: Path) -> None:
    generated = generate(
        tmp_path,
        env={"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"},
        store_backend="postgres",
        frontend="none",
        run_smoke_test=True,
    )
    assert_ok(generated)
    out = generated.output
    assert "WARNING: smoke test did not complete" in out, out
    assert "PostgreSQL is not reachable at 127.0.0.1:9/nowhere" in out
    assert re.search(r"once the above is fixed, run:\n\s+cd \w+\n\s+make smoke", out), out
    assert not (generated.project / "GENERATION_FAILED.txt").exists()


def test_offline_install_keeps_the_project_and_prints_what_to_run(tmp_path: Path) -> None:
    generated = generate(tmp_path, env=OFFLINE, run_smoke_test=True)
    assert_ok(generated)
    out = generated.output
    assert "WARNING: install the backend did not complete" in out, out
    assert re.search(r"run:\n\s+cd \w+\n\s+make install\n\s+make smoke", out), out
    project = generated.project
    assert (project / "backend" / "app" / "main.py").exists()
    assert re.search(r"^SESSION_SECRET=\S{32,}$", (project / ".env").read_text(), re.M)
    assert not (project / "GENERATION_FAILED.txt").exists()


def test_without_uv_the_hook_uses_venv_and_pip(tmp_path: Path) -> None:
    # No uv on PATH (the hook runs on cookiecutter's own Python, by absolute path).
    path = os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "uv").exists()
    )
    generated = generate(tmp_path, env={**OFFLINE, "PATH": path}, run_smoke_test=True)
    assert_ok(generated)
    assert "WARNING: install the backend did not complete" in generated.output
    # make install-backend fell back to the standard library's venv, then pip (the
    # command line itself may be above the output's tail, past pip's own lines).
    assert (generated.project / "backend" / ".venv" / "bin" / "pip").exists()
    assert not (generated.project / "backend" / ".venv" / "bin" / "uv").exists()
    assert re.search(r"\bpip\b", generated.output), generated.output


def test_without_make_the_hook_says_what_to_install(tmp_path: Path) -> None:
    # Only the tool environment on PATH: uv and Python are there, make is not.
    generated = generate(tmp_path, env={"PATH": str(TOOLS_DIR)}, run_smoke_test=True)
    assert_ok(generated)
    out = generated.output
    assert "WARNING: install the backend did not complete: `make` is not installed" in out, out
    assert re.search(r"run:\n\s+cd \w+\n\s+install make .*\n\s+make install", out), out
    assert not (generated.project / "backend" / ".venv").exists()


def test_the_skip_variable_switches_the_smoke_test_off(tmp_path: Path) -> None:
    generated = generate(tmp_path, env={"CHATKIT_TEMPLATE_SKIP_SMOKE": "1"}, run_smoke_test=True)
    assert_ok(generated)
    assert "skipped (CHATKIT_TEMPLATE_SKIP_SMOKE=1)" in generated.output
    assert not (generated.project / "backend" / ".venv").exists()


@pytest.fixture(scope="module")
def forgetful_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with a wrong default: the model sees one item of history, which breaks
    multi-turn memory, a defect only the smoke test can see."""
    template = template_repo(tmp_path_factory.mktemp("forgetful") / "template")
    env_example = template / PROJECT_DIR / ".env.example"
    env_example.write_text(env_example.read_text().replace("HISTORY_LIMIT=50", "HISTORY_LIMIT=1"))
    return template


def test_a_failing_smoke_test_is_a_loud_defect_that_keeps_the_project(
    forgetful_template: Path, tmp_path: Path
) -> None:
    generated = generate(
        tmp_path, template=forgetful_template, frontend="none", run_smoke_test=True
    )
    assert_ok(generated)  # exit 0: cookiecutter would delete the project otherwise
    assert "FAILED: smoke test: `python -m tests.smoke` exited 1" in generated.output
    report = (generated.project / "GENERATION_FAILED.txt").read_text()
    assert "turn 2: the model did not see the first message" in report
    assert "make smoke" in report
    assert (generated.project / "backend" / ".venv").is_dir()
    assert (generated.project / ".gitignore").read_text().count("GENERATION_FAILED.txt") == 1


def test_strict_mode_turns_a_defect_into_a_failing_exit(
    forgetful_template: Path, tmp_path: Path
) -> None:
    generated = generate(
        tmp_path,
        template=forgetful_template,
        env={"CHATKIT_TEMPLATE_STRICT": "1"},
        extra_args=["--keep-project-on-failure"],
        frontend="none",
        run_smoke_test=True,
    )
    assert generated.status != 0
    assert "FAILED: smoke test" in generated.output
    assert (generated.project / "GENERATION_FAILED.txt").exists()


# --- the generated project's own commands -------------------------------------------------


def make(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=tool_env(),
        check=False,
    )


def test_the_install_is_exactly_the_lock(smoked: Generated) -> None:
    assert_ok(smoked)
    backend = smoked.project / "backend"
    result = subprocess.run(
        [find_tool("uv"), "lock", "--check"], cwd=backend, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    locked = dict(
        re.findall(
            r'^name = "([^"]+)"\nversion = "([^"]+)"', (backend / "uv.lock").read_text(), re.M
        )
    )
    installed = subprocess.run(
        [str(backend / ".venv" / "bin" / "python"), "-c", INSTALLED_VERSIONS],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    versions = dict(line.split("==") for line in installed.split())
    for name in ("openai-chatkit", "openai-agents", "openai", "fastapi", "sqlalchemy", "mypy"):
        assert versions[name] == locked[name], name


INSTALLED_VERSIONS = """
from importlib.metadata import distributions
for dist in distributions():
    print(f"{dist.metadata['Name'].lower().replace('_', '-')}=={dist.version}")
"""


def test_pre_commit_runs_the_project_checks(smoked: Generated, tmp_path: Path) -> None:
    assert_ok(smoked)
    project = smoked.project
    git(project, "init", "-q")
    git(project, "add", "-A")
    result = subprocess.run(
        [str(project / "backend" / ".venv" / "bin" / "pre-commit"), "run", "--all-files"],
        cwd=project,
        capture_output=True,
        text=True,
        # Skipped here because each costs a cold start that other tests already pay:
        # mypy runs on every render in tests/test_render.py, eslint and tsc in
        # tests/test_frontends.py. The config test checks both hooks are there.
        env=tool_env(
            {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit"), "SKIP": "mypy,frontend-lint"}
        ),
        timeout=300,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for hook in ("ruff check (backend)", "ruff format (backend)", "uv lock"):
        assert re.search(re.escape(hook) + r".*Passed", out), out
    assert re.search(r"mypy --strict.*Skipped", out), out


def test_make_smoke_runs_the_same_check_by_hand(smoked: Generated) -> None:
    assert_ok(smoked)
    marker = smoked.project / "GENERATION_FAILED.txt"
    marker.write_text("left over from a failed generation\n")
    result = make(smoked.project, "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    assert not marker.exists(), "a passing `make smoke` clears the failure marker"


def test_the_readme_conversation_without_a_key_works_as_written(smoked: Generated) -> None:
    """The README's first conversation, run as a newcomer pastes it (only the ports moved)."""
    assert_ok(smoked)
    readme = (smoked.project / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Talk to it without an API key", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    fake, backend = free_port(), free_port()
    block = (
        block.replace("8089", str(fake))
        .replace("127.0.0.1:8000", f"127.0.0.1:{backend}")
        .replace("uvicorn app.main:app", f"uvicorn app.main:app --port {backend}")
    )
    script = f"set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\ncd {smoked.project}\n{block}"
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env=tool_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"type":"thread.created"' in result.stdout, result.stdout[-2000:]
    assert '"type":"thread.item.updated"' in result.stdout, result.stdout[-2000:]
    (smoked.project / "backend" / "jar").unlink()


def test_make_db_upgrade_migrates_the_configured_sqlite_database(smoked: Generated) -> None:
    assert_ok(smoked)
    result = make(smoked.project, "db-upgrade")
    assert result.returncode == 0, result.stdout + result.stderr
    [database] = (smoked.project / "backend").glob("*.db")
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"alembic_version", "chatkit_threads", "chatkit_items"} <= tables
    database.unlink()


def test_make_without_an_install_says_to_install(tmp_path: Path) -> None:
    project = generate(tmp_path, frontend="none").project
    result = make(project, "test")
    assert result.returncode != 0
    assert "run 'make install' first" in result.stderr


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


FAKE_NPM = """#!/bin/sh
# Stands in for `npm ci` (makes node_modules) and `npm run dev`: records itself and a
# child, then waits like a dev server.
if [ "$1" = ci ]; then mkdir -p node_modules; echo ci >> "$NPM_LOG.ci"; exit 0; fi
echo "$$ $*" > "$NPM_LOG"
sleep 300 &
echo "$!" >> "$NPM_LOG"
wait
"""


@pytest.mark.parametrize("frontend", ["nextjs", "none"])
def test_make_dev_runs_both_and_one_ctrl_c_stops_both(
    smoked: Generated, tmp_path: Path, frontend: str
) -> None:
    assert_ok(smoked)
    project = smoked.project
    if frontend == "none":
        project = generate(tmp_path / "none", frontend="none").project
        (project / "backend" / ".venv").symlink_to(smoked.project / "backend" / ".venv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    npm_log = tmp_path / "npm.log"
    port = free_port()
    # The backend refuses to start without the provider's key; any value does here.
    env = tool_env({"BACKEND_PORT": str(port), "NPM_LOG": str(npm_log), "OPENAI_API_KEY": "k"})
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    # Its own session, like a terminal: Ctrl-C is SIGINT to the whole foreground group.
    process = subprocess.Popen(
        ["make", "dev"],
        cwd=project,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the backend did not come up under make dev")
                time.sleep(0.2)
        if frontend == "nextjs":
            while not npm_log.exists() or len(npm_log.read_text().split()) < 4:
                assert time.monotonic() < deadline, "npm run dev was not started"
                time.sleep(0.1)
            npm_pid, _run, _dev, child_pid = npm_log.read_text().split()
            assert (_run, _dev) == ("run", "dev")
            # A fresh project has no node_modules: the first `make dev` installs them.
            assert Path(f"{npm_log}.ci").read_text() == "ci\n"
        else:
            time.sleep(0.5)
            assert not npm_log.exists(), "no frontend, no npm"

        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "[dev] stopping..." in output, output
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
    if frontend == "nextjs":
        deadline = time.monotonic() + 5
        while alive(int(npm_pid)) or alive(int(child_pid)):
            assert time.monotonic() < deadline, "the frontend outlived Ctrl-C"
            time.sleep(0.1)
