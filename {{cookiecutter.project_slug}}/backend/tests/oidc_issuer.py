"""A loopback OpenID provider for the sign-in tests, on real HTTP.

* ``GET /.well-known/openid-configuration``: discovery.
* ``GET /jwks``: the public keys (``jwks_requests`` counts the fetches).
* ``GET /authorize``: signs in ``user`` (or ``login_hint``) at once and redirects back
  with a code, as a provider does after its login page; PKCE (S256) is required.
* ``POST /token``: the code and its verifier, or a refresh token, for tokens.

``mint(...)`` signs an access token directly, with any claim or header overridden, for
the attack tests; ``rotate()`` replaces the signing key and withdraws the old one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.live_server import LiveServer

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return jwk | {"kid": self.kid, "alg": self.algorithm, "use": "sig"}


def new_key(algorithm: str = "RS256") -> SigningKey:
    private: PrivateKey
    if algorithm.startswith("ES"):
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid=f"key-{secrets.token_hex(4)}", algorithm=algorithm, private=private)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    subject: str
    nonce: str | None


class OidcIssuer:
    """`with OidcIssuer(audience="api") as issuer:` an issuer at ``issuer.url``."""

    def __init__(self, audience: str = "chatkit-api", user: str = "alice") -> None:
        self.audience = audience
        self.user = user
        self.keys = [new_key("RS256"), new_key("ES256")]
        self.jwks_requests = 0
        self.discovery_requests = 0
        self._grants: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # token -> (client id, subject)
        app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ],
            # oidc-client-ts fetches discovery, keys and tokens from the page's origin.
            middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_headers=["*"])],
        )
        self._server = LiveServer(app)
        self.url = ""

    def __enter__(self) -> OidcIssuer:
        self._server.__enter__()
        self.url = self._server.url
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.__exit__(None, None, None)

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def rotate(self) -> SigningKey:
        """A new signing key; the old one is withdrawn from the JWKS. Returns the old one."""
        old = self.keys[0]
        self.keys[0] = new_key(old.algorithm)
        return old

    def claims(self, subject: str | None = None, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": subject or self.user,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "scope": "openid profile",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(
        self,
        subject: str | None = None,
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token; a claim given as None is left out."""
        key = key or self.key
        return jwt.encode(
            self.claims(subject, **claims),
            key.private,
            algorithm=key.algorithm,
            headers={"kid": key.kid, **(headers or {})},
        )

    async def _discovery(self, request: Request) -> Response:
        self.discovery_requests += 1
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["openid", "profile", "offline_access"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": [key.public_jwk() for key in self.keys]})

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        if (
            query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or not redirect_uri
            or not query.get("client_id")
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            client_id=query["client_id"],
            redirect_uri=redirect_uri,
            challenge=query["code_challenge"],
            subject=query.get("login_hint") or self.user,
            nonce=query.get("nonce"),
        )
        back = {"code": code, "state": query.get("state", ""), "iss": self.url}
        return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self._grants.pop(str(form.get("code", "")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                grant is None
                or grant.redirect_uri != form.get("redirect_uri")
                or grant.client_id != form.get("client_id")
                or not secrets.compare_digest(challenge, grant.challenge)
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return self._tokens(grant.client_id, grant.subject, grant.nonce)
        if grant_type == "refresh_token":
            found = self._refresh.pop(str(form.get("refresh_token", "")), None)
            if found is None or found[0] != form.get("client_id"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return self._tokens(found[0], found[1], None)
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    def _tokens(self, client_id: str, subject: str, nonce: str | None) -> Response:
        refresh = secrets.token_urlsafe(24)
        self._refresh[refresh] = (client_id, subject)
        id_token = self.mint(subject, aud=client_id, nonce=nonce, name=subject.title())
        return JSONResponse(
            {
                "access_token": self.mint(subject),
                "id_token": id_token,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "openid profile offline_access",
            },
            headers={"Cache-Control": "no-store"},
        )
