"""The checks, in the order they run; the report orders rows by number (issue #5's
numbering, then 10-13 for attachments, issue #8)."""

from __future__ import annotations

from collections.abc import Callable

from reliability.checks import (
    attachment_isolation,
    concurrency,
    crash,
    disconnects,
    faults,
    fuzz,
    isolation,
    leaks,
    limits,
    stateless,
    template_input,
    upload_concurrency,
    upload_crash,
    upload_fuzz,
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
    # Attachments (issue #8), on the "uploads" backend; the kill -9 last of them.
    "upload-fuzz": upload_fuzz.run,
    "attachment-isolation": attachment_isolation.run,
    "upload-concurrency": upload_concurrency.run,
    "upload-crash": upload_crash.run,
    # Abuse limits (issue #10): its own two processes, started and stopped by the check.
    "limits": limits.run,
    "secrets": leaks.run,
}

# The backend roles (reliability/suite.py ROLES) each check runs on.
ROLES_USED: dict[str, set[str]] = {
    "fuzz": {"main"},
    "faults": {"faults"},
    "disconnects": {"main"},
    "concurrency": {"main"},
    "crash": {"crash"},
    "stateless": {"main", "peer"},
    "isolation": {"main"},
    "template-input": set(),
    "upload-fuzz": {"uploads"},
    "attachment-isolation": {"uploads"},
    "upload-concurrency": {"uploads"},
    "upload-crash": {"uploads"},
    "limits": set(),
    "secrets": {"main"},
}
