"""Start-up: the generated backend's import and build against the SDKs it runs on.

Each figure is the wall time of a fresh interpreter (`python -c ...`, from the generated
backend's directory) doing one thing, the runs of the three kinds taking turns:

* **SDK floor**: `import chatkit.server, chatkit.agents, agents, fastapi`, the SDKs the app
  cannot start without;
* **app import + build**: `from app.main import create_app; create_app()`, the app as
  `uvicorn --factory app.main:create_app` builds it (settings from the environment, the
  SQLite store, the provider client and the agent), what every `--reload` of `make dev`
  and every new replica pays before serving;
* **... + start**: the same, then the app's lifespan startup on an already migrated
  SQLite file (the store opened, the startup objects frozen), for information.

Python's own start-up is in every figure alike; its exit is in none. Each run is timed
twice: wall time from launch to the work done, and the CPU time the process used until
then (user + system). The ratio is taken on CPU time, which other work on a shared
machine disturbs far less than wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, backend_env, median, ratio, say

GOAL_RATIO = 1.25

SDK_FLOOR = "import chatkit.server, chatkit.agents, agents, fastapi"
APP_BUILD = "from app.main import create_app; create_app()"
APP_START = """
import asyncio
from app.main import create_app
app = create_app()
async def start():
    async with app.router.lifespan_context(app):
        pass
asyncio.run(start())
"""

KINDS = {"floor": SDK_FLOOR, "app": APP_BUILD, "start": APP_START}


# Appended to each run's code: its CPU time and the clock when the work was done, before
# the interpreter's exit (which frees every object, and is no part of starting).
_REPORT = """
import json as _json, resource as _resource, time as _time
_usage = _resource.getrusage(_resource.RUSAGE_SELF)
print(_json.dumps({"cpu": _usage.ru_utime + _usage.ru_stime, "at": _time.time()}))
"""


def _timed(backend: Path, code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a fresh interpreter, from its launch to `code` done."""
    started = time.time()
    result = subprocess.run(
        [PYTHON, "-c", code + _REPORT],
        cwd=backend,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"start-up run failed:\n{code}\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout.splitlines()[-1])
    return report["at"] - started, report["cpu"]


def run(backend: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    runs = 1 if quick else 9
    database = scratch / "startup.db"
    env = {
        **os.environ,
        # The fake provider is never called: building the client opens no connection.
        **backend_env("http://127.0.0.1:9/v1", f"sqlite:///{database}"),
    }
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE"):  # the backend as uvicorn runs it
        env.pop(name, None)
    # Compiles the bytecode and migrates the file: the timed runs see neither.
    _timed(backend, APP_START, env)
    wall: dict[str, list[float]] = {kind: [] for kind in KINDS}
    cpu: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for number in range(runs):
        for kind, code in KINDS.items():
            elapsed, used = _timed(backend, code, env)
            wall[kind].append(elapsed)
            cpu[kind].append(used)
        say(
            f"startup run {number + 1}/{runs}: "
            + ", ".join(f"{kind} {cpu[kind][-1]:.2f} s CPU" for kind in KINDS)
        )
    cpu_s = {kind: median(values) for kind, values in cpu.items()}
    return {
        "runs": runs,
        "wall": wall,
        "cpu": cpu,
        "wall_s": {kind: median(values) for kind, values in wall.items()},
        "cpu_s": cpu_s,
        "ratio": ratio(cpu_s["app"], cpu_s["floor"]),
        "ratio_start": ratio(cpu_s["start"], cpu_s["floor"]),
        "goal_ratio": GOAL_RATIO,
    }


def main() -> None:
    """`python -m benchmarks.startup_bench BACKEND_DIR`: print the figures of one run."""
    import sys
    import tempfile

    backend = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        data = run(backend, Path(tmp), quick="--quick" in sys.argv)
    cpu, wall = data["cpu_s"], data["wall_s"]
    print(f"median of {data['runs']} runs: CPU time (wall time)")
    print(f"SDK floor           {cpu['floor']:.2f} s ({wall['floor']:.2f} s)")
    print(f"app import + build  {cpu['app']:.2f} s ({wall['app']:.2f} s): {data['ratio']:.2f}x")
    start, ratio_start = cpu["start"], data["ratio_start"]
    print(f"... + start         {start:.2f} s ({wall['start']:.2f} s): {ratio_start:.2f}x")


if __name__ == "__main__":
    main()
