"""Render the template with the default answers and lint the generated backend as its own
`make lint` does: ruff check, ruff format --check and mypy --strict on app/ and tests/.

Usage: .venv/bin/python scripts/lint_render.py [key=value ...]   (pre-commit runs it)
The tools come from this Python's environment (.venv, which scripts/test creates).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
TOOLS = Path(sys.executable).parent


def main(argv: list[str]) -> int:
    answers = dict(arg.split("=", 1) for arg in argv)
    with tempfile.TemporaryDirectory() as out:
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=out,
                extra_context={"run_smoke_test": False, "frontend": "none", **answers},
            )
        )
        backend = project / "backend"
        for command in (
            [str(TOOLS / "ruff"), "check", "."],
            [str(TOOLS / "ruff"), "format", "--check", "."],
            [str(TOOLS / "mypy"), "app", "tests"],
        ):
            print(f"$ {Path(command[0]).name} {' '.join(command[1:])}", flush=True)
            if subprocess.run(command, cwd=backend, check=False).returncode != 0:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
