"""`make upgrade-diff`: what the template would generate today, against your working tree.

Regenerates the project from the answers recorded in `.cookiecutter.json` into a
temporary directory, from the latest template or from a given ref, and prints the
difference as a patch (your tree -> the template's). Local-only files are ignored
(.env, .venv, node_modules, databases, build output, caches); files that exist only in
your project are listed on stderr, not diffed.

    python scripts/upgrade_diff.py --template gh:you/chatkit-template [--checkout v2]
    make upgrade-diff TEMPLATE=../chatkit-template CHECKOUT=main

The template is `--template`, else $TEMPLATE, else the one `.cruft.json` records.
cookiecutter comes from this Python if it has it, else `uvx`, else `pipx run`.
Standard library only. The output applies with `git apply --reject`.
Exit status: 0 (1 with --exit-code when there are differences), 2 on errors.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWERS_FILE = ROOT / ".cookiecutter.json"
COOKIECUTTER_SPEC = "cookiecutter>=2.7,<3"
# Never compared: secrets, local environments, data, build output, caches, VCS.
IGNORED_NAMES = {
    ".env",
    ".env.local",
    ".venv",
    "venv",
    "node_modules",
    ".next",
    "dist",
    "out",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".git",
    ".cruft.json",
    "GENERATION_FAILED.txt",
    "next-env.d.ts",
}
IGNORED_PATTERNS = ("*.db", "*.db-wal", "*.db-shm", "*.sqlite3", "*.pyc", "*.tsbuildinfo", "*.rej")


class UpgradeDiffError(Exception):
    pass


def ignored(relative: Path) -> bool:
    return any(
        part in IGNORED_NAMES or any(fnmatch.fnmatch(part, p) for p in IGNORED_PATTERNS)
        for part in relative.parts
    )


def tree_files(root: Path) -> dict[str, Path]:
    files = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not ignored(relative):
            files[relative.as_posix()] = path
    return files


def recorded_answers() -> dict[str, object]:
    if not ANSWERS_FILE.exists():
        raise UpgradeDiffError(f"{ANSWERS_FILE.name} is missing: it records the template answers")
    data = json.loads(ANSWERS_FILE.read_text(encoding="utf-8"))
    answers = data.get("cookiecutter")
    if not isinstance(answers, dict):
        raise UpgradeDiffError(f'{ANSWERS_FILE.name} has no "cookiecutter" object')
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def template_source(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("TEMPLATE"):
        return os.environ["TEMPLATE"]
    cruft = ROOT / ".cruft.json"
    if cruft.exists():
        return str(json.loads(cruft.read_text(encoding="utf-8"))["template"])
    raise UpgradeDiffError(
        "which template? Pass --template (make upgrade-diff TEMPLATE=...): a git URL such "
        "as gh:owner/repo, or a local checkout of the template"
    )


def cookiecutter_command() -> list[str]:
    if importlib.util.find_spec("cookiecutter") is not None:
        return [sys.executable, "-m", "cookiecutter"]
    if shutil.which("uvx"):
        return ["uvx", "--from", COOKIECUTTER_SPEC, "cookiecutter"]
    if shutil.which("pipx"):
        return ["pipx", "run", "--spec", COOKIECUTTER_SPEC, "cookiecutter"]
    raise UpgradeDiffError(
        "cookiecutter is needed: install uv (https://docs.astral.sh/uv/) or pipx, "
        "or run this script with a Python that has cookiecutter"
    )


def as_cli_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def regenerate(template: str, checkout: str | None, answers: dict[str, object], out: Path) -> Path:
    local = Path(template).expanduser()
    if checkout and local.is_dir():
        # cookiecutter checks out refs of repositories only: clone the local one.
        template = f"git+file://{local.resolve().as_posix()}"
    elif local.is_dir():
        template = str(local.resolve())
    # A private config keeps cookiecutter's clones and replay files out of your home.
    config = out / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(out / 'templates'))}\n"
        f"replay_dir: {json.dumps(str(out / 'replay'))}\n"
    )
    command = [
        *cookiecutter_command(),
        template,
        "--no-input",
        "--config-file",
        str(config),
        "--output-dir",
        str(out / "render"),
    ]
    if checkout:
        command += ["--checkout", checkout]
    command += [f"{key}={as_cli_value(value)}" for key, value in answers.items()]
    # The answers are replayed with --no-input rather than --replay-file, so questions
    # added to the template since then take their defaults instead of prompting.
    env = {**os.environ, "CHATKIT_TEMPLATE_SKIP_SMOKE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise UpgradeDiffError(
            f"cookiecutter failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    projects = [path for path in (out / "render").iterdir() if path.is_dir()]
    if len(projects) != 1:
        raise UpgradeDiffError(f"expected one generated project, found {projects}")
    return projects[0]


def read_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def file_diff(name: str, ours: Path | None, theirs: Path | None) -> str:
    old = read_lines(ours) if ours else []
    new = read_lines(theirs) if theirs else []
    if old is None or new is None:
        same = ours and theirs and ours.read_bytes() == theirs.read_bytes()
        return "" if same else f"Binary files a/{name} and b/{name} differ\n"
    lines = list(
        difflib.unified_diff(
            old,
            new,
            fromfile=f"a/{name}" if ours else "/dev/null",
            tofile=f"b/{name}" if theirs else "/dev/null",
        )
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def diff_trees(project: Path, generated: Path) -> tuple[str, list[str]]:
    """(patch from the project to the generated tree, files only in the project)."""
    ours, theirs = tree_files(project), tree_files(generated)
    patch = "".join(
        file_diff(name, ours.get(name), theirs[name]) for name in sorted(theirs)
    )
    return patch, sorted(set(ours) - set(theirs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", help="template location (default: $TEMPLATE, .cruft.json)")
    parser.add_argument("--checkout", help="branch, tag or commit of the template")
    parser.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes")
    args = parser.parse_args(argv)
    try:
        answers = recorded_answers()
        template = template_source(args.template)
        with tempfile.TemporaryDirectory(prefix="upgrade-diff-") as scratch:
            generated = regenerate(template, args.checkout, answers, Path(scratch))
            patch, only_ours = diff_trees(ROOT, generated)
    except UpgradeDiffError as error:
        print(f"upgrade-diff: {error}", file=sys.stderr)
        return 2
    where = f"{template}" + (f" at {args.checkout}" if args.checkout else "")
    sys.stdout.write(patch)
    if only_ours:
        print(f"\nOnly in your project ({len(only_ours)}):", file=sys.stderr)
        for name in only_ours:
            print(f"  {name}", file=sys.stderr)
    if patch:
        print(f"\nThe diff above turns your tree into what {where} generates.", file=sys.stderr)
    else:
        print(f"No differences from what {where} generates.", file=sys.stderr)
    return 1 if patch and args.exit_code else 0


if __name__ == "__main__":
    sys.exit(main())
