"""An app under pyinstrument: `uvicorn benchmarks.servers.profiled:app`.

BENCH_PROFILE_APP names the app (default `app.main:app`, the generated backend's, run
from its directory). Profiles the event loop's thread from the first request (other than
`/health`) to shutdown and saves the session to BENCH_PROFILE_OUT (a .pyisession file).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from pyinstrument import Profiler

_module, _, _name = os.environ.get("BENCH_PROFILE_APP", "app.main:app").partition(":")
inner = getattr(importlib.import_module(_module), _name)

profiler = Profiler(interval=0.001, async_mode="disabled")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        if scope["type"] == "http" and scope["path"] != "/health" and not profiler.is_running:
            profiler.start()  # from the first real request: boot and idle time stay out
        await inner(scope, receive, send)
        return

    async def wrapped_receive() -> Any:
        message = await receive()
        if message["type"] == "lifespan.shutdown" and profiler.is_running:
            session = profiler.stop()
            session.save(os.environ["BENCH_PROFILE_OUT"])
        return message

    await inner(scope, wrapped_receive, send)
