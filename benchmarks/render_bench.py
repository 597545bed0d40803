"""Render time per combination of answers, the hook's install and smoke test off.

Each render is cookiecutter's Python API (what `cookiecutter ... --no-input` runs after
its own start-up), timed end to end: the pre-generation hook, every file, and the
post-generation hook's shaping, answers and `.env`. The CLI's wall time, Python start-up
and imports included, is measured for the defaults too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, SKIP_SMOKE, TEMPLATE, median, render_with_output
from tests import provider_table

CHOICES = json.loads((TEMPLATE / "cookiecutter.json").read_text())
PROVIDERS: list[str] = CHOICES["llm_provider"]
STORES: list[str] = CHOICES["store_backend"]
FRONTENDS: list[str] = CHOICES["frontend"]


def combinations(quick: bool) -> list[dict[str, str]]:
    """Every provider with the default store and frontend, then every store x frontend."""
    if quick:
        return [
            {"llm_provider": "openai", "store_backend": "sqlite", "frontend": "nextjs"},
            {"llm_provider": "ollama", "store_backend": "postgres", "frontend": "none"},
        ]
    seen: list[dict[str, str]] = []
    for provider in PROVIDERS:
        seen.append({"llm_provider": provider, "store_backend": "sqlite", "frontend": "nextjs"})
    for store in STORES:
        for frontend in FRONTENDS:
            combo = {"llm_provider": "openai", "store_backend": store, "frontend": frontend}
            if combo not in seen:
                seen.append(combo)
    return seen


def answers_for(combo: dict[str, str]) -> dict[str, str]:
    extra = {}
    if combo["llm_provider"] in provider_table.NEEDS_BASE_URL:
        extra["llm_base_url"] = "https://llm.example.com/v1"
    return {**combo, **extra}


@contextlib.contextmanager
def hook_timer() -> Iterator[dict[str, float]]:
    """Seconds spent in each hook (cookiecutter runs each as a Python subprocess)."""
    import cookiecutter.generate as generate

    spent: dict[str, float] = {}
    original = generate.run_hook_from_repo_dir

    def timed(repo_dir: Any, hook_name: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(repo_dir, hook_name, *args, **kwargs)
        finally:
            spent[hook_name] = spent.get(hook_name, 0.0) + time.perf_counter() - started

    generate.run_hook_from_repo_dir = timed
    try:
        yield spent
    finally:
        generate.run_hook_from_repo_dir = original


def time_render(combo: dict[str, str], scratch: Path) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(dir=scratch))
    with hook_timer() as hooks:
        started = time.perf_counter()
        project, _ = render_with_output(out, **answers_for(combo))
        elapsed = time.perf_counter() - started
    if (project / "GENERATION_FAILED.txt").exists():
        failure = (project / "GENERATION_FAILED.txt").read_text()
        raise RuntimeError(f"render {combo} failed: {failure}")
    shutil.rmtree(out, ignore_errors=True)
    pre, post = hooks.get("pre_gen_project", 0.0), hooks.get("post_gen_project", 0.0)
    return {
        "total": elapsed,
        "pre_hook": pre,
        "post_hook": post,
        "files": elapsed - pre - post,
    }


def time_reference(template: Path, scratch: Path) -> dict[str, float]:
    """Another cookiecutter template with its defaults, timed the same way as ours."""
    from cookiecutter.main import cookiecutter

    out = Path(tempfile.mkdtemp(dir=scratch))
    with hook_timer() as hooks, contextlib.redirect_stdout(None):
        started = time.perf_counter()
        cookiecutter(str(template), no_input=True, output_dir=str(out))
        elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    pre, post = hooks.get("pre_gen_project", 0.0), hooks.get("post_gen_project", 0.0)
    return {"total": elapsed, "pre_hook": pre, "post_hook": post, "files": elapsed - pre - post}


def time_cli(scratch: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=scratch))
    cookiecutter = str(Path(PYTHON).with_name("cookiecutter"))
    started = time.perf_counter()
    subprocess.run(
        [cookiecutter, str(TEMPLATE), "--no-input", "-o", str(out), "run_smoke_test=false"],
        check=True,
        capture_output=True,
        env={**os.environ, **SKIP_SMOKE},
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def run(scratch: Path, quick: bool, references: dict[str, Path] | None = None) -> dict[str, Any]:
    """`references`: other templates (name -> local directory) timed in the same loop."""
    references = references or {}
    repetitions = 1 if quick else 5
    combos = combinations(quick)
    time_render(combos[0], scratch)  # imports and caches, off the clock
    for template in references.values():
        time_reference(template, scratch)
    runs: dict[int, list[dict[str, float]]] = {index: [] for index in range(len(combos))}
    reference_runs: dict[str, list[dict[str, float]]] = {name: [] for name in references}
    for _ in range(repetitions):
        for index, combo in enumerate(combos):  # interleaved, so drift hits all alike
            runs[index].append(time_render(combo, scratch))
        for name, template in references.items():
            reference_runs[name].append(time_reference(template, scratch))
    rows = []
    for index, combo in enumerate(combos):
        parts = {key: median([run[key] for run in runs[index]]) for key in runs[index][0]}
        rows.append({"combo": combo, "median": parts["total"], "parts": parts})
    cli = [time_cli(scratch) for _ in range(1 if quick else 3)]
    return {
        "repetitions": repetitions,
        "rows": rows,
        "median_of_medians": median([row["median"] for row in rows]),
        "worst_median": max(row["median"] for row in rows),
        "references": {
            name: {key: median([run[key] for run in timed]) for key in timed[0]}
            for name, timed in reference_runs.items()
        },
        "cli_default": median(cli),
        "cli_runs": cli,
    }
