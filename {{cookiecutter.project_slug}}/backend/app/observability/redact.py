"""What logs and traces keep of a query string: its names, not its values.

A signed attachment link's query holds a user id and a signature (app/attachments/urls.py);
neither belongs in a log line or a tracing backend. The names stay, for debugging.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

REDACTED = "REDACTED"


def query_names_only(query: str) -> str:
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{name}={REDACTED}" for name in names)


def path_without_query_values(path: str) -> str:
    path, mark, query = path.partition("?")
    return f"{path}?{query_names_only(query)}" if mark else path
