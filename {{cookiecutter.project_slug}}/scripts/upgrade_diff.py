"""`make upgrade-diff`: merge what the template changed since this project was made.

A three-way merge, file by file (`git merge-file`). The template is rendered from the
answers in `.cookiecutter.json` twice, into a temporary directory: at the base (the
commit this project records: `template_commit` in `.cookiecutter.json`, or the `commit`
of `.cruft.json`) and at the target (the template's default branch, or --checkout).
Only what changed between those two reaches your tree; your own edits stay.

    make upgrade-diff TEMPLATE=gh:you/chatkit-template      # dry run: list the files
    make upgrade-diff TEMPLATE=../chatkit-template DIFF=1   # ... and show each change
    make upgrade-diff TEMPLATE=... CHECKOUT=v2 APPLY=1      # write them
    python scripts/upgrade_diff.py --template T [--checkout REF] [--base REF] [--apply]

Every file the template changed is listed as one of:
    clean        only the template changed it (or you made the very same change)
    merged       you changed it too, elsewhere in the file: both kept
    conflicting  you both changed the same lines (--apply writes <<<<<<< markers), or one
                 side deleted a file the other changed (then your tree is left as it is)
    added        new in the template
    deleted      the template removed it and you had not changed it
Nothing is written without --apply, which also records the target commit in
`.cookiecutter.json` (and `.cruft.json`, when the project has one).

The template is --template, else $TEMPLATE, else the one `.cruft.json` names: a git URL,
gh:owner/repo, or a local clone (its commits, not uncommitted changes). Local-only files
are never compared (.env, .venv, node_modules, databases, build output, caches).
cookiecutter comes from this Python if it has it, else `uvx`, else `pipx run`; git is
needed. Standard library only.
Exit status: 0 when nothing conflicts, 1 when something does (also in a dry run),
2 on errors (one line that names the problem and the fix).
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWERS_FILE = ".cookiecutter.json"
CRUFT_FILE = ".cruft.json"
COOKIECUTTER_SPEC = "cookiecutter>=2.7,<3"
ABBREVIATIONS = {
    "gh": "https://github.com/{}.git",
    "gl": "https://gitlab.com/{}.git",
    "bb": "https://bitbucket.org/{}",
}
# Never compared: secrets, local environments, data, build output, caches, VCS, and
# the answers file (kept as it is; --apply records the new commit in it).
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
    ANSWERS_FILE,
    CRUFT_FILE,
    "GENERATION_FAILED.txt",
    "next-env.d.ts",
}
IGNORED_PATTERNS = ("*.db", "*.db-*", "*.sqlite3", "*.pyc", "*.tsbuildinfo", "*.rej", "*.orig")
STATUSES = ("clean", "merged", "conflicting", "added", "deleted")


class UpgradeError(Exception):
    """A problem the user fixes: the message names it and says how."""


@dataclass
class Change:
    path: str
    status: str
    content: bytes | None = None  # what the file becomes; None: removed, or left alone
    write: bool = False
    mode: int | None = None  # permission bits to give it, when the template changed them
    note: str = ""


# --- running things -------------------------------------------------------------------


def run(
    command: list[str], cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATKIT_TEMPLATE_SKIP_SMOKE": "1", "GIT_TERMINAL_PROMPT": "0"}
    try:
        return subprocess.run(  # noqa: S603 (git and cookiecutter, our own arguments)
            command, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise UpgradeError(f"`{' '.join(command[:3])} ...` took over {timeout:.0f} s") from error


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run(["git", *args], cwd=cwd)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def cookiecutter_command() -> list[str]:
    if importlib.util.find_spec("cookiecutter") is not None:
        return [sys.executable, "-m", "cookiecutter"]
    if shutil.which("uvx"):
        return ["uvx", "--from", COOKIECUTTER_SPEC, "cookiecutter"]
    if shutil.which("pipx"):
        return ["pipx", "run", "--spec", COOKIECUTTER_SPEC, "cookiecutter"]
    raise UpgradeError(
        "cookiecutter is needed: install uv (https://docs.astral.sh/uv/) or pipx, "
        "or run this script with a Python that has cookiecutter"
    )


# --- what the project records ---------------------------------------------------------


def read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UpgradeError(
            f"{path.name} is not valid JSON ({error.msg}, line {error.lineno}): "
            "fix it (a conflict left in it?) and run again"
        ) from error
    if not isinstance(data, dict):
        raise UpgradeError(f"{path.name} holds no JSON object: restore it from git")
    return data


def recorded(root: Path) -> tuple[dict[str, object], dict[str, object], dict[str, object] | None]:
    """(the answers file, its answers, .cruft.json or None)."""
    path = root / ANSWERS_FILE
    if not path.exists():
        raise UpgradeError(
            f"{ANSWERS_FILE} is missing: it holds the answers this project was generated "
            "with; restore it from git"
        )
    record = read_json(path)
    answers = record.get("cookiecutter")
    if not isinstance(answers, dict):
        raise UpgradeError(f'{ANSWERS_FILE} has no "cookiecutter" object: restore it from git')
    cruft = read_json(root / CRUFT_FILE) if (root / CRUFT_FILE).exists() else None
    return record, {k: v for k, v in answers.items() if not k.startswith("_")}, cruft


def template_source(given: str | None, cruft: dict[str, object] | None) -> str:
    source = given or os.environ.get("TEMPLATE") or str((cruft or {}).get("template") or "")
    if not source:
        raise UpgradeError(
            "which template? Pass TEMPLATE=... (make upgrade-diff TEMPLATE=gh:owner/repo), "
            "a git URL or a local clone of the template"
        )
    prefix, _, rest = source.partition(":")
    if prefix in ABBREVIATIONS and rest and not rest.startswith("//"):
        return ABBREVIATIONS[prefix].format(rest)
    local = Path(source).expanduser()
    if local.is_dir():
        return str(local.resolve())
    return source.removeprefix("git+")


def base_ref(
    given: str | None, record: dict[str, object], cruft: dict[str, object] | None
) -> tuple[str, str]:
    """(the base ref, where it came from)."""
    for ref, origin in (
        (given, "--base"),
        (os.environ.get("BASE"), "BASE"),
        (record.get("template_commit"), f"{ANSWERS_FILE}'s template_commit"),
        ((cruft or {}).get("commit"), f"{CRUFT_FILE}'s commit"),
    ):
        if isinstance(ref, str) and ref:
            return ref, origin
    raise UpgradeError(
        f"{ANSWERS_FILE} records no template_commit (the project was generated from a "
        "template with uncommitted changes, or by an older template): pass the template "
        "commit it was generated from, make upgrade-diff BASE=<commit>"
    )


# --- the template at two commits -------------------------------------------------------


def clone(source: str, into: Path) -> Path:
    result = git("clone", "--quiet", "--no-checkout", source, str(into))
    if result.returncode != 0:
        raise UpgradeError(
            f"the template at {source} cannot be cloned ({last_line(result)}): pass "
            "TEMPLATE= a git URL, gh:owner/repo or a local clone of the template"
        )
    return into


def resolve(repo: Path, ref: str) -> str | None:
    for candidate in (ref, f"origin/{ref}"):
        result = git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=repo)
        if result.returncode == 0:
            return result.stdout.strip()
    return None


def as_cli_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(
    repo: Path, commit: str, answers: dict[str, object], scratch: Path, directory: str
) -> Path:
    """The project the template generates at `commit` from `answers` (no install, no smoke)."""
    where = scratch / commit
    tree = where / "template"
    checkout = git("worktree", "add", "--detach", "--quiet", str(tree), commit, cwd=repo)
    if checkout.returncode != 0:
        raise UpgradeError(f"git cannot check out {commit[:12]}: {last_line(checkout)}")
    # A private config keeps cookiecutter's replay files out of your home.
    config = where / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(where / 'cookiecutters'))}\n"
        f"replay_dir: {json.dumps(str(where / 'replay'))}\n",
        encoding="utf-8",
    )
    # The answers go in as key=value with --no-input rather than as a replay file, so
    # questions the template gained since take their defaults instead of prompting.
    command = [
        *cookiecutter_command(),
        str(tree / directory) if directory else str(tree),
        "--no-input",
        "--config-file",
        str(config),
        "--output-dir",
        str(where / "render"),
        *(f"{key}={as_cli_value(value)}" for key, value in answers.items()),
    ]
    result = run(command)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise UpgradeError(
            f"the template at {commit[:12]} did not render with these answers "
            f"(cookiecutter exited {result.returncode}); its output:\n{output}"
        )
    projects = [path for path in (where / "render").iterdir() if path.is_dir()]
    if len(projects) != 1:
        raise UpgradeError(f"the template at {commit[:12]} rendered {len(projects)} projects")
    return projects[0]


# --- the merge ---------------------------------------------------------------------------


def ignored(relative: Path) -> bool:
    return any(
        part in IGNORED_NAMES or any(fnmatch.fnmatch(part, p) for p in IGNORED_PATTERNS)
        for part in relative.parts
    )


def tree_files(root: Path) -> dict[str, Path]:
    return {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file() and not ignored(path.relative_to(root))
    }


def read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None and path.is_file() else None


def mode_of(path: Path | None) -> int | None:
    return path.stat().st_mode & 0o777 if path is not None and path.is_file() else None


def merge_file(
    ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str], scratch: Path
) -> tuple[bytes, int | None]:
    """(merged bytes, conflict count); the count is None when git cannot merge (binary)."""
    names = []
    for name, content in zip(("ours", "base", "theirs"), (ours, base, theirs), strict=True):
        path = scratch / f"merge.{name}"
        path.write_bytes(content)
        names.append(str(path))
    command = ["git", "merge-file", "-p"]
    for label in labels:
        command += ["-L", label]
    result = subprocess.run([*command, *names], capture_output=True, check=False)  # noqa: S603
    # The status is the number of conflicts (at most 127); a failure is negative.
    if result.returncode < 0 or result.returncode > 127:
        return ours, None
    return result.stdout, result.returncode


def plan(
    root: Path, base_tree: Path, target_tree: Path, labels: tuple[str, str, str], scratch: Path
) -> list[Change]:
    base, target = tree_files(base_tree), tree_files(target_tree)
    changes = []
    for name in sorted(set(base) | set(target)):
        old, new = read(base.get(name)), read(target.get(name))
        old_mode, new_mode = mode_of(base.get(name)), mode_of(target.get(name))
        if old == new and old_mode == new_mode:
            continue  # the template did not change it
        mode = new_mode if new_mode != old_mode else None
        mine = read(root / name)
        if mine == new:
            changes.append(Change(name, "clean", new, mode is not None, mode, "already so"))
        elif new is None:
            if mine == old:
                changes.append(Change(name, "deleted", None, True))
            else:
                changes.append(
                    Change(name, "conflicting", note="the template deleted it, you changed it")
                )
        elif mine is None:
            if old is None:
                changes.append(Change(name, "added", new, True, new_mode))
            else:
                changes.append(
                    Change(name, "conflicting", note="you deleted it, the template changed it")
                )
        elif mine == old:
            changes.append(Change(name, "clean", new, True, mode))
        else:
            merged, conflicts = merge_file(mine, old or b"", new, labels, scratch)
            if conflicts is None:
                note = "binary, changed by you and by the template: yours is left as it is"
                changes.append(Change(name, "conflicting", note=note))
            elif conflicts == 0:
                changes.append(Change(name, "merged", merged, True, mode))
            else:
                plural = "s" if conflicts > 1 else ""
                note = f"{conflicts} conflict{plural}" + ("; both added it" if old is None else "")
                changes.append(Change(name, "conflicting", merged, True, mode, note))
    return changes


def show_diff(root: Path, change: Change) -> str:
    if not change.write:
        return ""
    before, after = read(root / change.path) or b"", change.content or b""
    try:
        old, new = before.decode("utf-8"), after.decode("utf-8")
    except UnicodeDecodeError:
        return f"Binary file {change.path} changes\n"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{change.path}" if (root / change.path).exists() else "/dev/null",
        tofile=f"b/{change.path}" if change.content is not None else "/dev/null",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def apply(root: Path, changes: list[Change]) -> None:
    for change in changes:
        if not change.write:
            continue
        path = root / change.path
        if change.content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(change.content)
        if change.mode is not None:
            path.chmod(change.mode)


def record_target(
    root: Path,
    record: dict[str, object],
    target: str,
    target_tree: Path,
    cruft: dict[str, object] | None,
) -> list[str]:
    """Record the target commit; questions the template gained go in at their defaults."""
    answers = record["cookiecutter"]
    rendered = read_json(target_tree / ANSWERS_FILE).get("cookiecutter")
    gained = []
    if isinstance(answers, dict) and isinstance(rendered, dict):
        gained = [key for key in rendered if key not in answers]
        answers.update({key: rendered[key] for key in gained})
    record["template_commit"] = target
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    (root / ANSWERS_FILE).write_text(text, encoding="utf-8")
    if cruft is not None:
        cruft["commit"] = target
        text = json.dumps(cruft, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
        (root / CRUFT_FILE).write_text(text, encoding="utf-8")
    return gained


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--template", help="the template: git URL, gh:owner/repo, local clone")
    parser.add_argument("--checkout", help="the target: branch, tag or commit (default: HEAD)")
    parser.add_argument("--base", help="the commit this project was generated from")
    parser.add_argument("--apply", action="store_true", help="write the merge")
    parser.add_argument("--diff", action="store_true", help="print what each file would become")
    args = parser.parse_args(argv)
    try:
        if shutil.which("git") is None:
            raise UpgradeError("git is needed: install git and run again")
        record, answers, cruft = recorded(ROOT)
        source = template_source(args.template, cruft)
        base_wanted, base_origin = base_ref(args.base, record, cruft)
        target_wanted = args.checkout or os.environ.get("CHECKOUT") or "HEAD"
        directory = str((cruft or {}).get("directory") or "")
        with tempfile.TemporaryDirectory(prefix="upgrade-diff-") as temporary:
            scratch = Path(temporary)
            repo = clone(source, scratch / "repo")
            base = resolve(repo, base_wanted)
            if base is None:
                raise UpgradeError(
                    f"the base commit {base_wanted} ({base_origin}) is not in the template "
                    f"at {source}: pass the commit this project was generated from, BASE=<commit>"
                )
            target = resolve(repo, target_wanted)
            if target is None:
                raise UpgradeError(
                    f"the template at {source} has no {target_wanted}: pass CHECKOUT= a "
                    "branch, tag or commit it has"
                )
            print(
                f"Template {source}: from {base[:12]} ({base_origin}) to {target[:12]} "
                f"({target_wanted})"
            )
            if base == target:
                print("Nothing to merge: this project is at that commit already.")
                return 0
            base_tree = render(repo, base, answers, scratch, directory)
            target_tree = render(repo, target, answers, scratch, directory)
            labels = ("yours", f"template {base[:12]}", f"template {target[:12]}")
            changes = plan(ROOT, base_tree, target_tree, labels, scratch)
            if args.diff:
                sys.stdout.write("".join(show_diff(ROOT, change) for change in changes))
            report(changes)
            conflicting = sum(change.status == "conflicting" for change in changes)
            if not args.apply:
                if changes:
                    print("Dry run: nothing written. APPLY=1 (--apply) writes this.")
                return 1 if conflicting else 0
            apply(ROOT, changes)
            gained = record_target(ROOT, record, target, target_tree, cruft)
    except UpgradeError as error:
        print(f"upgrade-diff: {error}", file=sys.stderr)
        return 2
    print(f"Applied; {ANSWERS_FILE} now records template_commit {target[:12]}.")
    if gained:
        print(f"New questions, answered with their defaults: {', '.join(gained)}.")
    if conflicting:
        print(
            f"{conflicting} file(s) conflict: resolve the <<<<<<< ======= >>>>>>> blocks "
            "(yours first, the template's second), then commit.",
            file=sys.stderr,
        )
        return 1
    return 0


def report(changes: list[Change]) -> None:
    if not changes:
        print("Nothing to merge: the template changed nothing this project has.")
        return
    for change in changes:
        note = f" ({change.note})" if change.note else ""
        print(f"  {change.status:<12} {change.path}{note}")
    counts = [f"{sum(c.status == s for c in changes)} {s}" for s in STATUSES]
    print(
        f"{len(changes)} file(s) changed by the template: "
        + ", ".join(count for count in counts if not count.startswith("0 "))
    )


if __name__ == "__main__":
    sys.exit(main())
