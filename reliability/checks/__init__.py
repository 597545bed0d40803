"""The checks, in the order they run; the report orders rows by number (issue #5's
numbering, then 10-13 for attachments, issue #8; 17 for widgets and client tools, #12)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    logs,
    oidc,
    stateless,
    template_input,
    upload_concurrency,
    upload_crash,
    upload_fuzz,
    widget_actions,
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
    # Widget actions and client tool outputs (issue #12), on main after the isolation check.
    "widget-actions": widget_actions.run,
    # Attachments (issue #8), on the "uploads" backend; the kill -9 last of them.
    "upload-fuzz": upload_fuzz.run,
    "attachment-isolation": attachment_isolation.run,
    "upload-concurrency": upload_concurrency.run,
    "upload-crash": upload_crash.run,
    # Abuse limits (issue #10): its own two processes, started and stopped by the check.
    "limits": limits.run,
    # Sign-in (issue #10): a backend in AUTH_MODE=oidc and the project's OpenID provider.
    "oidc": oidc.run,
    # Observability (issue #10): JSON logs, scanned for message text and secrets.
    "logs": logs.run,
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
    "widget-actions": {"main"},
    "upload-fuzz": {"uploads"},
    "attachment-isolation": {"uploads"},
    "upload-concurrency": {"uploads"},
    "upload-crash": {"uploads"},
    "limits": set(),
    "oidc": set(),
    "logs": set(),
    "secrets": {"main"},
}

# Checks that start processes of their own (not roles) at the beginning of the run, so
# that those start while the first checks run; each check's `run` takes what its PREPARE
# returned from `suite.prepared`, or prepares then.
PREPARE: dict[str, Callable[[Suite], Any]] = {
    "oidc": oidc.prepare,
    "logs": logs.prepare,
}
