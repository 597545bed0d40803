"""The per-request context every store call and the ChatKit server receive."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking. Every store read and write is scoped by ``user_id``."""

    user_id: str
