"""AUTH_MODE=oidc from the outside: bearer JWTs from a loopback OpenID provider.

Every bad token gets 401 with a JSON error and WWW-Authenticate, does nothing, and
never falls back to the session cookie; a good one is a user who sees only their own
threads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from app.config import ConfigError
from app.identity import SessionCookies
from tests.chatkit_client import ChatKitClient, user_input
from tests.conftest import BackendFactory, SettingsFactory
from tests.fake_provider import FakeProvider
from tests.oidc_issuer import OidcIssuer, new_key

LIST = {"type": "threads.list", "params": {}}


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


OidcBackend = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def oidc_backend(backend: BackendFactory, issuer: OidcIssuer) -> OidcBackend:
    """`with oidc_backend(**settings) as url:` a live backend trusting `issuer`."""

    def _start(**overrides: Any) -> AbstractContextManager[str]:
        values = {
            "auth_mode": "oidc",
            "oidc_issuer": issuer.url,
            "oidc_audience": issuer.audience,
        }
        return backend(**(values | overrides))

    return _start


def signed_in(url: str, token: str) -> ChatKitClient:
    client = ChatKitClient(url)
    client.http.headers["authorization"] = f"Bearer {token}"
    return client


def assert_refused(response: httpx.Response, invalid: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["message"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == invalid
    assert "set-cookie" not in response.headers


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return ".".join([header, payload, _b64(bytes(raw))])


def _alg_none(issuer: OidcIssuer) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": issuer.key.kid}
    claims = issuer.claims()
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(issuer: OidcIssuer) -> str:
    """The classic confusion: HMAC "signed" with the issuer's public key as the secret."""
    public = issuer.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.key.kid}
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(issuer.claims()).encode())}"
    )
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _foreign_key_same_kid(issuer: OidcIssuer) -> str:
    impostor = new_key("RS256")
    impostor.kid = issuer.key.kid
    return issuer.mint(key=impostor)


ATTACKS: dict[str, Callable[[OidcIssuer], str]] = {
    "expired": lambda i: i.mint(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
    "not-yet-valid": lambda i: i.mint(nbf=int(time.time()) + 120),
    "issued-in-the-future": lambda i: i.mint(iat=int(time.time()) + 120),
    "wrong-issuer": lambda i: i.mint(iss="https://evil.example"),
    "wrong-audience": lambda i: i.mint(aud="another-api"),
    "no-audience": lambda i: i.mint(aud=None),
    "no-expiry": lambda i: i.mint(exp=None),
    "no-subject": lambda i: i.mint(sub=""),
    "alg-none": _alg_none,
    "hs256-with-the-public-key": _hs256_with_public_key,
    "unknown-kid": lambda i: i.mint(key=new_key("RS256")),
    "another-key-same-kid": _foreign_key_same_kid,
    "tampered-payload": lambda i: _tamper_payload(i.mint()),
    "tampered-signature": lambda i: _tamper_signature(i.mint()),
    "not-a-jwt": lambda i: "not.a.jwt",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_gets_401_and_does_nothing(
    oidc_backend: OidcBackend, issuer: OidcIssuer, fake: FakeProvider, attack: str
) -> None:
    with oidc_backend() as url:
        with signed_in(url, issuer.mint()) as alice:  # the keys are cached first
            assert alice.list_threads()["data"] == []
        token = ATTACKS[attack](issuer)
        with signed_in(url, token) as attacker:
            create = {"type": "threads.create", "params": {"input": user_input("hi")}}
            assert_refused(attacker.post(create))
            assert_refused(attacker.post(LIST))
        assert fake.requests == []


def test_missing_or_malformed_authorization_gets_401(oidc_backend: OidcBackend) -> None:
    with oidc_backend() as url:
        assert_refused(httpx.post(f"{url}/chatkit", json=LIST), invalid=False)
        for header in ("Basic YWxpY2U6cHc=", "Bearer", "bearer", "token"):
            response = httpx.post(f"{url}/chatkit", json=LIST, headers={"authorization": header})
            assert_refused(response, invalid=False)
        # /health needs no sign-in.
        assert httpx.get(f"{url}/health").status_code == 200


def test_the_session_cookie_is_never_a_fallback(
    oidc_backend: OidcBackend, issuer: OidcIssuer
) -> None:
    secret = "s" * 40  # the tests' SESSION_SECRET: a cookie this backend would accept
    cookie = SessionCookies(secret, "chatkit_session", 3600).issue("usr_alice")
    with oidc_backend() as url:
        cookies = {"chatkit_session": cookie}
        for headers in ({}, {"authorization": f"Bearer {issuer.mint(exp=int(time.time()) - 600)}"}):
            response = httpx.post(f"{url}/chatkit", json=LIST, cookies=cookies, headers=headers)
            assert_refused(response, invalid=bool(headers))


def test_a_valid_token_chats_without_a_session_cookie(
    oidc_backend: OidcBackend, issuer: OidcIssuer, provider: str, database_url: str
) -> None:
    with (
        oidc_backend(provider=provider, database_url=database_url) as url,
        signed_in(url, issuer.mint("alice")) as alice,
    ):
        first = alice.create_thread("hello")
        assert first.status == 200 and first.reply_text and not first.errors
        second = alice.send(first.thread_id, "and again")
        assert second.status == 200 and second.reply_text and not second.errors
        response = alice.post(LIST)
        assert "set-cookie" not in response.headers
        assert len(response.json()["data"]) == 1
        # A new token for the same user (a refresh) is the same user.
        alice.http.headers["authorization"] = f"Bearer {issuer.mint('alice')}"
        assert [t["id"] for t in alice.list_threads()["data"]] == [first.thread_id]


def test_es256_tokens_and_the_leeway(oidc_backend: OidcBackend, issuer: OidcIssuer) -> None:
    es256 = next(key for key in issuer.keys if key.algorithm == "ES256")
    just_expired = int(time.time()) - 5  # within the 30 s leeway
    with oidc_backend() as url:
        for token in (issuer.mint(key=es256), issuer.mint(exp=just_expired)):
            with signed_in(url, token) as client:
                assert client.post(LIST).status_code == 200
    with oidc_backend(oidc_algorithms="RS256") as url, signed_in(url, issuer.mint(key=es256)) as c:
        assert_refused(c.post(LIST))


def test_two_users_never_see_each_other(
    oidc_backend: OidcBackend, issuer: OidcIssuer, database_url: str
) -> None:
    with (
        oidc_backend(database_url=database_url) as url,
        signed_in(url, issuer.mint("alice")) as alice,
        signed_in(url, issuer.mint("bob")) as bob,
    ):
        first = alice.create_thread("alice's secret")
        thread_id = first.thread_id
        assert bob.list_threads()["data"] == []
        for op, params in {
            "threads.get_by_id": {"thread_id": thread_id},
            "items.list": {"thread_id": thread_id},
            "threads.update": {"thread_id": thread_id, "title": "pwned"},
            "threads.delete": {"thread_id": thread_id},
            "threads.add_user_message": {"thread_id": thread_id, "input": user_input("hi")},
        }.items():
            response = bob.post({"type": op, "params": params})
            assert response.status_code == 404, (op, response.text)
        [thread] = alice.list_threads()["data"]
        assert thread["title"] == "alice's secret"


def test_the_same_subject_at_another_issuer_is_another_user(
    backend: BackendFactory, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    with OidcIssuer() as first, OidcIssuer() as second:

        def trusting(issuer: OidcIssuer) -> AbstractContextManager[str]:
            return backend(
                auth_mode="oidc",
                oidc_issuer=issuer.url,
                oidc_audience=issuer.audience,
                database_url=database_url,
            )

        with trusting(first) as url, signed_in(url, first.mint("alice")) as alice:
            assert alice.create_thread("first issuer's alice").status == 200
        with trusting(second) as url, signed_in(url, second.mint("alice")) as namesake:
            assert namesake.list_threads()["data"] == []
            # Each backend trusts its own issuer only.
            namesake.http.headers["authorization"] = f"Bearer {first.mint('alice')}"
            assert_refused(namesake.post(LIST))


def test_key_rotation_is_picked_up_and_the_rotated_key_gets_401(
    oidc_backend: OidcBackend, issuer: OidcIssuer
) -> None:
    with oidc_backend(oidc_jwks_refresh_seconds=0) as url:
        with signed_in(url, issuer.mint()) as alice:
            assert alice.post(LIST).status_code == 200
        fetches = issuer.jwks_requests
        old = issuer.rotate()
        with signed_in(url, issuer.mint()) as alice:  # a kid the backend has not seen
            assert alice.post(LIST).status_code == 200
        assert issuer.jwks_requests == fetches + 1
        with signed_in(url, issuer.mint(key=old)) as stale:
            assert_refused(stale.post(LIST))


def test_unknown_kids_do_not_hammer_the_issuer(
    oidc_backend: OidcBackend, issuer: OidcIssuer
) -> None:
    with oidc_backend() as url:  # the default: at most one refetch a minute
        with signed_in(url, issuer.mint()) as alice:
            assert alice.post(LIST).status_code == 200
        fetches = issuer.jwks_requests
        for _ in range(30):
            forged = issuer.mint(headers={"kid": secrets.token_hex(8)})
            with signed_in(url, forged) as attacker:
                assert_refused(attacker.post(LIST))
        assert issuer.jwks_requests <= fetches + 1
        assert issuer.discovery_requests == 1


def test_explicit_jwks_url_skips_discovery(oidc_backend: OidcBackend, issuer: OidcIssuer) -> None:
    with (
        oidc_backend(oidc_jwks_url=f"{issuer.url}/jwks") as url,
        signed_in(url, issuer.mint()) as c,
    ):
        assert c.post(LIST).status_code == 200
    assert issuer.discovery_requests == 0


def test_unreachable_issuer_is_503_not_a_pass(backend: BackendFactory) -> None:
    with OidcIssuer() as gone:
        token = gone.mint()
        issuer_url = gone.url
    with backend(auth_mode="oidc", oidc_issuer=issuer_url, oidc_audience="chatkit-api") as url:
        response = httpx.post(
            f"{url}/chatkit", json=LIST, headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "issuer_unavailable"


def test_pkce_sign_in_at_the_issuer_then_a_conversation(
    oidc_backend: OidcBackend, issuer: OidcIssuer
) -> None:
    """The code flow a browser runs (oidc-client-ts), done by hand over HTTP."""
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = "http://localhost:3000/callback"
    with httpx.Client(base_url=issuer.url) as http:
        config = http.get("/.well-known/openid-configuration").json()
        authorize = http.get(
            config["authorization_endpoint"],
            params={
                "response_type": "code",
                "client_id": "chatkit-web",
                "redirect_uri": redirect_uri,
                "scope": "openid profile",
                "state": "xyz",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "login_hint": "carol",
            },
        )
        assert authorize.status_code == 302
        back = parse_qs(urlsplit(authorize.headers["location"]).query)
        assert back["state"] == ["xyz"]
        form = {
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": redirect_uri,
            "client_id": "chatkit-web",
        }
        wrong = http.post(config["token_endpoint"], data=form | {"code_verifier": "x" * 43})
        assert wrong.status_code == 400  # and the code is spent
        again = http.post(config["token_endpoint"], data=form | {"code_verifier": verifier})
        assert again.status_code == 400
    # A fresh code with the right verifier.
    with httpx.Client(base_url=issuer.url) as http:
        location = http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": "chatkit-web",
                "redirect_uri": redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "login_hint": "carol",
            },
        ).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        tokens = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": "chatkit-web",
                "code_verifier": verifier,
            },
        ).json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"] == "carol"
    with oidc_backend() as url, signed_in(url, tokens["access_token"]) as carol:
        turn = carol.create_thread("hello")
        assert turn.status == 200 and turn.reply_text


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({}, "OIDC_ISSUER"),
        ({"oidc_issuer": "https://id.example.com/"}, "OIDC_AUDIENCE"),
        ({"oidc_issuer": "http://id.example.com/", "oidc_audience": "api"}, "OIDC_ISSUER"),
        ({"oidc_algorithms": "RS256,none"}, "OIDC_ALGORITHMS"),
        ({"oidc_algorithms": "HS256"}, "OIDC_ALGORITHMS"),
        ({"auth_mode": "magic"}, "AUTH_MODE"),
    ],
)
def test_sign_in_settings_are_checked(
    make_settings: SettingsFactory, overrides: dict[str, str], variable: str
) -> None:
    values = {"auth_mode": "oidc"} | overrides
    with pytest.raises(ConfigError, match=variable):
        make_settings(**values)


def test_concurrent_unknown_kids_share_one_refetch(
    oidc_backend: OidcBackend, issuer: OidcIssuer
) -> None:
    with oidc_backend(oidc_jwks_refresh_seconds=0) as url:
        with signed_in(url, issuer.mint()) as alice:
            assert alice.post(LIST).status_code == 200
        fetches = issuer.jwks_requests
        issuer.rotate()
        token = issuer.mint()  # one new kid, asked for by 20 requests at once

        def call(_: int) -> int:
            return httpx.post(
                f"{url}/chatkit", json=LIST, headers={"authorization": f"Bearer {token}"}
            ).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(call, range(20)))
        assert statuses == [200] * 20
        assert issuer.jwks_requests == fetches + 1


def test_oidc_without_an_issuer_stops_the_process_with_one_line() -> None:
    env = {
        **os.environ,
        "AUTH_MODE": "oidc",
        "OIDC_ISSUER": "",
        "OIDC_AUDIENCE": "",
        "SESSION_SECRET": "s" * 40,
        "DATABASE_URL": "memory://",
        "OPENAI_API_KEY": "test-key",
    }
    result = subprocess.run(
        [sys.executable, "-c", "from app.main import create_app; create_app()"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Configuration error: ")
    assert "AUTH_MODE=oidc needs OIDC_ISSUER" in line
