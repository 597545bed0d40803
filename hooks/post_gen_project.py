"""Shape the generated project to the answers, then write its local `.env`.

Which files a project gets is decided by the two tables below, and nowhere else.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

ANSWERS: dict[str, object] = json.loads({{ cookiecutter | jsonify | tojson }})

Answers = dict[str, object]

# path in the generated project -> keep it when this holds.
KEEP_WHEN: dict[str, Callable[[Answers], bool]] = {
    "frontends/nextjs": lambda a: a["frontend"] == "nextjs",
    "frontends/vite": lambda a: a["frontend"] == "vite",
    "frontends": lambda a: a["frontend"] != "none",
}

# path -> where it goes, for the paths that survived KEEP_WHEN.
MOVES: dict[str, str] = {
    "frontends/nextjs": "frontend",
    "frontends/vite": "frontend",
}


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


def write_env(root: Path) -> None:
    """A git-ignored `.env` with a fresh SESSION_SECRET; tracked files stay deterministic."""
    env = root / ".env"
    if env.exists():
        return
    lines = (root / ".env.example").read_text().splitlines()
    secret = secrets.token_urlsafe(32)
    env.write_text(
        "\n".join(f"SESSION_SECRET={secret}" if line.startswith("SESSION_SECRET=") else line
                  for line in lines) + "\n"
    )


def main() -> int:
    root = Path.cwd()
    shape(root, ANSWERS)
    write_env(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
