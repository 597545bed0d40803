"""The per-request context every store call and the ChatKit server receive."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request

# A host[:port] as a proxy forwards it; anything else falls back to the request's own.
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking. Every store read and write is scoped by ``user_id``."""

    user_id: str
    # The API's public origin (scheme://host[/prefix]), for the upload and preview URLs
    # handed to the browser; empty outside HTTP requests.
    origin: str = ""
    # The client's address, for the per-IP limits (app/limits/); empty outside HTTP.
    client_ip: str = ""


def _first(value: str | None) -> str:
    return (value or "").split(",", 1)[0].strip()


def client_ip(request: Request) -> str:
    """The socket's peer. uvicorn has already put X-Forwarded-For's client there when
    the peer is in FORWARDED_ALLOW_IPS, and only then."""
    return request.client.host if request.client else "unknown"


def public_origin(request: Request, public_url: str = "") -> str:
    """Where the browser reaches this API: PUBLIC_URL, else what the proxy in front says
    (X-Forwarded-Proto/X-Forwarded-Host, as the Next.js and Vite proxies send), else the
    request's own scheme and host."""
    if public_url:
        return public_url
    proto = _first(request.headers.get("x-forwarded-proto")).lower()
    scheme = proto if proto in ("http", "https") else request.url.scheme
    host = _first(request.headers.get("x-forwarded-host"))
    if not _HOST.fullmatch(host):
        host = request.url.netloc
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{scheme}://{host}{root_path}"
