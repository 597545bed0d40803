"""Bearer-token sign-in (AUTH_MODE=oidc): verify the access tokens of an OpenID provider.

PyJWT checks the signature and the claims; this module finds the key. The issuer's
keys (its JWKS, from OIDC_JWKS_URL or else its discovery document) are cached. A token
naming a key id the cache lacks (the issuer rotated its keys) fetches them again, at
most once per OIDC_JWKS_REFRESH_SECONDS, so a flood of made-up key ids cannot hammer
the issuer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    import httpx

    from app.config import Settings

# Asymmetric algorithms only: never `none`, and never HMAC, whose shared "secret" an
# attacker would set to the issuer's public key.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
# Cached keys are fetched again after this long even when every key id is known, so a
# key the issuer withdrew stops working.
JWKS_MAX_AGE_SECONDS = 3600.0
_FETCH_TIMEOUT_SECONDS = 10.0


class TokenRejected(Exception):
    """No bearer token, or one that does not verify. The message is safe to show."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


class IssuerUnavailable(Exception):
    """The issuer's discovery document or keys could not be fetched."""


def user_id_for(issuer: str, subject: str) -> str:
    """A user id from the issuer and the subject: the same `sub` at two issuers differs."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
    return f"oidc_{digest[:32]}"


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("Sign in: send Authorization: Bearer <access token>.", missing=True)
    return token.strip()


@dataclass
class _KeyCache:
    keys: dict[str | None, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None  # time.monotonic() of the last fetch attempt


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str = "",
        algorithms: tuple[str, ...] = ("RS256", "ES256"),
        leeway_seconds: float = 30,
        refresh_seconds: float = 60,
    ) -> None:
        unsafe = [name for name in algorithms if name not in ALLOWED_ALGORITHMS]
        if unsafe or not algorithms:
            raise ValueError(f"algorithms must be among {', '.join(ALLOWED_ALGORITHMS)}")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway_seconds = leeway_seconds
        self.refresh_seconds = refresh_seconds
        self._jwks_url = jwks_url
        self._cache = _KeyCache()
        self._lock = asyncio.Lock()

    async def user_id(self, authorization: str) -> str:
        """The user id of a valid `Authorization: Bearer` value; TokenRejected otherwise."""
        claims = await self.verify(bearer_token(authorization))
        return user_id_for(str(claims["iss"]), str(claims["sub"]))

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("The bearer token is not a JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenRejected(f"Tokens signed with {algorithm!r} are not accepted.")
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRejected(f"The bearer token is not valid: {error}") from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenRejected("The bearer token has no subject.")
        return claims

    async def _key(self, kid: str | None, algorithm: str) -> Any:
        jwk = await self._jwk(kid)
        if jwk is None:
            raise TokenRejected("The bearer token's signing key is not the issuer's.")
        if jwk.get("alg") not in (None, algorithm):
            raise TokenRejected("The bearer token's algorithm does not match its key.")
        try:
            return jwt.PyJWK(jwk, algorithm=algorithm).key
        except jwt.PyJWTError:
            raise TokenRejected("The bearer token's key does not fit its algorithm.") from None

    async def _jwk(self, kid: str | None) -> dict[str, Any] | None:
        cache = self._cache
        stale = (
            cache.fetched_at is None or time.monotonic() - cache.fetched_at > JWKS_MAX_AGE_SECONDS
        )
        if not stale and self._find(kid) is not None:
            return self._find(kid)
        async with self._lock:
            # Whoever held the lock may have fetched the key meanwhile.
            found = self._find(kid)
            fetched_at = cache.fetched_at
            recent = fetched_at is not None and time.monotonic() - fetched_at < self.refresh_seconds
            if (found is None or stale) and not recent:
                await self._refresh()
                found = self._find(kid)
            return found

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        keys = self._cache.keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    async def _refresh(self) -> None:
        # Imported when first needed: importing httpx loads its command-line tool's
        # dependencies, which the cookie mode's start-up does without.
        import httpx

        self._cache.fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=_FETCH_TIMEOUT_SECONDS) as client:
                if not self._jwks_url:
                    self._jwks_url = await self._discover(client)
                response = await client.get(self._jwks_url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            if self._cache.keys:  # keep verifying with the keys we have
                return
            raise IssuerUnavailable(
                f"could not fetch the issuer's keys: {type(error).__name__}"
            ) from None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise IssuerUnavailable("the issuer's JWKS has no 'keys' list")
        self._cache.keys = {
            key.get("kid"): key
            for key in keys
            if isinstance(key, dict) and key.get("use", "sig") == "sig"
        }

    async def _discover(self, client: httpx.AsyncClient) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await client.get(url)
        response.raise_for_status()
        document = response.json()
        # OpenID Connect Discovery: the document must name the issuer it was asked for.
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise IssuerUnavailable(f"{url} names another issuer than OIDC_ISSUER")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IssuerUnavailable(f"{url} has no jwks_uri")
        return jwks_uri


def build_verifier(settings: Settings) -> OidcVerifier | None:
    if settings.auth_mode != "oidc":
        return None
    return OidcVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        algorithms=tuple(settings.oidc_algorithms),
        leeway_seconds=settings.oidc_leeway_seconds,
        refresh_seconds=settings.oidc_jwks_refresh_seconds,
    )
