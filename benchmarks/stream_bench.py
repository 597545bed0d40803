"""Streaming throughput and TTFT: the generated backend against the docs-pattern baseline
and the relay floor, side by side, each served by uvicorn in its own process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import (
    PYTHON,
    TEMPLATE,
    Service,
    backend_env,
    median,
    percentile,
    run_load,
    say,
)

# The same uvicorn for every server: its defaults (`--loop auto --http auto` pick uvloop
# and httptools when installed, as `uvicorn[standard]` does), no access log lines.
UVICORN = [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
QUIET = ["--log-level", "warning"]


@dataclass
class Server:
    key: str
    label: str
    protocol: str
    service: Service


def generated_service(
    backend: Path,
    fake_url: str,
    database_url: str,
    name: str = "generated",
    app: str = "app.main:app",
    uvicorn_options: tuple[str, ...] = (),
    **env: str,
) -> Service:
    return Service(
        name,
        [*UVICORN, *uvicorn_options, *QUIET, app],
        cwd=backend,
        env={**backend_env(fake_url, database_url), "PYTHONPATH": str(TEMPLATE), **env},
    )


def comparison_servers(backend: Path, fake_url: str, scratch: Path) -> list[Server]:
    sqlite_url = f"sqlite+aiosqlite:///{scratch / 'generated.db'}"
    provider = {"BENCH_PROVIDER_URL": fake_url}
    return [
        Server(
            "generated",
            "generated backend (SQLite)",
            "chatkit",
            generated_service(backend, fake_url, sqlite_url),
        ),
        Server(
            "baseline",
            "docs-pattern ChatKit server (dict store)",
            "chatkit",
            Service(
                "baseline",
                [*UVICORN, *QUIET, "benchmarks.servers.baseline:app"],
                TEMPLATE,
                provider,
            ),
        ),
        Server(
            "relay",
            "relay floor (bare ASGI)",
            "relay",
            Service(
                "relay", [*UVICORN, *QUIET, "benchmarks.servers.relay:app"], TEMPLATE, provider
            ),
        ),
    ]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(
    server: Server, conversations: int, turns: int = 5, concurrency: int | None = None
) -> dict[str, Any]:
    """One load run: turns/s, TTFT percentiles and the server's CPU per turn."""
    cpu_before = cpu_seconds(server.service.pid)
    data = run_load(server.service.url, server.protocol, conversations, turns, concurrency)
    cpu = cpu_seconds(server.service.pid) - cpu_before
    return {
        "turns_per_s": data["turns"] / data["wall_seconds"],
        "ttft_p50": percentile(data["ttft"], 0.50),
        "ttft_p99": percentile(data["ttft"], 0.99),
        "turn_p50": percentile(data["total"], 0.50),
        "server_cpu_ms_per_turn": 1000 * cpu / data["turns"],
        "turns": data["turns"],
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the repetitions."""
    keys = [key for key in runs[0] if key != "turns"]
    summary = {key: median([run[key] for run in runs]) for key in keys}
    summary["repetitions"] = len(runs)
    summary["turns"] = runs[0]["turns"]
    summary["turns_per_s_range"] = (
        min(run["turns_per_s"] for run in runs),
        max(run["turns_per_s"] for run in runs),
    )
    return summary


def warm_up(server: Server, conversations: int) -> None:
    run_load(server.service.url, server.protocol, conversations, 5)


def compare(
    servers: list[Server],
    levels: tuple[int, ...],
    repetitions: int,
    warmup: int,
    logs: Path,
    conversations: dict[int, int] | None = None,
    before_stop: Callable[[], None] | None = None,
) -> dict[str, dict[int, dict[str, Any]]]:
    """Every server at every level, interleaved (rep, level, server) so drift hits all alike.

    At level n, a run holds `conversations[n]` conversations of 5 turns (default n), n
    at a time: more turns per run than n alone gives, for steadier figures.
    `before_stop` runs after the last run, while the servers are still up.
    """
    conversations = conversations or {}
    results: dict[str, dict[int, list[dict[str, Any]]]] = {
        s.key: {n: [] for n in levels} for s in servers
    }
    try:
        for server in servers:  # boot them side by side (unless the caller already did)
            if server.service.process is None:
                server.service.launch(logs)
        for server in servers:
            say(f"{server.key}: up in {server.service.wait_ready():.1f} s")
        for server in servers:
            warm_up(server, warmup)
        for rep in range(repetitions):
            for n in levels:
                for server in servers:
                    run = measure(server, conversations.get(n, n), concurrency=n)
                    results[server.key][n].append(run)
                    say(
                        f"rep {rep + 1}/{repetitions} {n:>3} conv {server.key:<10} "
                        f"{run['turns_per_s']:7.1f} turns/s  TTFT p50 "
                        f"{1000 * run['ttft_p50']:7.1f} ms p99 {1000 * run['ttft_p99']:7.1f} ms  "
                        f"CPU {run['server_cpu_ms_per_turn']:.1f} ms/turn"
                    )
        if before_stop is not None:
            before_stop()
    finally:
        for server in servers:
            server.service.stop()
    return {
        key: {n: summarize(runs) for n, runs in by_level.items()}
        for key, by_level in results.items()
    }


def variant_servers(
    backend: Path, fake_url: str, scratch: Path, undo_sets: dict[str, list[str]]
) -> list[Server]:
    """The generated backend with the named sets of changes undone (`benchmarks.undo`)."""
    servers = []
    for key, names in undo_sets.items():
        database = f"sqlite+aiosqlite:///{scratch / f'variant-{key}.db'}"
        if names == ["uvloop-httptools"]:
            service = generated_service(
                backend,
                fake_url,
                database,
                name=f"variant-{key}",
                uvicorn_options=("--loop", "asyncio", "--http", "h11"),
            )
        else:
            service = generated_service(
                backend,
                fake_url,
                database,
                name=f"variant-{key}",
                app="benchmarks.servers.variant:app",
                BENCH_UNDO=",".join(names),
            )
        servers.append(Server(key, key, "chatkit", service))
    return servers
