"""docs/BENCHMARKS.md from one run's results: every figure is read from `results`."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import TEMPLATE
from benchmarks.undo import CHANGES, PROBES

PACKAGES = (
    "openai-chatkit",
    "openai-agents",
    "openai",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "httpx",
    "pydantic",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "cookiecutter",
    "pyinstrument",
    "psutil",
)
# Profile categories the baseline runs too: the SDKs and servers both stacks share.
SHARED = (
    "openai client: request building, SSE parsing",
    "Agents SDK runner",
    "HTTP client to the provider (httpx, httpcore)",
    "ChatKit stream_agent_response, converter",
    "uvicorn (httptools protocol)",
)
GOAL_RENDER_S = 0.3
GOAL_GENERATE_S = 20.0
GOAL_VS_BASELINE = 1.2
GOAL_VS_RELAY = 0.6
GOAL_TTFT_P99 = 1.2
GOAL_STORE_RATIO = 1.5
GOAL_GROWTH_MB = 50.0
# Limits, metrics and JSON logs on: at most this much fewer turns/s or more TTFT.
GOAL_PRODUCTION_SLOWER = 0.05
X = "\u00d7"  # the multiplication sign, for ratios


# --- environment ----------------------------------------------------------------------


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    uv = shutil.which("uv")
    uv_version = (
        subprocess.run(
            [uv, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if uv
        else "not found"
    )
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": psutil.virtual_memory().total / 1024**3,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "uv": uv_version,
        "commit": _git(["rev-parse", "--short", "HEAD"]),
        "dirty": bool(
            _git(
                [
                    "status",
                    "--porcelain",
                    "--",
                    "{{cookiecutter.project_slug}}",
                    "hooks",
                    "cookiecutter.json",
                ]
            )
        ),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(args: list[str]) -> str:
    result = subprocess.run(
        ["git", *args], cwd=TEMPLATE, capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def server_flags(project: Path) -> list[str]:
    """Lines of the project's run commands that pin uvicorn's event loop or HTTP parser."""
    found = []
    for relative in ("backend/Dockerfile", "README.md", "Makefile", "scripts/dev.py"):
        path = project / relative
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "uvicorn" in line and ("--loop" in line or "--http" in line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def dockerfile_cmd(dockerfile: Path) -> str:
    for line in dockerfile.read_text().splitlines():
        if line.startswith("CMD "):
            return line[4:].strip()
    return "(no CMD)"


# --- formatting -----------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{1000 * seconds:.1f} ms"


def sec(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds:.2f} s"


def times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}{X}"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


# --- the report ---------------------------------------------------------------------------


def render_markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    parts = [header(results, env)]
    goals: list[list[str]] = []
    sections = []
    if "render" in results:
        sections.append(render_section(results["render"], goals))
    if "generate" in results:
        sections.append(generate_section(results["generate"], goals))
    if "stream" in results:
        sections.append(stream_section(results["stream"], results["project"], env, goals))
    if "production" in results:
        sections.append(production_section(results["production"], goals))
    if "stores" in results:
        sections.append(stores_section(results["stores"], goals))
    if "memory" in results:
        sections.append(memory_section(results["memory"], goals))
    if "startup" in results:
        sections.append(startup_section(results["startup"], goals))
    if "attachments" in results:
        sections.append(attachments_section(results["attachments"], goals))
    if "frontend" in results:
        sections.append(frontend_section(results["frontend"], goals))
    parts.append("## Goals\n\n" + table(["Goal", "Figure", "Verdict"], goals))
    parts += sections
    return "\n\n".join(parts) + "\n"


def header(results: dict[str, Any], env: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    timing = ", ".join(
        f"{name} {duration(seconds)}"
        for name, seconds in results.get("section_seconds", {}).items()
    )
    commit = env["commit"] + (" with uncommitted changes" if env["dirty"] else "")
    quick = (
        "\n\n> **This is a `--quick` run: a smoke of the harness with tiny loads and one "
        "repetition. Its figures are not measurements.**"
        if results["quick"]
        else ""
    )
    rows = [
        ["Command", f"`{results['command']}`, in the template repository"],
        ["Date", results["date"]],
        [
            "Machine",
            f"{env['cores']} cores ({env['cpu']}), {env['memory_gb']:.0f} GB RAM, {env['os']}",
        ],
        ["Python", env["python"]],
        ["Template", f"commit {commit}"],
        ["Run time", f"{duration(results['seconds'])} ({timing})"],
        [
            "Load average",
            "1/5/15 min: "
            + "/".join(f"{value:.2f}" for value in results["load_before"])
            + " before the run, "
            + "/".join(f"{value:.2f}" for value in results["load_after"])
            + " after it (other work on the machine shows here)",
        ],
        ["Versions", versions + f", {env['uv']}"],
    ]
    return (
        "# Benchmarks\n\n"
        "Written by `python -m benchmarks` (see `benchmarks/`): every figure below comes from "
        "the one run described here, on one machine, against one loopback fake provider that "
        "answers instantly (the generated project's `tests/fake_provider.py`, no delay between "
        "deltas, in a process of its own). Figures are medians of repeated runs unless a table "
        "says otherwise. They are measurements, not CI assertions; CI runs "
        "`python -m benchmarks --quick` (tests/test_benchmarks_smoke.py) so the harness does "
        "not rot." + quick + "\n\n" + table(["", ""], rows)
    )


def combo_label(combo: dict[str, str]) -> str:
    return f"{combo['llm_provider']}, {combo['store_backend']}, {combo['frontend']}"


def render_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    rows = []
    for row in data["rows"]:
        parts = row["parts"]
        rows.append(
            [
                combo_label(row["combo"]),
                f"**{sec(parts['total'])}**",
                sec(parts["pre_hook"]),
                sec(parts["files"]),
                sec(parts["post_hook"]),
            ]
        )
    worst = data["worst_median"]
    goals.append(
        [
            f"Render, hook smoke off: median under {GOAL_RENDER_S} s per combination",
            f"slowest combination {sec(worst)}, median of all {sec(data['median_of_medians'])}",
            verdict(worst < GOAL_RENDER_S),
        ]
    )
    return (
        "## 1. Render time\n\n"
        "cookiecutter's Python API with `--no-input`-style answers, `run_smoke_test=false` and "
        "`CHATKIT_TEMPLATE_SKIP_SMOKE=1`, timed end to end in one process: the pre-generation "
        "hook (a Python subprocess), every file, and the post-generation hook (a Python "
        "subprocess: shaping, recording the answers and writing `.env`). "
        f"Each combination {data['repetitions']} times, interleaved; the median of each column "
        "is shown (so the parts need not add up exactly). Every provider with the default "
        f"store and frontend, then every store {X} frontend.\n\n"
        + table(
            [
                "Provider, store, frontend",
                "Render",
                "pre-gen hook",
                "files + cookiecutter",
                "post-gen hook",
            ],
            rows,
        )
        + f"\n\nMedian over the combinations: **{sec(data['median_of_medians'])}**; slowest "
        f"combination: {sec(worst)}. The CLI with the defaults, `cookiecutter TEMPLATE "
        f"--no-input run_smoke_test=false`, takes {sec(data['cli_default'])} wall "
        f"(median of {len(data['cli_runs'])}): the rest is Python's start-up and cookiecutter's "
        "imports. The two hooks are two Python start-ups; the pre-generation hook also loads "
        "the provider table from the template." + reference_part(data)
    )


def reference_part(data: dict[str, Any]) -> str:
    references = data.get("references") or {}
    if not references:
        return ""
    rows = [
        [
            name,
            f"**{sec(parts['total'])}**",
            sec(parts["pre_hook"]),
            sec(parts["files"]),
            sec(parts["post_hook"]),
        ]
        for name, parts in references.items()
    ]
    return (
        "\n\nOther templates in the same loop, with their own defaults, timed the same way "
        "(`--reference-template`; checkouts of their repositories, not part of this one), "
        "to show this machine's speed against the figures the goal quotes:\n\n"
        + table(
            ["Template", "Render", "pre-gen hook", "files + cookiecutter", "post-gen hook"], rows
        )
    )


def generate_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    def steps(summary: dict[str, Any]) -> str:
        return ", ".join(f"{name} {sec(value)}" for name, value in summary.get("steps", {}).items())

    rows = []
    for label, key in (("warm uv cache", "warm"), ("cold uv cache (`UV_CACHE_DIR` empty)", "cold")):
        summary = data.get(key) or {}
        if not summary:
            rows.append([label, "not run", "", ""])
            continue
        runs = ", ".join(sec(value) for value in summary["runs"])
        rows.append([label, f"**{sec(summary['median'])}**", runs, steps(summary)])
    warm = (data.get("warm") or {}).get("median", math.nan)
    goals.append(
        [
            f"Generate-to-verified, warm cache: under {GOAL_GENERATE_S:.0f} s",
            sec(warm),
            verdict(warm < GOAL_GENERATE_S),
        ]
    )
    return (
        "## 2. Generate to verified\n\n"
        "`cookiecutter TEMPLATE --no-input -o DIR` with the defaults (OpenAI, SQLite, Next.js), "
        "including the post-generation hook's install (`uv venv`, `uv pip install -e .[dev]`) "
        "and its smoke test (`python -m tests.smoke`: the app under uvicorn, two turns through "
        "the fake provider, history and ids checked), with `CHATKIT_TEMPLATE_STRICT=1`. A run "
        "counts only if the smoke test passed and nothing was reported. Wall time of the whole "
        "command; the hook's own step timings alongside. A first, uncounted run fills uv's "
        f"cache for the warm runs. {data['uv']}. The cold runs download every package from "
        "the package index this machine is configured with, so they measure its network path "
        "too. The frontend's `npm ci` is not part of generation.\n\n"
        + table(["Package cache", "Median", "Runs", "Hook steps (median)"], rows)
    )


def load_row(n: int, label: str, figures: dict[str, Any], turn_p50: bool) -> list[str]:
    """One server at one load level: turns/s (median, range), TTFT, [turn p50], CPU/turn."""
    row = [
        str(n),
        label,
        f"**{figures['turns_per_s']:.1f}**",
        "{:.1f} to {:.1f}".format(*figures["turns_per_s_range"]),
        ms(figures["ttft_p50"]),
        ms(figures["ttft_p99"]),
    ]
    if turn_p50:
        row.append(ms(figures["turn_p50"]))
    return [*row, f"{figures['server_cpu_ms_per_turn']:.1f} ms"]


def stream_section(
    data: dict[str, Any], project: dict[str, Any], env: dict[str, Any], goals: list[list[str]]
) -> str:
    comparison = data["comparison"]
    labels = data["labels"]
    levels = data["levels"]
    rows = []
    for n in levels:
        for key in ("generated", "baseline", "relay"):
            rows.append(load_row(n, labels[key], comparison[key][n], turn_p50=True))
    ratio_rows = []
    verdicts: dict[int, dict[str, float]] = {}
    for n in levels:
        g, b, r = (comparison[key][n] for key in ("generated", "baseline", "relay"))
        v = {
            "baseline": g["turns_per_s"] / b["turns_per_s"],
            "relay": g["turns_per_s"] / r["turns_per_s"],
            "ttft": g["ttft_p99"] / b["ttft_p99"],
            "cpu": g["server_cpu_ms_per_turn"] / b["server_cpu_ms_per_turn"],
        }
        verdicts[n] = v
        ratio_rows.append(
            [
                str(n),
                times(v["baseline"]),
                times(v["relay"]),
                times(v["ttft"]),
                times(v["cpu"]),
            ]
        )
    goal_level = 20 if 20 in levels else levels[-1]
    v = verdicts[goal_level]
    goals.append(
        [
            f"Streaming, SQLite: ≥ {GOAL_VS_BASELINE}{X} the baseline's turns/s",
            ", ".join(f"{times(verdicts[n]['baseline'])} at {n}" for n in levels),
            verdict(all(verdicts[n]["baseline"] >= GOAL_VS_BASELINE for n in levels)),
        ]
    )
    goals.append(
        [
            f"Streaming, SQLite: ≥ {GOAL_VS_RELAY}{X} the relay floor's turns/s",
            ", ".join(f"{times(verdicts[n]['relay'])} at {n}" for n in levels),
            verdict(all(verdicts[n]["relay"] >= GOAL_VS_RELAY for n in levels)),
        ]
    )
    goals.append(
        [
            f"p99 TTFT ≤ {GOAL_TTFT_P99}{X} the baseline's at {goal_level} conversations",
            times(v["ttft"]),
            verdict(v["ttft"] <= GOAL_TTFT_P99),
        ]
    )
    conversations = data["conversations"]
    method = (
        "## 3. Streaming throughput and TTFT\n\n"
        "Three servers, each in its own uvicorn process with the same flags (uvicorn's "
        f"defaults `--loop auto --http auto`, which pick uvloop {env['versions']['uvloop']} and "
        f"httptools {env['versions']['httptools']}, both installed by `uvicorn[standard]`; "
        "`--log-level warning`), all streaming from the same fake provider process:\n\n"
        "* **generated**: the generated backend (defaults: OpenAI Responses API, SQLite file, "
        "`history_limit` 50), run as `uvicorn app.main:app`, cookie sessions, its middleware, "
        "its agent with its `current_time` tool;\n"
        '* **baseline**: the minimal server of the ChatKit docs\' "Respond to a user message" '
        "guide, written in `benchmarks/servers/baseline.py`: a dict store, `respond` loading "
        "the last 20 items and converting them with `simple_to_agent_input`, "
        "`OpenAIResponsesModel` + `Runner.run_streamed` + `stream_agent_response`, a FastAPI "
        "endpoint calling `server.process`;\n"
        "* **relay**: the floor, `benchmarks/servers/relay.py`, a bare ASGI app that sends the "
        "message to the provider with httpx and relays its SSE events as they arrive.\n\n"
        "The load comes from `benchmarks/load.py` in a separate process: an async httpx "
        "client per conversation (its own cookie jar and connection), each conversation 5 "
        "turns in sequence (`threads.create`, then `threads.add_user_message`; for the relay, "
        "5 POSTs). At level n, n conversations run at once; a run holds "
        + ", ".join(f"{conversations[n]} conversations at level {n}" for n in levels)
        + f". {data['repetitions']} runs per server and level, interleaved, after "
        f"{data['warmup']} warm-up conversations each; the table shows the median of the runs "
        "for each column, and the spread of turns/s over all of them. "
        "**turns/s**: completed turns over the run's wall time. **TTFT**: from sending the "
        "request to the first text delta in the stream (p50 and p99 over the run's turns). "
        "**turn**: to the end of the stream. **server CPU**: the server process's CPU time "
        "(psutil) over the run, per turn. The machine has "
        f"{env['cores']} cores for the server, the fake provider and the driver together.\n\n"
    )
    out = method + table(
        [
            "Conversations",
            "Server",
            "turns/s",
            "turns/s, all runs",
            "TTFT p50",
            "TTFT p99",
            "turn p50",
            "server CPU/turn",
        ],
        rows,
    )
    out += "\n\nRatios (generated / other):\n\n" + table(
        [
            "Conversations",
            "turns/s vs baseline",
            "turns/s vs relay",
            "TTFT p99 vs baseline",
            "CPU per turn vs baseline",
        ],
        ratio_rows,
    )
    out += "\n\n" + profile_part(data["profile"], verdicts, goal_level)
    out += "\n\n" + ablation_part(data["ablation"])
    out += "\n\n" + limits_part(data, verdicts, goal_level)
    pinned = project["server_flags"]
    out += (
        "\n\n### uvloop and httptools in the generated project\n\n"
        f"The Dockerfile's command is `{project['dockerfile_cmd']}`. "
        + (
            "No run command of the project (Dockerfile, README, Makefile, `scripts/dev.py`) "
            "pins `--loop` or `--http`, so uvicorn's `auto` picks uvloop and httptools, which "
            "`uvicorn[standard]`, a dependency, installs."
            if not pinned
            else "These run commands pin the loop or the parser: "
            + "; ".join(f"`{line}`" for line in pinned)
            + "."
        )
        + " The `asyncio + h11` row above shows what the pair is worth."
    )
    return out


def profile_part(profiles: dict[str, Any], verdicts: dict[int, Any], level: int) -> str:
    generated, baseline = profiles["generated"], profiles["baseline"]
    labels = sorted(
        set(generated["ms_per_turn"]) | set(baseline["ms_per_turn"]),
        key=lambda label: -generated["ms_per_turn"].get(label, 0.0),
    )
    rows = []
    for label in labels:
        g = generated["ms_per_turn"].get(label, 0.0)
        b = baseline["ms_per_turn"].get(label, 0.0)
        rows.append([label, f"{g:.2f}", f"{b:.2f}", f"{g - b:+.2f}"])
    busy_g = sum(
        value for key, value in generated["ms_per_turn"].items() if not key.startswith("event loop")
    )
    busy_b = sum(
        value for key, value in baseline["ms_per_turn"].items() if not key.startswith("event loop")
    )
    shared = sum(generated["ms_per_turn"].get(label, 0.0) for label in SHARED)
    store = generated["ms_per_turn"].get("store: our SQL store, SQLAlchemy, SQLite", 0.0)
    chatkit_b = baseline["ms_per_turn"].get("ChatKit server (chatkit/server.py)", 0.0)
    tree = "\n".join(generated["tree"].strip().splitlines()[:70])
    floor_ratio = busy_b / shared if shared else math.nan
    adapter_b, adapter_g = (
        baseline["type_adapter_ms_per_turn"],
        generated["type_adapter_ms_per_turn"],
    )
    return (
        "### Where the time goes\n\n"
        f"Both ChatKit servers under pyinstrument (`benchmarks/servers/profiled.py`, 1 ms "
        f"sampling of the event loop's thread) for {level} conversations at once after a "
        "warm-up, the same load as above. Each sample's time goes to the innermost frame's "
        "package (`benchmarks/profile_bench.py`), so a pydantic schema chatkit builds counts "
        "as chatkit's. Milliseconds of the loop thread per turn. The profiler inflates every "
        f"cost (the profiled generated backend used {generated['cpu_ms_per_turn']:.1f} ms of "
        f"CPU per turn, the profiled baseline {baseline['cpu_ms_per_turn']:.1f} ms), so compare "
        "the columns with each other, not with the CPU figures above.\n\n"
        + table(["Where", "generated", "baseline", "difference"], rows)
        + f"\n\nBusy time per turn (all but the loop's waiting): generated {busy_g:.1f} ms, "
        f"baseline {busy_b:.1f} ms. In the generated backend, {shared:.1f} ms of it is code both "
        "servers run the same way: the openai client building the Responses request and "
        "parsing its SSE stream, the Agents SDK's runner, httpx to the provider, chatkit's "
        "`stream_agent_response`, uvicorn. The store (SQLAlchemy Core on a sqlite3 connection "
        "in the event loop's thread: per "
        "turn a load of the thread, the history page and two item upserts; two thread saves "
        f"on a conversation's first turn) takes {store:.1f} ms. "
        f"The baseline spends {chatkit_b:.1f} ms in chatkit's server, {adapter_b:.1f} ms of "
        "it building pydantic `TypeAdapter`s (chatkit's `process()` builds one of the whole "
        "request union on every request); the generated backend builds it once "
        f"({adapter_g:.1f} ms per turn left in `TypeAdapter` construction, the openai client's). "
        "Were the generated backend only the code it shares with the baseline, it would run "
        f"at about {times(floor_ratio)} the baseline's speed: everything it adds (the store, "
        "its example tool's share of the SDK time, sessions, middleware) has to fit in that "
        f"margin for the goal of {GOAL_VS_BASELINE}{X}.\n\n"
        "<details><summary>The generated backend's profile (pyinstrument, library frames "
        "folded)</summary>\n\n```\n" + tree + "\n```\n\n</details>"
    )


def limits_part(data: dict[str, Any], verdicts: dict[int, Any], level: int) -> str:
    """What holds the throughput goals back, from this run's figures."""
    g, b, r = (data["comparison"][key][level] for key in ("generated", "baseline", "relay"))
    profile_g = data["profile"]["generated"]["ms_per_turn"]
    profile_b = data["profile"]["baseline"]
    results = data["ablation"]["results"]
    tool = results.get("probe: no-example-tool")
    lines = [
        "### What limits the throughput goals, and what would move them\n",
        f"At {level} conversations the generated backend serves "
        f"{times(verdicts[level]['baseline'])} the baseline's turns/s and "
        f"{times(verdicts[level]['relay'])} the relay's, using {g['server_cpu_ms_per_turn']:.1f} "
        f"ms of server CPU per turn against the baseline's {b['server_cpu_ms_per_turn']:.1f} ms "
        f"and the relay's {r['server_cpu_ms_per_turn']:.1f} ms: every server is CPU-bound here, "
        "so turns/s follows CPU per turn.\n",
    ]
    if tool is not None:
        now = results["now"]
        saved = now["server_cpu_ms_per_turn"] - tool["server_cpu_ms_per_turn"]
        measured = (
            f"without `current_time` the generated backend served {tool['turns_per_s']:.1f} "
            f"turns/s against {now['turns_per_s']:.1f} in the same runs, "
            f"{tool['server_cpu_ms_per_turn']:.1f} ms of CPU per turn against "
            f"{now['server_cpu_ms_per_turn']:.1f} ms"
        )
        if saved > 0.5 and tool["turns_per_s"] > now["turns_per_s"]:
            lines.append(
                f"* **The example tool.** The probe above: {measured}. The Agents SDK prepares "
                "the tool and the openai client serializes its schema on every model request; "
                "the docs' baseline has no tool. A project that does not need the demo tool "
                "gains this by deleting it from `TOOLS` in `app/extensions.py`."
            )
        else:
            lines.append(
                f"* **The example tool.** Not a limit in this run: {measured}, within the "
                "noise of these runs."
            )
    store = profile_g.get("store: our SQL store, SQLAlchemy, SQLite", 0.0)
    lines.append(
        f"* **Persistence.** The store takes {store:.1f} ms per turn in the profile (four to "
        "five SQLAlchemy statements on a sqlite3 connection in the event loop's thread, and "
        "parsing the history's JSON); the baseline's dicts take none."
    )
    shared_g = sum(profile_g.get(label, 0.0) for label in SHARED)
    shared_b = sum(profile_b["ms_per_turn"].get(label, 0.0) for label in SHARED)
    hotspots = data["profile"]["generated"].get("hotspots_ms_per_turn", {})
    named = "; ".join(f"{label}: {value:.1f} ms" for label, value in hotspots.items())
    needed = r["server_cpu_ms_per_turn"] / GOAL_VS_RELAY
    lines.append(
        "* **The SDKs, for both ChatKit servers.** The openai client (building the request, "
        "parsing and validating every SSE event), the Agents SDK's runner, httpx, chatkit's "
        f"`stream_agent_response` and uvicorn take {shared_g:.1f} ms per turn of the generated "
        f"backend's profile and {shared_b:.1f} ms of the baseline's. The relay floor runs none "
        f"of it: it uses {r['server_cpu_ms_per_turn']:.1f} ms of CPU per turn, so "
        f"{GOAL_VS_RELAY}{X} of its turns/s leaves a ChatKit server about {needed:.1f} ms per "
        "turn, less than the SDK code alone. The baseline itself serves "
        f"{times(b['turns_per_s'] / r['turns_per_s'])} the relay's turns/s. The largest "
        f"named parts, per turn of the generated backend's profile: {named}. Moving the "
        "relay goal means changes upstream (openai-python, openai-agents), or a backend "
        "that calls the provider without the Agents SDK, which would give up what the "
        "template is built on: agents, tools, MCP servers and both API styles."
    )
    return "\n".join(lines)


def ablation_part(data: dict[str, Any]) -> str:
    results = data["results"]
    now = results["now"]
    rows = []
    for key, figures in results.items():
        names = data["sets"][key]
        if key == "now":
            what = "the generated backend as it is"
        elif key == "before":
            what = "all of the changes below undone"
        elif names == ["uvloop-httptools"]:
            what = "uvicorn `--loop asyncio --http h11` instead of uvloop and httptools"
        elif names[0] in PROBES:
            what = "not a change, a measure: " + PROBES[names[0]].what
        else:
            what = "undone: " + CHANGES[names[0]].what
        rows.append(
            [
                f"{key}",
                what,
                f"{figures['turns_per_s']:.1f}",
                times(now["turns_per_s"] / figures["turns_per_s"]),
                ms(figures["ttft_p99"]),
                f"{figures['server_cpu_ms_per_turn']:.1f} ms",
                f"{now['server_cpu_ms_per_turn'] - figures['server_cpu_ms_per_turn']:+.1f} ms",
            ]
        )
    return (
        "### What each change bought\n\n"
        "The changes this benchmark led to in the generated backend, measured by undoing "
        "them: `benchmarks/undo.py` keeps the code each one replaced and "
        "`benchmarks/servers/variant.py` patches it back into a server process. Every row is "
        "its own uvicorn process on its own SQLite file, all run side by side at "
        f"{data['level']} conversations at once ({data['conversations']} conversations of 5 "
        f"turns per run, {data['repetitions']} runs, interleaved, median shown). The *now* "
        "row runs the same code as section 3's generated backend; the gap between the two is "
        "this machine's run-to-run noise, and the rows are comparable with each other only. "
        "**now ÷ row** is how much faster the generated backend is than that row; the last "
        "column is the difference in server CPU per turn (negative: the row is cheaper, so "
        "the change saves that much). The *probe* rows are not changes: they take a part of "
        "the generated backend out to show what it costs. Differences of a fraction of a "
        "millisecond are within this machine's noise.\n\n"
        + table(
            ["Variant", "What", "turns/s", "now ÷ row", "TTFT p99", "server CPU/turn", "now - row"],
            rows,
        )
    )


def ratio_row(label: str, pair: dict[str, Any], bold: bool = False) -> list[str]:
    """A table row: small and large side's median (p99), and large / small."""
    small, large = pair["small"], pair["large"]
    ratio = times(large["median_ms"] / small["median_ms"])
    return [
        label,
        f"{small['median_ms']:.2f} ms ({large_p99(small)})",
        f"{large['median_ms']:.2f} ms ({large_p99(large)})",
        f"**{ratio}**" if bold else ratio,
    ]


def production_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    results, labels, levels = data["results"], data["labels"], data["levels"]
    rows, ratio_rows = [], []
    worst = {"turns": float("inf"), "ttft": 0.0, "cpu": 0.0}
    for n in levels:
        for key in ("off", "on"):
            rows.append(load_row(n, labels[key], results[key][n], turn_p50=False))
        off, on = results["off"][n], results["on"][n]
        turns = on["turns_per_s"] / off["turns_per_s"]
        ttft50 = on["ttft_p50"] / off["ttft_p50"]
        ttft99 = on["ttft_p99"] / off["ttft_p99"]
        cpu = on["server_cpu_ms_per_turn"] / off["server_cpu_ms_per_turn"]
        worst["turns"] = min(worst["turns"], turns)
        worst["ttft"] = max(worst["ttft"], ttft50)
        worst["cpu"] = max(worst["cpu"], cpu)
        ratio_rows.append([str(n), times(turns), times(ttft50), times(ttft99), times(cpu)])
    slower = GOAL_PRODUCTION_SLOWER
    goals.append(
        [
            f"Limits, metrics and JSON logs on: at most {slower:.0%} slower (turns/s ≥ "
            f"{1 - slower:.2f}{X}, TTFT p50 ≤ {1 + slower:.2f}{X} of off, at every level)",
            f"turns/s {times(worst['turns'])}, TTFT p50 {times(worst['ttft'])} at worst "
            f"(server CPU per turn {times(worst['cpu'])} at worst)",
            verdict(worst["turns"] >= 1 - slower and worst["ttft"] <= 1 + slower),
        ]
    )
    settings = ", ".join(f"`{name}={value}`" for name, value in data["settings"].items())
    counted = data.get("metrics", {})
    completed = counted.get('chatkit_turns_total{outcome="ok"}', 0.0)
    conversations = data["conversations"]
    return (
        "## 9. Production settings: limits, metrics and JSON logs\n\n"
        "The generated backend (SQLite, as in section 3) twice, in one run, side by side "
        "(`benchmarks/production_bench.py`): **off** is section 3's generated backend, every "
        "rate limit 0, no `/metrics`, text logs at `LOG_LEVEL=WARNING`; **on** runs "
        f"{settings}: each turn checks the per-IP, per-user, per-day and new-thread limits "
        "and reads the token budget (one batched counter upsert in the store), then records "
        "its usage, writes one JSON `app.turns` line and is counted in the metrics. The "
        "limits are set high enough that the load is never refused. The metrics are counted "
        "in both servers; only serving `/metrics` needs `METRICS_TOKEN`. The same load as "
        "section 3 ("
        + ", ".join(f"{conversations[n]} conversations at level {n}" for n in levels)
        + f", 5 turns each), {data['repetitions']} runs per server and level, interleaved, "
        f"after {data['warmup']} warm-up conversations each; medians of the runs. After the "
        f"last run the **on** server's `/metrics` counted {completed:.0f} turns with outcome "
        f"ok and its log held {data.get('turn_log_lines', 0)} JSON turn lines.\n\n"
        + table(
            [
                "Conversations",
                "Server",
                "turns/s",
                "turns/s, all runs",
                "TTFT p50",
                "TTFT p99",
                "server CPU/turn",
            ],
            rows,
        )
        + "\n\nRatios (on / off):\n\n"
        + table(["Conversations", "turns/s", "TTFT p50", "TTFT p99", "CPU per turn"], ratio_rows)
    )


def stores_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    scale = data["scale"]
    out = [
        "## 4. Store scaling\n\n"
        "The generated project's own `SQLStore`, schema from its Alembic migration, one "
        "database per engine (SQLite file; PostgreSQL at 127.0.0.1:5432, a fresh database "
        "dropped afterwards). Bulk-loaded with one `INSERT ... SELECT` per table (a recursive "
        "CTE on SQLite, `generate_series` on PostgreSQL), the large user's rows interleaved "
        "with everyone else's, then `ANALYZE`d:\n\n"
        f"* threads: {scale['other_threads']:,} of other users (about 10 each), "
        f"{scale['large_user_threads']:,} of the large user, {scale['small_user_threads']} of "
        "the small user;\n"
        f"* items: {scale['other_items']:,} in other users' threads, "
        f"{scale['large_thread_items']:,} in the large thread, {scale['small_thread_items']} in "
        "the small one.\n\n"
        "Each figure is the latency of the store call as the server makes it (connection from "
        f"the pool, query, parsing the JSON into chatkit models), {scale['calls']} calls of "
        "each, the large and the small side taking turns call by call, after a "
        "warm-up (which also lets PostgreSQL switch the prepared statements to their generic "
        "plans, as a long-running server would), median and p99. The small side returns "
        "fewer rows (its thread has 10 items, its user 10 threads) than the large side's full "
        "pages of 20 (50 for the history), so part of each ratio is the size of the answer. "
        "The last two rows are not part of the goal's verdict: the cursor page as it was "
        "before the unique-id lookup, and the history of the large thread against that of "
        "a thread of exactly 50 items, which holds the answer size equal so that only the "
        "data size differs. The plans below show each query walking its index "
        "(PostgreSQL's also how many rows it read)."
    ]
    for engine in ("sqlite", "postgres"):
        section = data.get(engine, {})
        if "skipped" in section:
            out.append(f"### {engine}\n\nSkipped: {section['skipped']}.")
            goals.append(
                [
                    f"Store scaling, {engine}: large/small ≤ {GOAL_STORE_RATIO}",
                    "not run",
                    "**not run**",
                ]
            )
            continue
        rows = []
        worst = 0.0
        for label, pair in section["figures"].items():
            worst = max(worst, pair["large"]["median_ms"] / pair["small"]["median_ms"])
            rows.append(ratio_row(label, pair, bold=True))
        # Shown, not part of the verdict.
        rows.append(
            ratio_row(
                "items.list after a cursor, before the unique-id lookup",
                section["cursor_page_before_unique_id_lookup"],
            )
        )
        rows.append(
            ratio_row(
                "history in respond(), against a thread of one full page (50 items)",
                section["history_equal_answers"],
            )
        )
        counts = section["counts"]
        goals.append(
            [
                f"Store scaling, {engine}: large/small ≤ {GOAL_STORE_RATIO} for each figure",
                f"worst {times(worst)}",
                verdict(worst <= GOAL_STORE_RATIO),
            ]
        )
        plans = []
        for label, plan in section["plans"].items():
            plans.append(
                f"{label}:\n\n```sql\n{plan['sql']}\n-- values: {', '.join(plan['values'])}\n```\n"
                "```\n" + "\n".join(plan["plan"]) + "\n```"
            )
        title = section["version"] if engine == "sqlite" else f"PostgreSQL {section['version']}"
        out.append(
            f"### {title}\n\n"
            f"Loaded {counts['threads']:,} threads and {counts['items']:,} items in "
            f"{section['load_seconds']:.1f} s (large user {counts['large_user_threads']:,} "
            f"threads, small user {counts['small_user_threads']}; large thread "
            f"{counts['large_thread_items']:,} items, small thread "
            f"{counts['small_thread_items']}).\n\n"
            + table(["Call", "small: median (p99)", "large: median (p99)", "large / small"], rows)
            + "\n\nThe plans "
            + (
                "(`EXPLAIN QUERY PLAN`, the store's statements with their bound values):"
                if engine == "sqlite"
                else "(`EXPLAIN ANALYZE` of the prepared statement's generic plan, "
                "`plan_cache_mode = force_generic_plan`):"
            )
            + "\n\n"
            + "\n\n".join(plans)
        )
    out.append(per_call_part(data))
    return "\n\n".join(part for part in out if part)


def per_call_part(data: dict[str, Any]) -> str:
    engines = [engine for engine in ("sqlite", "postgres") if "figures" in data.get(engine, {})]
    if not engines:
        return ""
    changes = data[engines[0]]["per_call_before_after"]
    rows = []
    for change, first in changes.items():
        row = [f"`{change}`", first["call"]]
        for engine in engines:
            pair = data[engine]["per_call_before_after"][change]
            row += [
                f"{pair['before']['median_ms']:.2f} ms",
                f"{pair['now']['median_ms']:.2f} ms",
            ]
        rows.append(row)
    header = ["Change", "Call"]
    for engine in engines:
        name = "SQLite" if engine == "sqlite" else "PostgreSQL"
        header += [f"{name} before", f"{name} now"]
    return (
        "### What the store changes bought, per call\n\n"
        "The two store changes of the table in section 3, timed where they act: the store "
        "call itself in one process, in the small thread of the databases above, "
        f"{data['scale']['calls']} calls each way, taking turns (median), the change undone by "
        "`benchmarks/undo.py` for the *before* column. A turn makes one history load and "
        "two item upserts.\n\n" + table(header, rows)
    )


def large_p99(figure: dict[str, float]) -> str:
    return f"p99 {figure['p99_ms']:.2f} ms"


def memory_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    rows = [[f"{point['turns']:,}", f"{point['rss_mb']:.1f} MB"] for point in data["series"]]
    goals.append(
        [
            f"Memory: RSS growth under {GOAL_GROWTH_MB:.0f} MB over {data['turns']:,} turns",
            f"{data['growth_mb']:+.1f} MB ({data['idle_mb']:.1f} → {data['final_mb']:.1f} MB)",
            verdict(data["growth_mb"] < GOAL_GROWTH_MB),
        ]
    )
    return (
        "## 5. Memory\n\n"
        "The generated backend (uvicorn, SQLite file) in its own process; its resident set "
        "(psutil `rss`) a moment after it answered `/health`, with no request served yet, "
        f"then after each batch of turns: {data['threads']:,} conversations of 5 turns, 20 at "
        f"a time, {data['turns']:,} turns in {duration(data['seconds'])}.\n\n"
        + table(["Turns served", "RSS"], rows)
        + f"\n\nGrowth from idle: **{data['growth_mb']:+.1f} MB**; after the first batch "
        f"(which pays the first-use costs: lazy imports, connections, caches of compiled SQL): "
        f"{data['growth_after_first_checkpoint_mb']:+.1f} MB. The backend keeps no per-thread "
        "or per-user state in memory: the store is the SQLite file, the ChatKit server and "
        "the agent are per process, and each turn's objects (the history page, "
        "`LoadedHistory`, the run) live as long as its request."
    )


def startup_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    cpu, wall = data["cpu_s"], data["wall_s"]
    goals.append(
        [
            f"Start: app import + build at most {data['goal_ratio']:.2f}{X} the SDK floor "
            "(CPU time)",
            f"{times(data['ratio'])} ({sec(cpu['app'])} vs {sec(cpu['floor'])})",
            verdict(data["ratio"] <= data["goal_ratio"]),
        ]
    )
    labels = {
        "floor": "SDK floor: `import chatkit.server, chatkit.agents, agents, fastapi`",
        "app": "app import + build: `from app.main import create_app; create_app()`",
        "start": "... + lifespan start on a migrated SQLite file",
    }
    rows = [
        [label, sec(cpu[kind]), sec(wall[kind]), times(cpu[kind] / cpu["floor"])]
        for kind, label in labels.items()
    ]
    return (
        "## 6. Start-up\n\n"
        f"Fresh interpreters in the generated backend's directory, {data['runs']} run(s) of "
        "each kind taking turns, median shown (`benchmarks/startup_bench.py`). Each figure "
        "runs from the interpreter's launch to the work done (its exit, which frees every "
        "object, is left out); CPU time is user + system of that process, wall time is on "
        "the clock. Every `--reload` of `make dev` and every new replica pays the app's "
        "figure before it serves. Migrations (Alembic), SQLAlchemy's ORM and asyncio "
        "extension and the PostgreSQL dialect load only when used "
        "(`tests/test_startup.py` checks the modules loaded).\n\n"
        + table(["Run", "CPU time", "wall time", f"CPU {X} floor"], rows)
    )


def attachments_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    large, turns = data["large"], data["turns"]
    size = f"{large['size_mb']:.0f} MiB"
    growth = large["max_growth_mb"]
    goals.append(
        [
            f"Attachments: backend RSS growth under {data['goal_growth_mb']:.0f} MiB while a "
            f"{size} file is uploaded and downloaded",
            f"{growth:+.1f} MiB at most (upload raw / multipart, download)",
            verdict(growth < data["goal_growth_mb"]),
        ]
    )
    goals.append(
        [
            f"Attachments: upload throughput at least {data['goal_floor_ratio']:.1f}{X} the "
            "bare ASGI floor on the same store",
            f"{times(large['floor_ratio'])} ({large['mb_per_s']['raw']:.1f} vs "
            f"{large['mb_per_s']['floor']:.1f} MiB/s)",
            verdict(large["floor_ratio"] >= data["goal_floor_ratio"]),
        ]
    )
    labels = {
        "raw": "generated backend, raw POST",
        "multipart": "generated backend, multipart POST (as chatkit-js sends it)",
        "floor": "upload floor (bare ASGI, same store calls), raw POST",
        "download": "generated backend, download (GET, streamed)",
    }
    rows = [
        [
            label,
            sec(large["seconds"][key]),
            f"{large['mb_per_s'][key]:.1f} MiB/s",
            times(large["mb_per_s"][key] / large["mb_per_s"]["floor"])
            if key != "download"
            else "-",
            f"{max(large['growth_mb'][key]):+.1f} MiB" if key in large["growth_mb"] else "-",
        ]
        for key, label in labels.items()
    ]
    text = turns["text only"]
    turn_rows = [
        [
            label,
            str(turn["images_sent"]),
            ms(turn["seconds"]),
            f"{turn['request_bytes'] / 1000:,.0f} kB",
            "1.00" + X if label == "text only" else times(turn["time_ratio"]),
            "1.00" + X if label == "text only" else times(turn["bytes_ratio"]),
        ]
        for label, turn in turns.items()
    ]
    return (
        "## 7. Attachments\n\n"
        f"One {size} PNG through the generated backend (uvicorn, SQLite file, database "
        f"storage in 256 KiB chunks), median of {large['repetitions']} run(s) each way, and "
        "the same bytes to the upload floor: a bare ASGI app writing them to the same store "
        "(the generated `SQLStore`, the same chunk table, a SQLite file beside it) with the "
        "same store calls and nothing else (`benchmarks/servers/upload_floor.py`), the two "
        "taking turns. RSS growth is the backend's peak resident set during the transfer "
        "(psutil, sampled every 10 ms) over the figure just before it, the largest of the "
        "runs; the first upload and download were done before (lazy imports, connections)."
        "\n\n"
        + table(["Transfer", "Time", "Throughput", f"{X} floor", "RSS growth"], rows)
        + "\n\n"
        f"Turn cost: a text turn in a thread whose history holds images of "
        f"{data['image_bytes'] / 2**20:g} MiB each (sent 4 to a message before), against "
        "one in a text-only thread; wall time of the whole streamed turn and the size of "
        "the request the fake provider received (images go as base64 data URLs). Only "
        "the newest `HISTORY_IMAGE_LIMIT` (4) images are resent; older ones become a "
        "one-line placeholder.\n\n"
        + table(
            ["History", "Images sent", "Turn", "Request", f"Time {X} text", f"Bytes {X} text"],
            turn_rows,
        )
        + f"\n\nText-only request: {text['request_bytes'] / 1000:,.1f} kB."
    )


def kb(size: float) -> str:
    return "n/a" if math.isnan(size) else f"{size / 1000:,.1f} kB"


def page_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} ms"


def page_range(figures: dict[str, Any], name: str) -> str:
    low, high = figures[name + "_range"]
    return "" if low is None or low == high else f" ({low:,.0f} to {high:,.0f})"


def frontend_section(data: dict[str, Any], goals: list[list[str]]) -> str:
    targets = data["targets"]
    ours = [key for key in ("nextjs", "vite") if key in targets]
    references = data["references"]
    for key in ours:
        label = targets[key]["label"]
        if not references:
            goals.append(
                [
                    f"Page, Fast 3G: {label} loads and shows `<openai-chatkit>` no later than "
                    "a reference",
                    "no `--reference-frontend` given",
                    "**not run**",
                ]
            )
            continue
        for reference in references:
            mine = targets[key]["figures"]["fast3g"]
            theirs = targets[reference]["figures"]["fast3g"]
            met = (
                mine["load_ms"] <= theirs["load_ms"] and mine["element_ms"] <= theirs["element_ms"]
            )
            goals.append(
                [
                    f"Page, Fast 3G: {label} loads and shows `<openai-chatkit>` no later than "
                    f"{targets[reference]['label']}",
                    f"load {page_ms(mine['load_ms'])} vs {page_ms(theirs['load_ms'])} "
                    f"({times(ratio_of(mine, theirs, 'load_ms'))}), element "
                    f"{page_ms(mine['element_ms'])} vs {page_ms(theirs['element_ms'])} "
                    f"({times(ratio_of(mine, theirs, 'element_ms'))})",
                    verdict(met),
                ]
            )
    keys = [*ours, *references]
    bytes_rows = []
    for key in keys:
        target = targets[key]
        f = target["figures"]["unthrottled"]
        bytes_rows.append(
            [
                target["label"],
                f"**{kb(f['js_transfer'])}**",
                kb(f["js_decoded"]),
                f"{f['js_files']:.0f}",
                ", ".join(f["js_encodings"]),
                kb(f["html_transfer"]),
                kb(f["all_transfer"]),
                f"{f['requests']:.0f}",
                ", ".join(url.removeprefix("http://").split("/", 1)[-1] for url in f["failed"])
                or "none",
            ]
        )
    time_rows = []
    for key in keys:
        target = targets[key]
        fast, fastest = target["figures"]["fast3g"], target["figures"]["unthrottled"]
        time_rows.append(
            [
                target["label"],
                page_ms(fastest["ttfb_ms"]),
                page_ms(fastest["load_ms"]),
                page_ms(fastest["element_ms"]),
                page_ms(fastest["fcp_ms"]),
                f"**{page_ms(fast['load_ms'])}**" + page_range(fast, "load_ms"),
                f"**{page_ms(fast['element_ms'])}**" + page_range(fast, "element_ms"),
                page_ms(fast["fcp_ms"]),
                page_ms(fast["script_requested_ms"]),
            ]
        )
    ratio_rows = []
    for reference, by_ours in data["ratios"].items():
        for key, by_condition in by_ours.items():
            for condition, values in by_condition.items():
                ratio_rows.append(
                    [
                        f"{targets[key]['label']} ÷ {targets[reference]['label']}",
                        "Fast 3G" if condition == "fast3g" else "unthrottled",
                        times(values["load_ms"]),
                        times(values["element_ms"]),
                        times(values["fcp_ms"]),
                        times(values["js_transfer"]),
                        times(values["all_transfer"]),
                    ]
                )
    builds = "; ".join(
        f"{targets[key]['label']}: "
        + ", ".join(
            f"{step} {sec(seconds)}" for step, seconds in targets[key]["build_seconds"].items()
        )
        for key in keys
    )
    versions = "; ".join(
        f"{targets[key]['label']} "
        + ", ".join(f"{name} {version}" for name, version in targets[key]["versions"].items())
        for key in keys
    )
    sources = "".join(
        f" {targets[key]['label']} was built from a copy of `{path}`."
        for key, path in data.get("references_source", {}).items()
    )
    blocked = sorted(
        {
            url
            for key in keys
            for c in ("unthrottled", "fast3g")
            for url in targets[key]["figures"][c]["blocked"]
        }
    )
    fast3g = data["fast3g"]
    load = "/".join(f"{value:.2f}" for value in data["load_before"])
    load_measuring = "/".join(f"{value:.2f}" for value in data["load_measuring"])
    load_after = "/".join(f"{value:.2f}" for value in data["load_after"])
    return (
        "## 8. The page\n\n"
        "Both generated frontends"
        + (
            f", rendered from template commit {data['rendered_from']},"
            if "rendered_from" in data
            else ""
        )
        + " built for production once in this run (`npm ci`, "
        "`npm run build`, a domain key set, the API URL left same-origin): Next.js served by "
        "`npm start` (its `server.mjs`: `next start` plus the build's precompressed brotli "
        "assets), Vite's `dist` by Debian's nginx running the template's "
        "`nginx.conf.template` filled in as the image's entrypoint does (inside a main "
        "config like the image's, which has no gzip of its own), both in front of the "
        "generated backend and the fake provider. Each reference (`--reference-frontend`) "
        "is copied, installed, built with `next build` and served by `next start`."
        + sources
        + f" Loaded in Chromium {data['chromium']} (Debian, headless, through Playwright), a "
        "fresh browser context per load (empty cache, new connections), the pages taking "
        f"turns in a rotating order, {data['warmup']} uncounted warm-up load each, then "
        f"{data['repetitions']} loads per page and condition; medians shown, the range of "
        "the runs in brackets. Fast 3G is CDP `Network.emulateNetworkConditions` with "
        f"{fast3g['latency']} ms latency, {fast3g['downloadThroughput'] * 8 / 1e6:.1f} Mbit/s "
        f"down and {fast3g['uploadThroughput'] * 8 / 1e3:.0f} kbit/s up. The ChatKit script "
        f"(`{data['chatkit_script']}`) is answered by Playwright with a one-line stub that "
        "defines an empty `<openai-chatkit>` element, outside the throttle, so its own "
        "weight and the CDN's distance are left out of every page alike; every other "
        "request leaving the loopback is refused"
        + (f" ({', '.join(blocked)})" if blocked else " (there were none)")
        + ". *Load* is the navigation's `loadEventEnd`, *element* the first "
        "`<openai-chatkit>` in the DOM (a MutationObserver added before any script of the "
        "page: server-rendered markup counts when the parser inserts it), *FCP* the first "
        "contentful paint, *script requested* when the page asked for the ChatKit script, "
        "*first byte* the HTML's `responseStart` (the server's time to answer); "
        "all in ms from the start of the navigation. Bytes are the same-origin responses' "
        "resource timing up to a quiet network after load (*on the wire*: "
        "`transferSize`, headers included; *raw*: `decodedBodySize`), with each script's "
        f"`Content-Encoding`. Versions: {versions}; {data['nginx']}; Node {data['node']}. "
        f"Builds: {builds}. Load average 1/5/15 min: {load} before the section, "
        f"{load_measuring} when the loads began (after the builds), {load_after} after "
        f"them, on {os.cpu_count()} cores shared with other "
        "work: the absolute times move with that load; the pages were measured side by "
        "side, so the ratios are the figures to read.\n\n"
        + table(
            [
                "Page",
                "JS on the wire",
                "JS raw",
                "JS files",
                "JS encodings",
                "HTML on the wire",
                "All on the wire",
                "Requests",
                "Failed (≥ 400)",
            ],
            bytes_rows,
        )
        + "\n\n"
        + table(
            [
                "Page",
                "First byte",
                "Load",
                "Element",
                "FCP",
                "Fast 3G: load",
                "Fast 3G: element",
                "Fast 3G: FCP",
                "Fast 3G: script requested",
            ],
            time_rows,
        )
        + (
            f"\n\nOurs ÷ reference, same run (below 1.00{X} is ours first or smaller):\n\n"
            + table(
                ["Pages", "Network", "Load", "Element", "FCP", "JS on the wire", "All on the wire"],
                ratio_rows,
            )
            if ratio_rows
            else ""
        )
    )


def ratio_of(mine: dict[str, Any], theirs: dict[str, Any], name: str) -> float:
    return mine[name] / theirs[name] if theirs[name] else math.nan
