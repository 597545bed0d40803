"""Memory: the generated backend's resident set (RSS) at idle, then as turns accumulate on
SQLite, measured with psutil on the server process between load runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import run_load, say
from benchmarks.stream_bench import generated_service

MB = 1024 * 1024


def run(backend: Path, fake_url: str, scratch: Path, quick: bool) -> dict[str, Any]:
    total_turns, checkpoints = (50, 2) if quick else (10_000, 5)
    per_checkpoint = total_turns // checkpoints
    service = generated_service(
        backend, fake_url, f"sqlite+aiosqlite:///{scratch / 'memory.db'}", name="generated-memory"
    )
    with service:
        service.start(scratch)
        process = psutil.Process(service.pid)
        time.sleep(0.5 if quick else 1.0)  # let startup settle
        idle = process.memory_info().rss
        series = [{"turns": 0, "rss_mb": idle / MB}]
        done = 0
        started = time.perf_counter()
        for _ in range(checkpoints):
            data = run_load(service.url, "chatkit", per_checkpoint // 5, 5, concurrency=20)
            done += data["turns"]
            series.append({"turns": done, "rss_mb": process.memory_info().rss / MB})
            say(f"memory: {done} turns, RSS {series[-1]['rss_mb']:.1f} MB")
        elapsed = time.perf_counter() - started
    first = series[1]["rss_mb"]
    return {
        "idle_mb": idle / MB,
        "final_mb": series[-1]["rss_mb"],
        "growth_mb": series[-1]["rss_mb"] - idle / MB,
        "growth_after_first_checkpoint_mb": series[-1]["rss_mb"] - first,
        "series": series,
        "turns": done,
        "threads": done // 5,
        "seconds": elapsed,
    }
