"""Shape the generated project to the answers, check it, then install and smoke-test it.

Which files a project gets is decided by the two tables below, and nowhere else.

Steps, each printed with its time:
1. shape the tree (KEEP_WHEN, MOVES) and record the answers in `.cookiecutter.json`;
2. write the git-ignored `.env` with a fresh SESSION_SECRET (tracked files stay
   deterministic: the same answers and template commit give the same bytes);
3. static checks, always (well under a second): every `.py` compiles, JSON/TOML/YAML
   parse, no template syntax is left outside `_copy_without_render`, and `.env.example`
   names every field of `app.config.Settings`;
4. unless switched off (`run_smoke_test=false`, or CHATKIT_TEMPLATE_SKIP_SMOKE=1 for CI
   and scripted runs): create backend/.venv (uv when present, else venv + pip), install
   the backend with its dev extras and run the project's own smoke test,
   `python -m tests.smoke` (`make smoke`).

When cruft re-renders the template to compute `cruft update` / `cruft diff`, only step 1
runs, silently: no `.env` (its random secret would show up as a change), no install.

Failures never cost the user the new project:
* an environmental failure (no network, no Python 3.11+, a failed install, PostgreSQL
  down) keeps the project, prints a loud warning with the commands to run once fixed,
  and exits 0;
* a defect (a static check or the smoke test fails) prints a FAILED banner with the
  failing step and its output, writes it to GENERATION_FAILED.txt, and still exits 0,
  unless CHATKIT_TEMPLATE_STRICT=1 asks for exit status 1.
Why exit 0 on a defect: cookiecutter (and cruft, which calls it) deletes the whole
project directory when a post-generation hook exits non-zero, unless the user happened
to pass --keep-project-on-failure, which the hook cannot see. A non-zero exit would
throw away exactly the evidence needed to understand the failure (the tree, the venv,
the app's output). The banner is unmissable for a person; GENERATION_FAILED.txt is the
signal for scripts (test for the file), and CI of the template sets
CHATKIT_TEMPLATE_STRICT=1 (plus --keep-project-on-failure) to get a failing exit status.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
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
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".next", "dist"}
# Template syntax, spelled so that Jinja does not take this file's own text for it.
_VAR, _BLOCK = "{" + "{", "{" + "%"
LEFTOVER = re.compile(re.escape(_VAR) + r"\s*cookiecutter|" + re.escape(_BLOCK) + r"-?\s")
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
    for source, target in MOVES.items():
        if (root / source).exists():
            (root / source).rename(root / target)
    frontends = root / "frontends"
    if frontends.is_dir() and not any(p.is_dir() for p in frontends.iterdir()):
        remove(frontends)


def recorded_answers(answers: Answers) -> dict[str, object]:
    """What the user chose: no `_` keys (cookiecutter's paths, cruft's commit, prompts)."""
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def record_answers(root: Path, answers: Answers) -> None:
    """`.cookiecutter.json`, in the replay format: `cookiecutter TEMPLATE --replay-file`."""
    text = json.dumps({"cookiecutter": recorded_answers(answers)}, indent=2, ensure_ascii=False)
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


# --- static checks -------------------------------------------------------------------


def project_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not SKIP_DIRS.intersection(relative.parts):
            files.append(path)
    return files


def copied_verbatim(relative: str, patterns: list[str]) -> bool:
    """Whether the file came from a `_copy_without_render` path (MOVES undone)."""
    candidates = [relative]
    for source, target in MOVES.items():
        if relative == target or relative.startswith(target + "/"):
            candidates.append(source + relative[len(target) :])
    # cookiecutter matches the patterns against paths relative to the project template
    # directory, and a directory that matches is copied whole.
    return any(
        fnmatch.fnmatch(prefix, pattern)
        for candidate in candidates
        for prefix in _prefixes(candidate)
        for pattern in patterns
    )


def _prefixes(relative: str) -> list[str]:
    """`a/b/c` -> `a`, `a/b`, `a/b/c`."""
    parts = relative.split("/")
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


def settings_fields(config_py: Path) -> list[str]:
    """The fields of `app.config.Settings`, read from the source (nothing is imported)."""
    tree = ast.parse(config_py.read_text(encoding="utf-8"), str(config_py))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            return [
                statement.target.id
                for statement in node.body
                if isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and statement.target.id != "model_config"
                and not statement.target.id.startswith("_")
            ]
    raise ValueError(f"{config_py} has no class Settings")


def env_example_names(text: str) -> set[str]:
    """Variables `.env.example` names, set (`NAME=`) or shown commented out (`# NAME=`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def static_checks(root: Path, answers: Answers) -> tuple[str, list[str]]:
    """(summary, problems): compile, parse, look for template leftovers, compare settings."""
    problems: list[str] = []
    patterns = [str(p) for p in answers.get("_copy_without_render", []) or []]  # type: ignore[union-attr]
    counts = {"py": 0, "data": 0, "text": 0}
    try:
        import tomllib
    except ImportError:  # Python < 3.11 runs cookiecutter: TOML goes unchecked.
        tomllib = None  # type: ignore[assignment]
    try:
        import yaml
    except ImportError:  # cookiecutter depends on PyYAML, so this is unexpected.
        yaml = None  # type: ignore[assignment]

    for path in project_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        try:
            if path.suffix == ".py":
                compile(text, relative, "exec", dont_inherit=True)
                counts["py"] += 1
            elif path.suffix == ".json":
                json.loads(text)
                counts["data"] += 1
            elif path.suffix == ".toml" and tomllib is not None:
                tomllib.loads(text)
                counts["data"] += 1
            elif path.suffix in (".yml", ".yaml") and yaml is not None:
                list(yaml.safe_load_all(text))
                counts["data"] += 1
        except SyntaxError as error:
            problems.append(f"{relative}:{error.lineno}: does not compile: {error.msg}")
        except Exception as error:
            problems.append(f"{relative}: does not parse: {error}")
        if not copied_verbatim(relative, patterns):
            counts["text"] += 1
            match = LEFTOVER.search(text)
            if match:
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{relative}:{line}: unrendered template syntax")

    config_py = root / "backend" / "app" / "config.py"
    env_example = root / ".env.example"
    fields: list[str] = []
    try:
        fields = settings_fields(config_py)
        missing = sorted(
            name.upper()
            for name in fields
            if name.upper() not in env_example_names(env_example.read_text(encoding="utf-8"))
        )
        if missing:
            problems.append(
                f".env.example does not name {', '.join(missing)}, which "
                "backend/app/config.py (Settings) reads: add a line for each"
            )
    except (OSError, SyntaxError, ValueError) as error:
        problems.append(f"cannot compare .env.example with the settings: {error}")

    summary = (
        f"{counts['py']} .py compile, {counts['data']} JSON/TOML/YAML parse, "
        f"{counts['text']} rendered files free of template syntax, "
        f".env.example names all {len(fields)} settings"
    )
    return summary, problems


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


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def python_311() -> str | None:
    """A Python 3.11+ to build the venv from: the one running cookiecutter, or one on PATH."""
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


def run_quiet(command: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        return -1, f"timed out after {timeout:.0f} s\n{error.output or ''}"
    except OSError as error:
        return -1, str(error)
    return result.returncode, result.stdout + result.stderr


def run_streamed(command: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run, echoing each output line indented as it comes; returns (status, output)."""
    lines: list[str] = []
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            print(f"      | {line.rstrip()}", flush=True)
        status = process.wait()
    finally:
        timer.cancel()
    if status < 0:
        lines.append(f"stopped after {timeout:.0f} s (or killed by signal {-status})\n")
    return status, "".join(lines)


def tail(output: str, lines: int = 40) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def create_venv(backend: Path) -> str:
    venv = backend / ".venv"
    uv = shutil.which("uv")
    python = python_311()
    retry = ["make install", "make smoke"]
    if uv:
        command = [uv, "venv", "--allow-existing", "--python", python or "3.11", str(venv)]
        tool = "uv venv"
    elif python:
        command = [python, "-m", "venv", str(venv)]
        tool = "python -m venv"
    else:
        raise EnvironmentProblem(
            "create backend/.venv",
            "no Python 3.11+ found (and no uv to fetch one)",
            ["install Python 3.11+ or uv (https://docs.astral.sh/uv/)", *retry],
        )
    status, output = run_quiet(command, backend, INSTALL_TIMEOUT)
    if status != 0:
        raise EnvironmentProblem(
            "create backend/.venv", f"`{' '.join(command)}` failed", retry, output
        )
    return tool


def install_backend(backend: Path) -> str:
    python = str(venv_python(backend / ".venv"))
    uv = shutil.which("uv")
    if uv:
        command = [uv, "pip", "install", "--python", python, "-e", ".[dev]"]
    else:
        command = [python, "-m", "pip", "install", "--disable-pip-version-check", "-e", ".[dev]"]
    status, output = run_quiet(command, backend, INSTALL_TIMEOUT)
    if status != 0:
        raise EnvironmentProblem(
            "install the backend",
            "the install failed (no network, or the package index is unreachable?)",
            ["make install", "make smoke"],
            output,
        )
    return "uv pip" if uv else "pip"


def smoke_test(backend: Path) -> None:
    command = [str(venv_python(backend / ".venv")), "-m", "tests.smoke"]
    status, output = run_streamed(command, backend, SMOKE_TIMEOUT)
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
    """The API key variable of `provider`, read from the PROVIDERS table in providers.py."""
    try:
        tree = ast.parse((root / "backend" / "app" / "providers.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Provider":
            values = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
            if len(values) >= 4 and values[0] == provider:
                required = next(
                    (
                        kw.value.value
                        for kw in node.keywords
                        if kw.arg == "key_required" and isinstance(kw.value, ast.Constant)
                    ),
                    True,
                )
                return str(values[3]) if required else None
    return None


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
        _, problems = static_checks(root, answers)
        for problem in problems:
            print(f"template check: {problem}", file=sys.stderr)
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
        began = time.perf_counter()
        summary, problems = static_checks(root, answers)
        if problems:
            raise Defect("static checks", f"{len(problems)} problem(s)", "\n".join(problems))
        print(f"  ok   static checks: {summary} ({time.perf_counter() - began:.2f} s)", flush=True)

        why_not = smoke_switched_off(answers)
        if why_not:
            progress.skipped("install and smoke test", why_not)
        else:
            backend = root / "backend"
            progress.step("create backend/.venv", lambda: create_venv(backend), slow=True)
            progress.step(
                "install the backend with its dev extras",
                lambda: install_backend(backend),
                slow=True,
            )
            installed = True
            progress.step(
                "smoke test: two turns through the fake provider",
                lambda: smoke_test(backend),
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
