"""`python -m benchmarks [--quick] [--output PATH] [--only SECTION,...]`

Runs every comparison side by side on this machine against one loopback fake provider
that answers instantly, and writes docs/BENCHMARKS.md (or --output) with every figure:
the median of repeated runs, the ratios, the command, date, machine and versions.
`--quick` is a smoke of the harness (tiny loads, one repetition) for CI; its figures
are not measurements worth reading, and it writes nothing unless --output is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    attachments_bench,
    frontend_bench,
    generate_bench,
    memory_bench,
    production_bench,
    profile_bench,
    render_bench,
    report,
    startup_bench,
    stream_bench,
)
from benchmarks.common import (
    PYTHON,
    TEMPLATE,
    clean_template_caches,
    fake_provider,
    render,
    say,
)
from benchmarks.undo import CHANGES, PROBES

SECTIONS = (
    "render",
    "generate",
    "stream",
    "production",
    "stores",
    "memory",
    "startup",
    "attachments",
    "frontend",
)
# Left out of a bare --quick: they need the package index (npm, uv) and minutes of builds.
NOT_QUICK = ("generate", "frontend")
DEFAULT_OUTPUT = TEMPLATE / "docs" / "BENCHMARKS.md"


def stream_section(backend: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    if quick:
        levels, conversations, repetitions, warmup = (1, 5), {1: 1, 5: 5}, 1, 1
        ablation_conversations, ablation_repetitions = 5, 1
    else:
        levels, conversations, repetitions, warmup = (1, 20, 100), {1: 10, 20: 100, 100: 100}, 5, 20
        ablation_conversations, ablation_repetitions = 50, 3
    results: dict[str, Any] = {
        "levels": levels,
        "conversations": conversations,
        "repetitions": repetitions,
        "warmup": warmup,
    }
    streaming_changes = [name for name, change in CHANGES.items() if change.streaming]
    # --quick takes "now" from the comparison's generated backend (same level, same load).
    undo_sets: dict[str, list[str]] = {"before": streaming_changes}
    if not quick:
        undo_sets = {"now": [], **undo_sets}
        undo_sets.update({f"without {name}": [name] for name in streaming_changes})
        undo_sets["asyncio + h11"] = ["uvloop-httptools"]
        undo_sets.update({f"probe: {name}": [name] for name in PROBES})
    level = 20 if not quick else 5
    with fake_provider(backend, scratch) as fake_url:
        servers = stream_bench.comparison_servers(backend, fake_url, scratch)
        variants = stream_bench.variant_servers(backend, fake_url, scratch, undo_sets)
        profiled = profile_bench.profiled_services(backend, fake_url, scratch)
        if quick:  # boot everything at once: the smoke is about the harness, not the figures
            for server in servers + variants:
                server.service.launch(scratch)
            for service in profiled.values():
                service.launch(scratch)
        results["labels"] = {server.key: server.label for server in servers}
        results["comparison"] = stream_bench.compare(
            servers, levels, repetitions, warmup, scratch, conversations
        )
        results["ablation"] = {
            "level": level,
            "conversations": ablation_conversations,
            "repetitions": ablation_repetitions,
            "sets": undo_sets,
            "results": {
                key: by_level[level]
                for key, by_level in stream_bench.compare(
                    variants,
                    (level,),
                    ablation_repetitions,
                    warmup,
                    scratch,
                    {level: ablation_conversations},
                ).items()
            },
        }
        if quick:
            results["ablation"]["sets"] = {"now": [], **undo_sets}
            results["ablation"]["results"] = {
                "now": results["comparison"]["generated"][level],
                **results["ablation"]["results"],
            }
        results["profile"] = profile_bench.profile_both(profiled, level, warmup)
    return results


def stores_section(backend: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    import subprocess

    command = [
        PYTHON,
        "-m",
        "benchmarks.stores_bench",
        "--backend",
        str(backend),
        "--scratch",
        str(scratch),
    ]
    if quick:
        command.append("--quick")
    result = subprocess.run(
        command,
        cwd=backend,
        env={**os.environ, "PYTHONPATH": str(TEMPLATE)},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the store benchmark failed:\n{result.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def memory_section(backend: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    with fake_provider(backend, scratch) as fake_url:
        return memory_bench.run(backend, fake_url, scratch, quick)


def python_shown() -> str:
    """The interpreter as the README names it: `.venv/bin/python` inside the repository."""
    path = Path(PYTHON).absolute()
    try:
        return str(path.relative_to(TEMPLATE))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke of the harness, for CI")
    parser.add_argument("--output", type=Path, help=f"the report (default {DEFAULT_OUTPUT})")
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON")
    parser.add_argument(
        "--reference-template",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another cookiecutter template (a local checkout) to render with its defaults "
        "in the same loop as ours, for comparison; repeatable",
    )
    parser.add_argument(
        "--reference-frontend",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another Next.js app (a local checkout) to build and load beside our frontends "
        "in the frontend section; repeatable",
    )
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name] or list(SECTIONS)
    if args.quick and not args.only:
        only = [name for name in SECTIONS if name not in NOT_QUICK]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    references: dict[str, Path] = {}
    for reference in args.reference_template:
        name, _, directory = reference.partition("=")
        if not directory or not (Path(directory) / "cookiecutter.json").is_file():
            parser.error(f"--reference-template {reference}: want NAME=DIR, DIR a template")
        references[name] = Path(directory)
    frontend_references: dict[str, Path] = {}
    for reference in args.reference_frontend:
        name, _, directory = reference.partition("=")
        if not name or not directory or not (Path(directory) / "package.json").is_file():
            parser.error(f"--reference-frontend {reference}: want NAME=DIR, DIR a Next.js app")
        frontend_references[name] = Path(directory).resolve()

    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": " ".join(
            [
                python_shown(),
                "-m",
                "benchmarks",
                *[shlex.quote(arg) for arg in (sys.argv[1:] if argv is None else argv)],
            ]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "sections": only,
        "load_before": os.getloadavg(),
    }
    removed = clean_template_caches()
    if removed:
        say(f"removed tool caches from the template: {', '.join(removed)}")
    with tempfile.TemporaryDirectory(prefix="chatkit-bench-") as tmp:
        scratch = Path(tmp)
        project = render(scratch / "project", frontend="none")
        backend = project / "backend"
        results["project"] = {
            "answers": "defaults, frontend=none",
            "dockerfile_cmd": report.dockerfile_cmd(backend / "Dockerfile"),
            "server_flags": report.server_flags(project),
        }
        for name in only:
            section_started = time.perf_counter()
            say(f"== {name}")
            if name == "render":
                results[name] = render_bench.run(scratch, args.quick, references)
            elif name == "generate":
                results[name] = generate_bench.run(scratch, args.quick)
            elif name == "stream":
                results[name] = stream_section(backend, scratch, args.quick)
            elif name == "production":
                with fake_provider(backend, scratch) as fake_url:
                    results[name] = production_bench.run(backend, fake_url, scratch, args.quick)
            elif name == "stores":
                results[name] = stores_section(backend, scratch, args.quick)
            elif name == "memory":
                results[name] = memory_section(backend, scratch, args.quick)
            elif name == "startup":
                results[name] = startup_bench.run(backend, scratch, args.quick)
            elif name == "attachments":
                results[name] = attachments_bench.run(backend, scratch, args.quick)
            elif name == "frontend":
                results[name] = frontend_bench.run(
                    backend, scratch, args.quick, frontend_references
                )
            results.setdefault("section_seconds", {})[name] = time.perf_counter() - section_started
            say(f"== {name}: {results['section_seconds'][name]:.0f} s")
        results["seconds"] = time.perf_counter() - started
        results["load_after"] = os.getloadavg()
        results["environment"] = report.environment()
        text = report.render_markdown(results)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        say(f"wrote {output}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    say(f"done in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
