"""Shape the generated project to the answers, then install and smoke-test it with the
project's own commands. Which files a project gets is decided by the tables below.

Steps, each printed with its time:
1. shape the tree and record the answers in `.cookiecutter.json`;
2. write the git-ignored `.env` with a fresh SESSION_SECRET (tracked files stay
   deterministic: the same answers and template commit give the same bytes);
3. unless `run_smoke_test=false` or CHATKIT_TEMPLATE_SKIP_SMOKE=1: `make install-backend`
   and what `make smoke` runs, the commands a user runs by hand later.
A cruft re-render (`cruft update` / `cruft diff`) runs step 1 alone, silently.
The template's own QA (compile, parse, leftovers, settings) runs in its tests instead.

Failures never cost the user the new project. An environmental failure (no network, no
Python 3.11+, no make, PostgreSQL down) prints a warning with the commands to run once
fixed. A defect (the smoke test fails) prints a FAILED banner and writes it to
GENERATION_FAILED.txt. Both exit 0, because cookiecutter and cruft delete the project
when a hook exits non-zero (unless --keep-project-on-failure, which the hook cannot
see), and with it the evidence. CHATKIT_TEMPLATE_STRICT=1 makes a defect exit 1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ANSWERS: dict[str, object] = json.loads({{cookiecutter | jsonify | tojson}})

Answers = dict[str, object]

# path in the generated project -> keep it when this holds.
KEEP_WHEN: dict[str, Callable[[Answers], bool]] = {
    "frontends/nextjs": lambda a: a["frontend"] == "nextjs",
    "frontends/vite": lambda a: a["frontend"] == "vite",
    "frontends": lambda a: a["frontend"] != "none",
    # The CI workflow with the frontend job, or the one without it (then renamed ci.yml).
    ".github/workflows/ci.yml": lambda a: a["frontend"] != "none",
    ".github/workflows/ci-backend.yml": lambda a: a["frontend"] == "none",
}

# folder -> the folders it is copied into, file by file, where those survived KEEP_WHEN;
# then the folder goes. The files both frontends share are written once, in the template.
MERGES: dict[str, tuple[str, ...]] = {
    "frontends/shared": ("frontends/nextjs", "frontends/vite"),
}

# path -> where it goes, for the paths that survived KEEP_WHEN.
MOVES: dict[str, str] = {
    "frontends/nextjs": "frontend",
    "frontends/vite": "frontend",
    ".github/workflows/ci-backend.yml": ".github/workflows/ci.yml",
}

SKIP_SMOKE_ENV = "CHATKIT_TEMPLATE_SKIP_SMOKE"
STRICT_ENV = "CHATKIT_TEMPLATE_STRICT"
ANSWERS_FILE = ".cookiecutter.json"
FAILURE_FILE = "GENERATION_FAILED.txt"
INSTALL_TIMEOUT = 1800
SMOKE_TIMEOUT = 300
BANNER = "=" * 78


class EnvironmentProblem(Exception):
    """Something outside the project is missing; the project itself is fine."""

    def __init__(self, step: str, reason: str, then: list[str], output: str = "") -> None:
        super().__init__(reason)
        self.step, self.reason, self.then, self.output = step, reason, then, output


class Defect(Exception):
    """The generated project is wrong."""

    def __init__(self, step: str, reason: str, output: str = "") -> None:
        super().__init__(reason)
        self.step, self.reason, self.output = step, reason, output


# --- shaping -------------------------------------------------------------------------


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def shape(root: Path, answers: Answers) -> None:
    for relative, keep in KEEP_WHEN.items():
        if not keep(answers):
            remove(root / relative)
    for source, targets in MERGES.items():
        for target in targets:
            if (root / target).is_dir():
                shutil.copytree(root / source, root / target, dirs_exist_ok=True)
        remove(root / source)
    for source, target in MOVES.items():
        if (root / source).exists():
            (root / source).rename(root / target)
    frontends = root / "frontends"
    if frontends.is_dir() and not any(p.is_dir() for p in frontends.iterdir()):
        remove(frontends)


def recorded_answers(answers: Answers) -> dict[str, object]:
    """What the user chose: no `_` keys (cookiecutter's paths, cruft's commit, prompts)."""
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def template_commit(answers: Answers) -> str | None:
    """The template commit this render is: cruft's `_commit`, else the git HEAD of the
    template checkout when nothing in it is uncommitted (a dirty tree is no commit)."""
    commit = answers.get("_commit")
    if isinstance(commit, str) and commit:
        return commit
    repo = answers.get("_repo_dir")
    if not isinstance(repo, str) or not repo or shutil.which("git") is None:
        return None

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["git", "-C", repo, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    # cookiecutter.json tracked: the template is this repository's, not an enclosing one's.
    tracked = git("ls-files", "--error-unmatch", "cookiecutter.json")
    head = git("rev-parse", "--verify", "HEAD")
    status = git("status", "--porcelain", "--", ".")
    if tracked.returncode or head.returncode or status.returncode or status.stdout.strip():
        return None
    return head.stdout.strip()


def record_answers(root: Path, answers: Answers) -> None:
    """`.cookiecutter.json`, in the replay format: `cookiecutter TEMPLATE --replay-file`;
    also the template commit when known, the base `make upgrade-diff` merges from."""
    record: dict[str, object] = {"cookiecutter": recorded_answers(answers)}
    commit = template_commit(answers)
    if commit:
        record["template_commit"] = commit
    text = json.dumps(record, indent=2, ensure_ascii=False)
    (root / ANSWERS_FILE).write_text(text + "\n", encoding="utf-8")


def write_env(root: Path) -> bool:
    """A git-ignored `.env` with a fresh SESSION_SECRET; tracked files stay deterministic."""
    env = root / ".env"
    if env.exists():
        return False
    lines = (root / ".env.example").read_text().splitlines()
    secret = secrets.token_urlsafe(32)
    env.write_text(
        "\n".join(
            f"SESSION_SECRET={secret}" if line.startswith("SESSION_SECRET=") else line
            for line in lines
        )
        + "\n"
    )
    return True


# --- when cruft re-renders -------------------------------------------------------------


def _parent_command() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cruft_rerender(answers: Answers, root: Path) -> bool:
    """True when cruft renders the template only to compute `cruft update` / `cruft diff`.

    cruft puts `_commit` in the context of every render (cookiecutter never does). It
    renders `create` into the user's directory, and `update`/`diff` into a fresh
    temporary directory. The parent process's command line, where the system shows it,
    names the subcommand; otherwise the temporary directory tells.
    """
    if "_commit" not in answers:
        return False
    command = _parent_command()
    for index, part in enumerate(command):
        if Path(part).name.split(".")[0] == "cruft":
            rest = [arg for arg in command[index + 1 :] if not arg.startswith("-")]
            if rest:
                return rest[0] in ("update", "diff")
    temp = Path(tempfile.gettempdir()).resolve()
    parent = root.resolve().parent
    return parent.parent == temp and parent.name.startswith("tmp")


# --- install and smoke test ------------------------------------------------------------


def wanted(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "y", "on")


def smoke_switched_off(answers: Answers) -> str | None:
    """Why the install and smoke test are skipped, or None to run them."""
    flag = os.environ.get(SKIP_SMOKE_ENV, "").strip().lower()
    if flag and flag not in ("0", "false", "no"):
        return f"{SKIP_SMOKE_ENV}={os.environ[SKIP_SMOKE_ENV]}"
    if not wanted(answers.get("run_smoke_test", True)):
        return "run_smoke_test is false"
    return None


def python_311() -> str | None:
    """A Python 3.11+ for backend/.venv: the one running cookiecutter, or one on PATH."""
    if sys.version_info >= (3, 11):  # noqa: UP036 (cookiecutter may run on an older one)
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11", "python3", "python"):
        found = shutil.which(name)
        if not found:
            continue
        probe = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return found
    return None


def run(command: list[str], cwd: Path, timeout: float, echo: bool) -> tuple[int, str]:
    """Run, echoing each output line indented as it comes when asked; (status, output)."""
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except OSError as error:
        return -1, str(error)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if echo:
                print(f"      | {line.rstrip()}", flush=True)
        status = process.wait()
    finally:
        timer.cancel()
    if status < 0:
        lines.append(f"stopped after {timeout:.0f} s (or killed by signal {-status})\n")
    return status, "".join(lines)


def tail(output: str, lines: int = 40) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def install_backend(root: Path) -> str:
    """`make install-backend`: the project's own install, the one its README gives."""
    retry = ["make install", "make smoke"]
    make = shutil.which("make")
    if make is None:
        raise EnvironmentProblem(
            "install the backend",
            "`make` is not installed",
            [
                "install make (Debian/Ubuntu: apt-get install make; macOS: xcode-select --install)",
                *retry,
            ],
        )
    uv = shutil.which("uv")
    python = python_311()
    if uv is None and python is None:
        raise EnvironmentProblem(
            "install the backend",
            "no Python 3.11+ found (and no uv to fetch one)",
            ["install Python 3.11+ or uv (https://docs.astral.sh/uv/)", *retry],
        )
    command = [make, "--no-print-directory", "install-backend"]
    if python is not None:
        command.append(f"PYTHON={python}")
    status, output = run(command, root, INSTALL_TIMEOUT, echo=False)
    if status != 0:
        raise EnvironmentProblem(
            "install the backend",
            "`make install-backend` failed (no network, or the package index is unreachable?)",
            retry,
            output,
        )
    return "uv sync --locked" if uv else "python -m venv and pip"


def smoke_test(root: Path) -> None:
    """What `make smoke` runs, called directly: make would fold exit 2 (cannot run) into 2."""
    backend = root / "backend"
    python = backend / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    command = [str(python), "-m", "tests.smoke"]
    status, output = run(command, backend, SMOKE_TIMEOUT, echo=True)
    if status == 2:
        raise EnvironmentProblem(
            "smoke test", "the smoke test could not run here", ["make smoke"], output
        )
    if status != 0:
        raise Defect("smoke test", f"`python -m tests.smoke` exited {status}", output)


# --- reporting -----------------------------------------------------------------------


class Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def step(self, label: str, action: Callable[[], str | None], slow: bool = False) -> str | None:
        began = time.perf_counter()
        if slow:  # say what is going on before a step that takes seconds
            print(f"  ..   {label}", flush=True)
        result = action()
        detail = f": {result}" if result else ""
        print(f"  ok   {label}{detail} ({time.perf_counter() - began:.2f} s)", flush=True)
        return result

    def skipped(self, label: str, why: str) -> None:
        print(f"  --   {label}: skipped ({why})", flush=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def key_variable(root: Path, provider: str) -> str | None:
    """The key variable `provider` needs, from the project's own provider table (a
    standard-library module, so cookiecutter's Python can load it); None when optional."""
    path = root / "backend" / "app" / "provider_table.py"
    spec = importlib.util.spec_from_file_location("provider_table", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except (OSError, SyntaxError):
        return None
    row = module.PROVIDERS.get(provider)
    return str(row.key_variable) if row is not None and row.key_required else None


def next_steps(root: Path, answers: Answers, installed: bool) -> list[str]:
    frontend = str(answers.get("frontend"))
    port = {"nextjs": "3000", "vite": "5173"}.get(frontend)
    where = f"http://localhost:{port}" if port else "the API on http://127.0.0.1:8000"
    steps = [f"cd {root.name}"]
    if not installed:
        steps.append("make install        # backend/.venv" + (" and npm ci" if port else ""))
    key = key_variable(root, str(answers.get("llm_provider")))
    if key:
        steps.append(f"# put your key in .env: {key}=...")
    if answers.get("auth") == "oidc":
        public = {"nextjs": "NEXT_PUBLIC_", "vite": "VITE_"}.get(frontend)
        page = (
            f"; {public}OIDC_ISSUER and {public}OIDC_CLIENT_ID in frontend/.env.local"
            if public
            else ""
        )
        steps.append(f"# sign-in: OIDC_ISSUER and OIDC_AUDIENCE in .env{page} (README, Sign-in)")
    steps.append(f"make dev            # {where}; one Ctrl-C stops it")
    return steps


def report_environment(problem: EnvironmentProblem, root: Path) -> None:
    print(f"\n{BANNER}\nWARNING: {problem.step} did not complete: {problem.reason}", flush=True)
    if problem.output:
        print(tail(problem.output, 25), flush=True)
    print(
        f"\nThe project is complete and kept at {root}.\n"
        "Nothing in it is wrong; once the above is fixed, run:\n"
        f"    cd {root.name}\n" + "".join(f"    {line}\n" for line in problem.then) + BANNER,
        flush=True,
    )


def report_defect(defect: Defect, root: Path) -> None:
    details = (
        f"FAILED: {defect.step}: {defect.reason}\n\n{tail(defect.output, 60)}\n\n"
        f"The project is kept at {root} so you can look at it.\n"
        "This is a bug in the template (or in a dependency's new release): please report it\n"
        "with this output. After a fix, `make smoke` runs the same check again.\n"
    )
    (root / FAILURE_FILE).write_text(details, encoding="utf-8")
    print(f"\n{'#' * 78}\n{details}(also written to {FAILURE_FILE})\n{'#' * 78}", flush=True)


# --- main ----------------------------------------------------------------------------


def main() -> int:
    root = Path.cwd()
    answers = ANSWERS
    if cruft_rerender(answers, root):
        shape(root, answers)
        record_answers(root, answers)
        return 0

    progress = Progress()
    print(f"\nChecking the new project {root.name}:", flush=True)
    choices = f"{answers['llm_provider']}, {answers['store_backend']}, {answers['frontend']}"
    progress.step(f"shape the project ({choices})", lambda: shape(root, answers))
    progress.step(f"record the answers in {ANSWERS_FILE}", lambda: record_answers(root, answers))
    progress.step(
        "write .env with a fresh SESSION_SECRET",
        lambda: None if write_env(root) else "kept the existing .env",
    )

    installed = False
    try:
        why_not = smoke_switched_off(answers)
        if why_not:
            progress.skipped("install and smoke test", why_not)
        else:
            progress.step(
                "install the backend (make install-backend)",
                lambda: install_backend(root),
                slow=True,
            )
            installed = True
            progress.step(
                "smoke test (make smoke): two turns through the fake provider",
                lambda: smoke_test(root),
                slow=True,
            )
    except EnvironmentProblem as problem:
        report_environment(problem, root)
        return 0
    except Defect as defect:
        report_defect(defect, root)
        return 1 if wanted(os.environ.get(STRICT_ENV, "")) else 0

    print(f"\nDone in {progress.elapsed:.1f} s. Next:", flush=True)
    for line in next_steps(root, answers, installed):
        print(f"    {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
