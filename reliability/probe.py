"""Launch uvicorn's own command line, with a probe the suite reads from outside.

    python reliability/probe.py app.main:app --host 127.0.0.1 --port 8000 ...

runs exactly what `uvicorn app.main:app ...` runs (the arguments go to uvicorn's CLI
unchanged), in a process that also answers SIGUSR1 by writing a JSON snapshot to
$RELIABILITY_PROBE_FILE: the event loop's task count (by coroutine), the thread count,
and the SQL store's connection pool (checked out, idle). Nothing is added to the app, no
route and no setting: the probe is a signal only this machine's same user can send, and
it exists only in processes this suite starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

PROBE_FILE_ENV = "RELIABILITY_PROBE_FILE"


def _coroutine_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or type(coro).__name__


def _pool() -> dict[str, int] | None:
    # vars(), not getattr(): app.main builds its `app` on first access, and this runs in
    # a signal handler of a process that has built it already (or runs the factory).
    app = vars(sys.modules["app.main"]).get("app") if "app.main" in sys.modules else None
    store = getattr(getattr(getattr(app, "state", None), "services", None), "store", None)
    # The engines the SQL store has built: on SQLite its queries go through a synchronous
    # engine and the async one exists once it migrated; both hold connections.
    engines = [vars(store).get("_engine"), getattr(store, "_inline", None)] if store else []
    pools = [engine.pool for engine in engines if engine is not None]
    if not pools:
        return None

    def total(method: str) -> int:
        return sum(int(getattr(pool, method)()) for pool in pools if hasattr(pool, method))

    return {
        "checked_out": total("checkedout"),
        "idle": total("checkedin"),
        "size": total("size"),
        "max_overflow": sum(int(getattr(pool, "_max_overflow", 0)) for pool in pools),
    }


def snapshot() -> dict[str, Any]:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    tasks = asyncio.all_tasks(loop) if loop is not None else set()
    return {
        "time": time.time(),
        "tasks": len(tasks),
        "task_names": dict(Counter(_coroutine_name(task) for task in tasks)),
        "threads": threading.active_count(),
        "pool": _pool(),
    }


def _on_signal(signum: int, frame: object) -> None:
    target = os.environ.get(PROBE_FILE_ENV)
    if not target:
        return
    path = Path(target)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(snapshot()))
    partial.replace(path)


def main() -> None:
    # Running a script puts its own folder first on sys.path; the app must not see it.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if entry and Path(entry).resolve() != Path(here)]
    signal.signal(signal.SIGUSR1, _on_signal)
    from uvicorn.main import main as uvicorn_main

    uvicorn_main(args=sys.argv[1:], prog_name="uvicorn")


if __name__ == "__main__":
    main()
