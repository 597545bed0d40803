"""The generated project's loopback OpenID provider in a process of its own, for row 15.

    cd <project>/backend && python reliability/oidc_issuer_process.py

runs backend/tests/oidc_issuer.py's `OidcIssuer` (discovery, JWKS, on real HTTP) and the
attack tokens of backend/tests/test_oidc.py's `ATTACKS`, the generated project's own, from
the project's backend folder (its `tests` and `app` packages, which this template's own
`tests` package would shadow in the suite's process). It prints one JSON line,
{"url", "audience"}, then answers each command on stdin with one JSON line:

    mint SUBJECT ...  {"tokens": {subject: a valid access token}}
    attacks           {"tokens": {attack: its token}}
    rotate            {"old": a token of the withdrawn key, "new": one of its successor}
    cookie USER_ID    {"cookie": a session cookie signed with $SESSION_SECRET}
    stats             {"jwks_requests": n, "discovery_requests": n}

and ends at the end of its input.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

COOKIE_MAX_AGE_SECONDS = 3600


def answer(issuer: Any, command: str, args: list[str]) -> dict[str, Any]:
    # The project's modules, importable from its backend folder (see main).
    from app.identity import SessionCookies
    from tests.test_oidc import ATTACKS

    if command == "mint":
        return {"tokens": {subject: issuer.mint(subject) for subject in args}}
    if command == "attacks":
        return {"tokens": {name: make(issuer) for name, make in ATTACKS.items()}}
    if command == "rotate":
        old = issuer.rotate()
        return {"old": issuer.mint(key=old), "new": issuer.mint()}
    if command == "cookie":
        cookies = SessionCookies(
            os.environ["SESSION_SECRET"], "chatkit_session", COOKIE_MAX_AGE_SECONDS
        )
        return {"cookie": cookies.issue(args[0])}
    if command == "stats":
        return {
            "jwks_requests": issuer.jwks_requests,
            "discovery_requests": issuer.discovery_requests,
        }
    return {"error": f"unknown command {command!r}"}


def main() -> None:
    sys.path.insert(0, os.getcwd())
    from tests.oidc_issuer import OidcIssuer

    with OidcIssuer() as issuer:
        print(json.dumps({"url": issuer.url, "audience": issuer.audience}), flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            print(json.dumps(answer(issuer, command, args)), flush=True)


if __name__ == "__main__":
    main()
