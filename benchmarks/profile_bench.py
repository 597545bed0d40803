"""Where a turn's time goes: the generated backend under pyinstrument, at 20 conversations.

The app runs in its own uvicorn process through `benchmarks.servers.profiled`, which
profiles the event loop's thread from startup to shutdown. The samples are then split by
the package whose code ran (the innermost frame that belongs to one of CATEGORIES), so
a pydantic schema built by chatkit counts as chatkit's, and SQL compiled for our store
counts as the store's.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from pyinstrument.frame import Frame
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

from benchmarks.common import TEMPLATE, Service, run_load, say
from benchmarks.stream_bench import QUIET, UVICORN, generated_service

# (label, path prefixes); the first label whose prefix matches a frame's file wins.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    (
        "store: our SQL store, SQLAlchemy, SQLite",
        ("app/stores/", "sqlalchemy/", "aiosqlite/", "sqlite3/"),
    ),
    ("ChatKit server (chatkit/server.py)", ("chatkit/server.py",)),
    ("ChatKit stream_agent_response, converter", ("chatkit/agents.py",)),
    ("ChatKit types and other", ("chatkit/",)),
    ("openai client: request building, SSE parsing", ("openai/",)),
    ("HTTP client to the provider (httpx, httpcore)", ("httpx", "httpcore", "h11/", "anyio/")),
    ("Agents SDK runner", ("agents/",)),
    ("our app code (routes, streaming, history, identity)", ("app/",)),
    ("FastAPI and Starlette (routing, middleware, responses)", ("fastapi/", "starlette/")),
    ("uvicorn (httptools protocol)", ("uvicorn/", "httptools/")),
]
IDLE = "event loop (waiting for I/O, scheduling)"
# Upstream code that both ChatKit servers run on every turn: (label, file, function).
HOTSPOTS: list[tuple[str, str, str]] = [
    (
        "openai: each SSE event validated against the stream-event union (`construct_type`)",
        "openai/_models.py",
        "construct_type",
    ),
    (
        "openai: the request walk over every parameter (`async_maybe_transform`)",
        "openai/_utils/_transform.py",
        "async_maybe_transform",
    ),
    (
        "Agents SDK: a deep copy of the run's input (`RunState._clone_original_input`)",
        "agents/run_state.py",
        "_clone_original_input",
    ),
    (
        "Agents SDK: a sandbox session manager built per run",
        "agents/sandbox/runtime_session_manager.py",
        "__init__",
    ),
]
OTHER = "other (stdlib, logging, json...)"


def category_of(frame: Frame, inherited: str) -> str:
    path = frame.file_path_short or ""
    for label, prefixes in CATEGORIES:
        if path.startswith(prefixes):
            return label
    if frame.function == "run" and path == "asyncio/runners.py":
        return IDLE  # its own time: waiting in the (C) loop of uvloop, and scheduling
    return inherited


def split(session: Session) -> dict[str, float]:
    """Seconds per category; each frame's self time goes to its innermost category."""
    totals: dict[str, float] = defaultdict(float)
    root = session.root_frame()
    if root is None:
        return {}
    stack: list[tuple[Frame, str]] = [(root, OTHER)]
    while stack:
        frame, inherited = stack.pop()
        label = category_of(frame, inherited)
        own = frame.time - sum(child.time for child in frame.children)
        totals[label] += max(own, 0.0)
        stack.extend((child, label) for child in frame.children)
    return dict(totals)


def inclusive(session: Session, path: str, function: str) -> float:
    """Seconds under frames of `function` in `path` (outermost ones only, no double count)."""
    root = session.root_frame()
    total = 0.0
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        if frame.function == function and (frame.file_path_short or "") == path:
            total += frame.time
            continue
        stack.extend(frame.children)
    return total


def profile(service: Service, protocol: str, conversations: int, warmup: int) -> dict[str, Any]:
    """Load `service` (served by `benchmarks.servers.profiled`) and split its profile."""
    out = Path(service.env["BENCH_PROFILE_OUT"])
    with service:
        if service.process is None:
            service.launch(out.parent)
        service.wait_ready()
        run_load(service.url, protocol, warmup)
        data = run_load(service.url, protocol, conversations)
        # SIGINT: uvicorn shuts down gracefully, and the wrapper saves the session.
        service.stop(signal_int=True)
    session = Session.load(str(out))
    turns = data["turns"] + 5 * warmup
    by_category = split(session)
    say(f"profile of {service.name}: {session.duration:.1f} s, {session.sample_count} samples")
    tree = ConsoleRenderer(unicode=False, color=False, time="seconds").render(session)
    return {
        "turns": turns,
        "duration": session.duration,
        "cpu_time": session.cpu_time,
        "ms_per_turn": {label: 1000 * seconds / turns for label, seconds in by_category.items()},
        "type_adapter_ms_per_turn": 1000
        * inclusive(session, "pydantic/type_adapter.py", "__init__")
        / turns,
        "cpu_ms_per_turn": 1000 * session.cpu_time / turns,
        "hotspots_ms_per_turn": {
            label: 1000 * inclusive(session, path, function) / turns
            for label, path, function in HOTSPOTS
        },
        "tree": tree,
        "session": str(out),
    }


def profiled_services(backend: Path, fake_url: str, scratch: Path) -> dict[str, Service]:
    """The generated backend (SQLite) and the docs-pattern baseline, each under the profiler."""
    return {
        "generated": generated_service(
            backend,
            fake_url,
            f"sqlite+aiosqlite:///{scratch / 'profiled.db'}",
            name="generated-profiled",
            app="benchmarks.servers.profiled:app",
            BENCH_PROFILE_OUT=str(scratch / "generated.pyisession"),
        ),
        "baseline": Service(
            "baseline-profiled",
            [*UVICORN, *QUIET, "benchmarks.servers.profiled:app"],
            TEMPLATE,
            {
                "BENCH_PROVIDER_URL": fake_url,
                "BENCH_PROFILE_APP": "benchmarks.servers.baseline:app",
                "BENCH_PROFILE_OUT": str(scratch / "baseline.pyisession"),
            },
        ),
    }


def profile_both(
    services: dict[str, Service], conversations: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Both under the same load, one at a time (booted side by side unless already up)."""
    for service in services.values():
        if service.process is None:
            service.launch(Path(service.env["BENCH_PROFILE_OUT"]).parent)
    try:
        return {
            key: profile(service, "chatkit", conversations, warmup)
            for key, service in services.items()
        }
    finally:
        for service in services.values():
            service.stop()
