"""Drop asyncio's "Task exception was never retrieved" for a dropped stream's last step.

Upstream (openai-chatkit 1.6.5): ``stream_agent_response`` awaits the agent stream's
next step in a task of its own. When a client hangs up, that step ends with
``StopAsyncIteration`` after nobody waits for it any more, and asyncio logs an ERROR
with a traceback for every dropped stream. A ``StopAsyncIteration`` only ever means that
an async iterator ended, so this event-loop exception handler drops exactly those.
No upstream issue found.

Cost: none (it runs only when asyncio reports an error); without it, a false ERROR in
the log per dropped stream.
"""

from __future__ import annotations

import asyncio
from typing import Any


def quiet_orphaned_stream_steps(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event-loop exception handler: drop that one harmless error, pass on the rest."""
    if isinstance(context.get("exception"), StopAsyncIteration):
        return
    loop.default_exception_handler(context)


def install(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_exception_handler(quiet_orphaned_stream_steps)
