"""Who is asking: an anonymous, signed session cookie per browser (AUTH_MODE=session),
or the verified bearer token of an OpenID provider (AUTH_MODE=oidc, app/oidc.py).

`identify` is the one function that maps a request to a user; routes receive its
answer as `IdentityDep`. It is a FastAPI dependency: to use another kind of auth,
replace it with your own, declaring what it needs (see the README, "Another kind of auth").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

from app.oidc import IssuerUnavailable, OidcVerifier, TokenRejected

logger = logging.getLogger(__name__)
_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    # A cookie to set on the response, when this request started a new session.
    new_cookie: str | None = None


class SessionCookies:
    """Signs and verifies `v1.<user_id>.<issued_at>.<hmac>` cookie values."""

    def __init__(self, secret: str, cookie_name: str, max_age_seconds: int) -> None:
        self._key = hashlib.sha256(b"chatkit-session:" + secret.encode()).digest()
        self.cookie_name = cookie_name
        self.max_age_seconds = max_age_seconds

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, user_id: str, now: float | None = None) -> str:
        issued_at = int(now if now is not None else time.time())
        payload = f"{_VERSION}.{user_id}.{issued_at}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, value: str, now: float | None = None) -> str | None:
        """The user id of a valid, unexpired cookie; None for anything else."""
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            return None
        version, user_id, issued_at, signature = parts
        if not hmac.compare_digest(signature, self._sign(f"{version}.{user_id}.{issued_at}")):
            return None
        if not issued_at.isdigit():
            return None
        age = (now if now is not None else time.time()) - int(issued_at)
        if age < 0 or age > self.max_age_seconds:
            return None
        return user_id

    def new_identity(self) -> Identity:
        user_id = f"usr_{secrets.token_hex(16)}"
        return Identity(user_id=user_id, new_cookie=self.issue(user_id))

    def attach(self, response: Response, identity: Identity, request: Request) -> None:
        """Set the new session cookie, `Secure` whenever the browser came over HTTPS."""
        if identity.new_cookie is None:
            return
        response.set_cookie(
            self.cookie_name,
            identity.new_cookie,
            max_age=self.max_age_seconds,
            httponly=True,
            samesite="lax",
            secure=came_over_https(request),
            path="/",
        )


def came_over_https(request: Request) -> bool:
    # Behind a TLS-terminating proxy the app sees http; the proxy says what the browser used.
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def get_sessions(request: Request) -> SessionCookies:
    # Imported here: app.deps imports the whole app, and this module stays importable on
    # its own, for tools that sign or check session cookies.
    from app.deps import services_of

    return services_of(request.app).sessions


SessionsDep = Annotated[SessionCookies, Depends(get_sessions)]


def get_verifier(request: Request) -> OidcVerifier | None:
    from app.deps import services_of

    return services_of(request.app).oidc


VerifierDep = Annotated[OidcVerifier | None, Depends(get_verifier)]


async def identify(request: Request, sessions: SessionsDep, verifier: VerifierDep) -> Identity:
    """The request's user. With OIDC, the token's (TokenRejected when it has none or a bad
    one: never a cookie instead). Else the cookie's, or a fresh user when the cookie is
    absent, tampered or expired."""
    if verifier is not None:
        return Identity(user_id=await verifier.user_id(request.headers.get("authorization", "")))
    user_id = sessions.verify(request.cookies.get(sessions.cookie_name, ""))
    if user_id is not None:
        return Identity(user_id=user_id)
    return sessions.new_identity()


IdentityDep = Annotated[Identity, Depends(identify)]


def token_rejected(request: Request, error: Exception) -> Response:
    """401 for a missing or bad bearer token, with RFC 6750's WWW-Authenticate."""
    missing = isinstance(error, TokenRejected) and error.missing
    challenge = 'Bearer realm="chatkit"' + ("" if missing else ', error="invalid_token"')
    return JSONResponse(
        {"error": {"code": "unauthorized", "message": str(error)}},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


def issuer_unavailable(request: Request, error: Exception) -> Response:
    """503 when the issuer's keys cannot be fetched: the token may be fine."""
    logger.warning("sign-in unavailable: %s", error)
    return JSONResponse(
        {"error": {"code": "issuer_unavailable", "message": "Sign-in cannot be checked now."}},
        status_code=503,
        headers={"Retry-After": "30"},
    )


# For create_app: `app.add_exception_handler(error, handler)` for each.
AUTH_ERROR_HANDLERS = ((TokenRejected, token_rejected), (IssuerUnavailable, issuer_unavailable))
