"""`python -m reliability [--quick] [--output PATH] [--only NAME ...]`, from the template root.

Renders the projects, runs the checks, writes the report (docs/RELIABILITY.md unless
--output says otherwise) and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from reliability.checks import CHECKS, PREPARE, ROLES_USED
from reliability.harness import (
    DEFAULT_POSTGRES_URL,
    TEMPLATE,
    Postgres,
    load_module,
    render_project,
)
from reliability.report import write_report
from reliability.suite import FULL, QUICK, Row, Suite


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the smaller run CI uses")
    parser.add_argument(
        "--output",
        type=Path,
        default=TEMPLATE / "docs" / "RELIABILITY.md",
        help="where to write the report (default: docs/RELIABILITY.md)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(CHECKS),
        help="run only these checks (the report says so)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write every row as JSON (for the tests)"
    )
    parser.add_argument("--seed", type=int, default=None, help="fuzzing seed (default: random)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL),
        help="a PostgreSQL server whose role may CREATE DATABASE (default: TEST_DATABASE_URL "
        f"or {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument(
        "--frontends",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the frontend build test that looks for secrets in the bundles "
        "(needs npm; default: on in the full run, off with --quick)",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE,
        help="the template to render (default: this repository; e.g. a checkout to compare)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = args.only or list(CHECKS)
    workdir = Path(tempfile.mkdtemp(prefix="reliability-"))
    (workdir / "logs").mkdir()
    postgres = Postgres(args.postgres)
    started = time.monotonic()
    rows: list[Row] = []
    fake = None
    suite: Suite | None = None
    try:
        projects = [
            render_project(workdir / "projects", "sqlite", "openai", args.template),
            render_project(workdir / "projects", "postgres", "openrouter", args.template),
        ]
        fake_module = load_module(
            "reliability_fake_provider", projects[0].backend_dir / "tests" / "fake_provider.py"
        )
        fake = fake_module.FakeProvider().start()
        suite = Suite(
            quick=args.quick,
            sizes=QUICK if args.quick else FULL,
            workdir=workdir,
            projects=projects,
            fake=fake,
            fake_module=fake_module,
            postgres=postgres,
            seed=args.seed if args.seed is not None else random.randrange(2**31),
            frontends=not args.quick if args.frontends is None else args.frontends,
            template=args.template.resolve(),
        )
        suite.log(f"work directory {workdir}, seed {suite.seed}")
        needed = set().union(*(ROLES_USED[name] for name in selected))
        if needed:
            suite.launch_roles(needed)
        for name in selected:
            if name in PREPARE:
                suite.prepared[name] = PREPARE[name](suite)
        for name in selected:
            suite.log(f"check {name}")
            try:
                new_rows = CHECKS[name](suite)
            except Exception:
                new_rows = [
                    Row(name, "-", ["the check itself failed"], [traceback.format_exc()[-3000:]])
                ]
            for row in new_rows:
                status = "PASS" if row.passed else "FAIL"
                suite.log(f"  {status} {row.check} [{row.project}] ({row.seconds:.1f}s)")
                for failure in row.failures:
                    suite.log(f"    - {failure[:2000]}")
            rows.extend(new_rows)
        duration = time.monotonic() - started
        write_report(args.output, suite, rows, selected, duration, postgres)
        if args.json is not None:
            args.json.write_text(
                json.dumps([dataclasses.asdict(row) for row in rows], indent=2, default=str)
            )
        suite.log(f"report written to {args.output} ({duration:.0f}s)")
    finally:
        for backend in suite.backends if suite is not None else []:
            backend.stop()
        if fake is not None:
            fake.stop()
        postgres.drop_all()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if rows and all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
