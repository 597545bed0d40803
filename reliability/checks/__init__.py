"""The checks, in the order they run and appear in the report (issue #5's numbering)."""

from __future__ import annotations

from collections.abc import Callable

from reliability.checks import (
    concurrency,
    crash,
    disconnects,
    faults,
    fuzz,
    isolation,
    leaks,
    stateless,
    template_input,
)
from reliability.suite import Row, Suite

CHECKS: dict[str, Callable[[Suite], list[Row]]] = {
    "fuzz": fuzz.run,
    "faults": faults.run,
    "disconnects": disconnects.run,
    "concurrency": concurrency.run,
    "crash": crash.run,
    "stateless": stateless.run,
    "isolation": isolation.run,
    "template-input": template_input.run,
    "secrets": leaks.run,
}
