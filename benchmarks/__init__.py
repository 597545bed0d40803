"""Benchmarks of the template and the project it generates: `python -m benchmarks`.

Every figure in docs/BENCHMARKS.md comes from one run of this package on one machine,
against one loopback fake provider that answers instantly. See benchmarks/__main__.py.
"""
