"""Generate-to-verified: `cookiecutter TEMPLATE --no-input` with the defaults, including the
post-generation hook's install (uv) and smoke test, with a warm and a cold package cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, TEMPLATE, median, say

STEP = re.compile(r"^\s+ok\s+(.*) \(([0-9.]+) s\)$", re.MULTILINE)
STEPS = {
    "create backend/.venv": "create backend/.venv",
    "install the backend with its dev extras": "install (uv pip install -e .[dev])",
    "smoke test: two turns through the fake provider": "smoke test",
}


def generate(scratch: Path, cache: Path | None) -> dict[str, Any]:
    """One `cookiecutter` run with the defaults; cache None keeps uv's own cache."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    env = {key: value for key, value in os.environ.items() if key != "CHATKIT_TEMPLATE_SKIP_SMOKE"}
    env["CHATKIT_TEMPLATE_STRICT"] = "1"
    if cache is not None:
        env["UV_CACHE_DIR"] = str(cache)
    cookiecutter = str(Path(PYTHON).with_name("cookiecutter"))
    started = time.perf_counter()
    result = subprocess.run(
        [cookiecutter, str(TEMPLATE), "--no-input", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1800,
    )
    elapsed = time.perf_counter() - started
    project = out / "my_chatkit_app"
    output = result.stdout + result.stderr
    verified = (
        result.returncode == 0
        and project.is_dir()
        and not (project / "GENERATION_FAILED.txt").exists()
        and "smoke test: two turns" in output
        and "WARNING" not in output
    )
    steps: dict[str, float] = {}
    for label, seconds in STEP.findall(output):
        for prefix, name in STEPS.items():
            if label.startswith(prefix):
                steps[name] = float(seconds)
    shutil.rmtree(out, ignore_errors=True)
    if not verified:
        raise RuntimeError(
            f"generate-to-verified did not verify (exit {result.returncode}):\n{output[-3000:]}"
        )
    return {"seconds": elapsed, "steps": steps}


def uv_version() -> str:
    uv = shutil.which("uv")
    if not uv:
        return "not found"
    return subprocess.run(
        [uv, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()


def run(scratch: Path, quick: bool) -> dict[str, Any]:
    if shutil.which("uv") is None:
        raise RuntimeError("uv is not on PATH: the hook would fall back to pip")
    warm_runs: list[dict[str, Any]] = []
    # The first run fills uv's cache with whatever it lacks; it is not counted.
    say("generate: priming uv's cache")
    generate(scratch, None)
    for index in range(1 if quick else 3):
        warm_runs.append(generate(scratch, None))
        say(f"generate (warm cache) {index + 1}: {warm_runs[-1]['seconds']:.1f} s")
    cold_runs: list[dict[str, Any]] = []
    if not quick:
        for index in range(2):
            with tempfile.TemporaryDirectory(dir=scratch, prefix="uv-cache-") as cache:
                cold_runs.append(generate(scratch, Path(cache)))
            say(f"generate (cold cache) {index + 1}: {cold_runs[-1]['seconds']:.1f} s")

    def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
        if not runs:
            return {}
        names = sorted({name for run in runs for name in run["steps"]})
        return {
            "median": median([run["seconds"] for run in runs]),
            "runs": [run["seconds"] for run in runs],
            "steps": {
                name: median([run["steps"].get(name, 0.0) for run in runs]) for name in names
            },
        }

    return {"warm": summary(warm_runs), "cold": summary(cold_runs), "uv": uv_version()}
