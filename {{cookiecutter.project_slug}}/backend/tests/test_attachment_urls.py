"""Signed attachment links over real HTTP (app/attachments/urls.py).

The widget uploads and shows previews without the bearer token, so under AUTH_MODE=oidc
the links themselves carry the user; a changed, misused or expired link is a 403.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from app.attachments.urls import DAY, Action, AttachmentUrls
from tests.chatkit_client import ChatKitClient
from tests.conftest import BackendFactory
from tests.fake_provider import FakeProvider
from tests.oidc_issuer import OidcIssuer
from tests.test_attachments import PNG, unsigned

SECRET = "s" * 40  # tests/conftest.py's SESSION_SECRET


def signed_in(url: str, token: str) -> ChatKitClient:
    client = ChatKitClient(url)
    client.http.headers["authorization"] = f"Bearer {token}"
    return client


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def with_query(url: str, query: dict[str, str]) -> str:
    return f"{unsigned(url)}?{urlencode(query)}"


def upload(url: str, data: bytes = PNG) -> httpx.Response:
    """The widget's upload: no cookie, no bearer token."""
    return httpx.post(url, files={"file": ("a.png", data, "image/png")})


def get(url: str) -> httpx.Response:
    """An ``<img src>``: no cookie, no bearer token."""
    return httpx.get(url, timeout=10)


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert "set-cookie" not in response.headers


def test_attachments_work_under_oidc_by_their_signed_links(
    backend: BackendFactory, fake: FakeProvider, database_url: str
) -> None:
    with (
        OidcIssuer() as issuer,
        backend(
            auth_mode="oidc",
            oidc_issuer=issuer.url,
            oidc_audience=issuer.audience,
            attachments_enabled=True,
            database_url=database_url,
        ) as url,
        signed_in(url, issuer.mint("alice")) as alice,
        signed_in(url, issuer.mint("bob")) as bob,
    ):
        created = alice.create_attachment("photo.png", "image/png", len(PNG)).json()
        link = created["upload_descriptor"]["url"]
        assert upload(unsigned(link)).status_code == 401  # no token, no signature
        uploaded = upload(link)
        assert uploaded.status_code == 200, uploaded.text
        assert "set-cookie" not in uploaded.headers

        turn = alice.create_thread("what is this?", [created["id"]])
        assert not turn.errors and turn.reply_text, turn.events
        assert fake.requests[-1].images() == [("image/png", PNG)]

        preview = get(created["preview_url"])  # an <img src>: no token
        assert preview.status_code == 200 and preview.content == PNG
        # A thread loaded later carries links signed for its reader, which work.
        (message,) = [i for i in alice.list_items(turn.thread_id)["data"] if i.get("attachments")]
        again = message["attachments"][0]["preview_url"]
        assert query_of(again)["signature"]
        assert get(again).content == PNG

        # Without a signature the token decides: none is 401, bob's is not the owner.
        assert get(unsigned(again)).status_code == 401
        assert bob.http.get(unsigned(again)).status_code == 404
        # Alice's links name her file only: on bob's they are refused.
        mine = bob.create_attachment("b.png", "image/png", len(PNG)).json()
        bobs_path = unsigned(mine["upload_descriptor"]["url"])
        refused(upload(with_query(bobs_path, query_of(link))), "bad_signature")
        refused(
            get(with_query(mine["preview_url"], query_of(again))),
            "bad_signature",
        )


def test_changed_misused_and_expired_links_are_refused(backend: BackendFactory) -> None:
    with backend(attachments_enabled=True) as url, ChatKitClient(url) as alice:
        created = alice.create_attachment("a.png", "image/png", len(PNG)).json()
        upload_link = created["upload_descriptor"]["url"]
        preview = created["preview_url"]
        good = query_of(preview)
        assert sorted(good) == ["expires", "signature", "user"]

        # The cookie is not needed, and none is issued: the link is the user.
        assert upload(upload_link).status_code == 200
        shown = get(preview)
        assert shown.status_code == 200 and "set-cookie" not in shown.headers

        signature = good["signature"]
        changed = {
            "signature": signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"),
            "user": "usr_" + "0" * 32,
            "expires": str(int(good["expires"]) + DAY),
        }
        for name, value in changed.items():
            refused(get(with_query(preview, good | {name: value})), "bad_signature")
        incomplete = {k: v for k, v in good.items() if k != "user"}
        refused(get(with_query(preview, incomplete)), "bad_signature")
        # A link does one thing: the upload link's signature does not download.
        refused(get(with_query(preview, query_of(upload_link))), "bad_signature")
        refused(upload(with_query(upload_link, good)), "bad_signature")

        # Links the server signed days (preview) or hours (upload) ago have expired.
        urls = AttachmentUrls(SECRET)

        def signed(action: Action, age: float) -> dict[str, str]:
            query = urls.query(action, created["id"], good["user"], now=time.time() - age)
            return dict(parse_qsl(query))

        expired = get(with_query(preview, signed("download", 3 * DAY)))
        refused(expired, "link_expired")
        assert "Reload the conversation" in expired.json()["error"]["message"]
        refused(upload(with_query(upload_link, signed("upload", 7200))), "link_expired")
        # ...while the same signer's link of today works: the refusals are the time's.
        assert get(with_query(preview, signed("download", 0))).content == PNG
