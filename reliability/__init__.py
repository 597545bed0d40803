"""The reliability and security suite: attacks rendered projects and reports what held.

`python -m reliability` (from the template's root) renders a SQLite project and a
PostgreSQL project, starts their backends as real uvicorn processes on loopback against
the loopback fake provider, runs every check in `reliability.checks`, and writes
docs/RELIABILITY.md. `--quick` is the smaller run CI uses (tests/test_reliability.py).
Any failed check makes the command exit 1.
"""
