"""The cost of the production settings: the generated backend with its limits, metrics
and JSON logs on, against the same backend with them off, in one run, side by side.

"Off" is the streaming section's generated backend: every rate limit 0, no /metrics,
text logs at WARNING (no turn lines). "On" is what a deployment runs: every turn
checked against the per-user, per-IP, per-day and thread limits and the token budget
(limits high enough that the load is never refused), /metrics served, and one JSON line
per turn at the default LOG_LEVEL=INFO. The metrics are counted in both: only serving
them needs METRICS_TOKEN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from benchmarks import stream_bench

METRICS_TOKEN = "bench-metrics-token"
NEVER = "1000000000"  # a limit the load never reaches: every check runs, none refuses

ON = {
    "RATE_LIMIT_USER_TURNS_PER_MINUTE": NEVER,
    "RATE_LIMIT_IP_TURNS_PER_MINUTE": NEVER,
    "RATE_LIMIT_USER_TURNS_PER_DAY": NEVER,
    "RATE_LIMIT_IP_THREADS_PER_HOUR": NEVER,
    "TOKEN_BUDGET_USER_PER_DAY": NEVER,
    "METRICS_TOKEN": METRICS_TOKEN,
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
}


def servers(backend: Path, fake_url: str, scratch: Path) -> list[stream_bench.Server]:
    def sqlite(name: str) -> str:
        return f"sqlite+aiosqlite:///{scratch / f'{name}.db'}"

    on = stream_bench.generated_service(backend, fake_url, sqlite("prod-on"), name="on")
    on.env.update(ON)
    return [
        stream_bench.Server(
            "off",
            "limits, metrics, JSON logs off",
            "chatkit",
            stream_bench.generated_service(backend, fake_url, sqlite("prod-off"), name="off"),
        ),
        stream_bench.Server("on", "limits, metrics, JSON logs on", "chatkit", on),
    ]


def scrape(server: stream_bench.Server) -> dict[str, float]:
    """What the "on" server's /metrics counted, to show the turns went through them."""
    response = httpx.get(
        f"{server.service.url}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    wanted = ('chatkit_turns_total{outcome="ok"}', "chatkit_rate_limited_total")
    found: dict[str, float] = {}
    for line in response.text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def turn_log_lines(server: stream_bench.Server) -> int:
    """The JSON turn lines the "on" server wrote (its log file holds its stderr)."""
    path = server.service.log_path
    text = path.read_text() if path is not None and path.exists() else ""
    return sum(1 for line in text.splitlines() if '"logger": "app.turns"' in line)


def run(backend: Path, fake_url: str, scratch: Path, quick: bool) -> dict[str, Any]:
    # Not section 3's level 100: on 2 cores shared with other work (load 8 to 11) two
    # full runs each lost a turn there, the fake provider unreachable.
    levels: tuple[int, ...] = (1, 5) if quick else (1, 20)
    conversations = {1: 1, 5: 5} if quick else {1: 10, 20: 100}
    repetitions, warmup = (1, 1) if quick else (5, 20)
    pair = servers(backend, fake_url, scratch)
    on = pair[1]
    # compare() stops the servers at its end: what the "on" server counted is read first.
    counted: dict[str, Any] = {}

    def before_stop() -> None:
        counted["metrics"] = scrape(on)
        counted["turn_log_lines"] = turn_log_lines(on)

    results = stream_bench.compare(
        pair, levels, repetitions, warmup, scratch, conversations, before_stop=before_stop
    )
    return {
        "levels": levels,
        "conversations": conversations,
        "repetitions": repetitions,
        "warmup": warmup,
        "labels": {server.key: server.label for server in pair},
        "settings": ON,
        "results": results,
        **counted,
    }
