"""The generated app with some of this benchmark's performance changes undone.

`uvicorn benchmarks.servers.variant:app`, from the generated backend's directory, with
BENCH_UNDO naming changes of `benchmarks.undo` (comma-separated). Each undo puts back
the code as it was before the change, so a run can show what the change bought.
"""

from __future__ import annotations

import os

from benchmarks.undo import undo

undo([name for name in os.environ.get("BENCH_UNDO", "").split(",") if name])

from app.main import app  # noqa: E402  (after the undo, which patches its classes)

__all__ = ["app"]
