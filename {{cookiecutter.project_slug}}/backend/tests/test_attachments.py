"""Attachments over real HTTP: upload, the model's view, previews, limits, lifecycle.

Servers are shared per module (one per configuration, see `pool`); each test is a new
browser (cookie jar), so a new user. What differs by API style (the model's input) is
tested on both; what differs by storage on every store and S3; the rest once.
"""

from __future__ import annotations

import asyncio
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.attachments.service import parse_s3_storage
from app.attachments.sniff import sniff
from app.config import ConfigError
from app.main import create_app
from tests.chatkit_client import ChatKitClient, Turn
from tests.conftest import API_STYLES, fake_settings
from tests.fake_provider import FakeProvider, RecordedRequest
from tests.live_server import LiveServer
from tests.store_fixtures import database_url_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + b"\x10JFIF" + bytes(200)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TEXT = "Quarterly numbers, ünïcode ✓\n".encode()
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"

STORAGES = ("memory", "sqlite", "postgres", "s3")
SMALL_MAX = 64 * 1024


class Pool:
    """Live backends by configuration, started on first use, stopped with the module."""

    def __init__(self, fake: FakeProvider, tmp: Path, stack: ExitStack) -> None:
        self.fake, self.tmp, self.stack = fake, tmp, stack
        self.urls: dict[tuple[Any, ...], str] = {}
        self.buckets: dict[str, str] = {}  # url -> the S3 storage (s3://bucket/prefix)

    def url(self, provider: str = "openai", storage: str = "memory", **overrides: Any) -> str:
        key = (provider, storage, *sorted(overrides.items()))
        if key not in self.urls:
            kind = "sqlite" if storage == "s3" else storage
            folder = Path(tempfile.mkdtemp(dir=self.tmp))
            settings: dict[str, Any] = {
                # On whatever the project's default (the template's answer) is.
                "attachments_enabled": True,
                "database_url": self.stack.enter_context(database_url_for(kind, folder)),
            }
            if storage == "s3":
                settings |= self.stack.enter_context(s3_settings())
            app = create_app(fake_settings(self.fake, provider, **(settings | overrides)))
            self.urls[key] = url = self.stack.enter_context(LiveServer(app)).url
            if storage == "s3":
                self.buckets[url] = settings["attachment_storage"]
        return self.urls[key]

    def stored_object(self, url: str, attachment_id: str) -> bool | None:
        """Whether the S3 object of an attachment exists; None for database storage."""
        if url not in self.buckets:
            return None
        from tests.s3_server import shared_s3_server

        bucket, prefix = parse_s3_storage(self.buckets[url])
        listed = (
            shared_s3_server()
            .client()
            .list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{attachment_id}")
        )
        return bool(listed.get("KeyCount"))


def s3_settings() -> Any:
    from tests.s3_server import s3_attachment_settings  # moto: only when S3 is tested

    return s3_attachment_settings()


@pytest.fixture(scope="module")
def pool(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    with ExitStack() as stack:
        yield Pool(fake, tmp_path_factory.mktemp("attachments"), stack)


@pytest.fixture
def browser(pool: Pool) -> Iterator[ChatKitClient]:
    """A new user on the default server (memory store, Responses API)."""
    with ChatKitClient(pool.url()) as client:
        yield client


@pytest.fixture
def small(pool: Pool) -> Iterator[ChatKitClient]:
    """A new user on a server with small limits."""
    url = pool.url(
        attachment_max_bytes=SMALL_MAX,
        attachment_max_per_message=2,
        history_image_limit=2,
        attachment_text_chars=100,
    )
    with ChatKitClient(url) as client:
        yield client


def model_calls(fake: FakeProvider) -> list[RecordedRequest]:
    return [request for request in fake.requests if request.api]


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert body["message"], body
    return body


# -- the model sees the bytes; previews ------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("style", list(API_STYLES))
def test_uploaded_files_reach_the_model(
    pool: Pool, fake: FakeProvider, style: str, storage: str
) -> None:
    with ChatKitClient(pool.url(API_STYLES[style], storage)) as alice:
        image = alice.attach("photo.png", "image/png", PNG)
        pdf = alice.attach("report.pdf", "application/pdf", PDF, raw=True)
        notes = alice.attach("notes.txt", "text/plain", TEXT)
        turn = alice.create_thread("what is this?", [image["id"], pdf["id"], notes["id"]])
        assert not turn.errors and turn.reply_text, turn.events
        seen = model_calls(fake)[-1]
        assert seen.images() == [("image/png", PNG)]
        assert seen.files() == [("report.pdf", "application/pdf", PDF)]
        assert f"[file notes.txt]\n{TEXT.decode()}" in seen.texts()

        # The next turn sends the history again, files included.
        assert not alice.send(turn.thread_id, "and now?").errors
        assert model_calls(fake)[-1].images() == [("image/png", PNG)]

        preview = alice.http.get(image["preview_url"])
        assert preview.status_code == 200 and preview.content == PNG
        assert preview.headers["content-type"] == "image/png"
        assert preview.headers["cache-control"] == "private, max-age=3600"
        assert preview.headers["x-content-type-options"] == "nosniff"
        assert preview.headers["content-disposition"] == "inline"
        assert preview.headers["content-security-policy"] == "default-src 'none'; sandbox"
        with ChatKitClient(pool.url(API_STYLES[style], storage)) as bob:
            # Without the link's signature, the file is its owner's only.
            assert bob.http.get(unsigned(image["preview_url"])).status_code == 404


def test_non_images_download_as_attachments(browser: ChatKitClient) -> None:
    notes = browser.attach("../../etc/passwd ✓.txt", "text/plain", TEXT)
    assert notes["name"] == "passwd ✓.txt"
    download = browser.http.get(f"/chatkit/attachments/{notes['id']}")
    assert download.content == TEXT
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''passwd%20%E2%9C%93.txt"
    )


# -- lifecycle, per store ------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_attachments_belong_to_their_user_and_first_thread(pool: Pool, storage: str) -> None:
    url = pool.url("openai", storage)
    with ChatKitClient(url) as alice, ChatKitClient(url) as bob:
        image = alice.attach("a.png", "image/png", PNG)
        preview = image["preview_url"]

        # Another user's id: 404 everywhere, and nothing is stored.
        refused = bob.post(
            {"type": "threads.create", "params": {"input": user_input_with("hi", [image["id"]])}}
        )
        assert refused.status_code == 404, refused.text
        assert bob.list_threads()["data"] == []
        assert bob.upload(upload_url(url, image), PNG).status_code in (400, 404)
        assert bob.create_attachment("x.png", "image/png", 10).status_code == 200
        deleted = bob.post({"type": "attachments.delete", "params": {"attachment_id": image["id"]}})
        assert deleted.status_code == 404
        assert alice.http.get(preview).status_code == 200

        # Bound to the first thread it is sent in.
        first = alice.create_thread("one", [image["id"]])
        assert not first.errors
        second = alice.create_thread("two")
        moved = alice.post(
            {
                "type": "threads.add_user_message",
                "params": {
                    "thread_id": second.thread_id,
                    "input": user_input_with("x", [image["id"]]),
                },
            }
        )
        assert moved.status_code == 404, moved.text
        assert not alice.send(first.thread_id, "again", [image["id"]]).errors
        if storage != "s3":
            again = alice.upload(image["upload_descriptor"], PNG)
            assert again.status_code == 409, again.text

        # Deleting the thread deletes its attachments.
        assert pool.stored_object(url, image["id"]) in (True, None)
        alice.request("threads.delete", thread_id=first.thread_id)
        assert alice.http.get(preview).status_code == 404
        assert pool.stored_object(url, image["id"]) in (False, None)

        # attachments.delete removes the file.
        other = alice.attach("b.png", "image/png", PNG)
        alice.request("attachments.delete", attachment_id=other["id"])
        assert alice.http.get(other["preview_url"]).status_code == 404
        assert pool.stored_object(url, other["id"]) in (False, None)


def user_input_with(text: str, attachments: list[str]) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments,
        "inference_options": {},
    }


def unsigned(url: str) -> str:
    """An attachment URL without its signature (app/attachments/urls.py)."""
    return url.split("?", 1)[0]


def upload_url(base: str, attachment: dict[str, Any]) -> dict[str, Any]:
    return {"url": f"{base}/chatkit/attachments/{attachment['id']}/upload", "method": "POST"}


def test_a_file_must_be_uploaded_before_it_is_sent(browser: ChatKitClient) -> None:
    created = browser.create_attachment("a.png", "image/png", len(PNG)).json()
    refused = browser.post(
        {"type": "threads.create", "params": {"input": user_input_with("hi", [created["id"]])}}
    )
    assert refused.status_code == 409 and error_of(refused)["code"] == "not_uploaded"
    assert browser.http.get(created["preview_url"]).status_code == 404
    assert browser.list_threads()["data"] == []


# -- limits and sniffing -----------------------------------------------------------------


def test_policy_is_chatkits_composer_option(pool: Pool, browser: ChatKitClient) -> None:
    policy = browser.http.get("/chatkit/attachments/policy").json()
    assert policy == {
        "enabled": True,
        "maxSize": 20 * 1024 * 1024,
        "maxCount": 4,
        "accept": {
            "image/png": [".png"],
            "image/jpeg": [".jpg", ".jpeg"],
            "image/webp": [".webp"],
            "image/gif": [".gif"],
            "application/pdf": [".pdf"],
            "text/plain": [".txt"],
            "text/markdown": [".md", ".markdown"],
            "text/csv": [".csv"],
        },
    }
    # A provider that takes no PDFs: not offered, and refused naming provider and type.
    with ChatKitClient(pool.url("gemini")) as client:
        assert (
            "application/pdf" not in client.http.get("/chatkit/attachments/policy").json()["accept"]
        )
        refused = client.create_attachment("a.pdf", "application/pdf", 100)
        assert refused.status_code == 415
        assert "Gemini" in error_of(refused)["message"]
        assert "application/pdf" in error_of(refused)["message"]


@pytest.mark.parametrize(
    ("size", "mime_type", "status"),
    [
        (0, "image/png", 413),
        (-1, "image/png", 413),
        (10**10, "image/png", 413),
        (10, "image/svg+xml", 415),
        (10, "text/html", 415),
    ],
)
def test_create_refuses_what_can_never_upload(
    small: ChatKitClient, size: int, mime_type: str, status: int
) -> None:
    refused = small.create_attachment("a", mime_type, size)
    assert refused.status_code == status, refused.text
    error_of(refused)


def test_uploads_are_limited_while_they_stream(small: ChatKitClient) -> None:
    def created() -> dict[str, Any]:
        attachment: dict[str, Any] = small.create_attachment("a.png", "image/png", len(PNG)).json()
        return attachment

    too_big = PNG + bytes(SMALL_MAX)
    declared = created()
    refused = small.upload(declared["upload_descriptor"], too_big, raw=True)
    assert refused.status_code == 413 and error_of(refused)["code"] == "too_large"

    # No Content-Length (chunked): reading stops past the limit.
    streamed = created()
    chunks = iter([PNG, bytes(SMALL_MAX // 2), bytes(SMALL_MAX // 2), bytes(SMALL_MAX)])
    response = small.http.post(streamed["upload_descriptor"]["url"], content=chunks)
    assert response.status_code == 413
    assert small.http.get(streamed["preview_url"]).status_code == 404

    # A Content-Length that promises more than is sent: the cut upload is never stored.
    cut = created()
    assert raw_upload(cut["upload_descriptor"]["url"], small, PNG, declared=5000) in (400, None)
    assert small.http.get(cut["preview_url"]).status_code == 404
    assert small.upload(cut["upload_descriptor"], PNG).status_code == 200  # a retry works


def raw_upload(url: str, client: ChatKitClient, body: bytes, declared: int) -> int | None:
    """POST ``body`` with a lying Content-Length, then stop sending; the status, if any."""
    parts = urlsplit(url)
    cookie = "; ".join(f"{name}={value}" for name, value in client.http.cookies.items())
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nCookie: {cookie}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(4096)
    time.sleep(0.1)  # the server's cleanup after the disconnect
    return int(answer.split()[1]) if answer else None


@pytest.mark.parametrize(
    ("mime_type", "data", "code"),
    [
        ("image/png", HTML, "unrecognized_content"),
        ("text/plain", HTML, "unrecognized_content"),
        ("text/plain", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unrecognized_content"),
        ("text/plain", b"abc\x00def", "unrecognized_content"),
        ("application/pdf", PNG, "content_mismatch"),
        ("image/png", PDF, "content_mismatch"),
    ],
)
def test_the_type_comes_from_the_bytes(
    browser: ChatKitClient, mime_type: str, data: bytes, code: str
) -> None:
    attachment = browser.create_attachment("a", mime_type, len(data)).json()
    refused = browser.upload(attachment["upload_descriptor"], data)
    assert refused.status_code == 415 and error_of(refused)["code"] == code


def test_s3_uploads_are_checked_when_a_message_names_them(pool: Pool) -> None:
    url = pool.url("openai", "s3")
    with ChatKitClient(url) as client:
        disguised = client.attach("x.png", "image/png", HTML)  # the bucket takes anything
        assert pool.stored_object(url, disguised["id"]) is True
        refused = client.post(
            {
                "type": "threads.create",
                "params": {"input": user_input_with("hi", [disguised["id"]])},
            }
        )
        assert refused.status_code == 415 and error_of(refused)["code"] == "unrecognized_content"
        assert pool.stored_object(url, disguised["id"]) is False
        assert client.list_threads()["data"] == []


def same_user(client: ChatKitClient, url: str) -> ChatKitClient:
    """Another connection pool with the user's cookie: the same user, another tab."""
    tab = ChatKitClient(url)
    tab.http.cookies.update(client.http.cookies)
    return tab


@pytest.mark.parametrize("storage", STORAGES)
def test_messages_racing_for_one_attachment_get_4xx(pool: Pool, storage: str) -> None:
    url = pool.url("openai", storage)
    with ChatKitClient(url) as alice:
        threads: list[str | None] = [alice.create_thread(f"t{n}").thread_id for n in range(3)]
        expected = set(threads)  # the threads there should be: these and the new winners
        for _ in range(3):
            image = alice.attach("r.png", "image/png", PNG)

            def send(thread_id: str | None, file_id: str = image["id"]) -> Turn:
                with same_user(alice, url) as tab:
                    if thread_id is None:
                        return tab.create_thread("a new thread", [file_id])
                    return tab.send(thread_id, "in this one", [file_id])

            with ThreadPoolExecutor(4) as workers:
                turns = list(workers.map(send, [*threads, None]))
            # One wins; the others are told the file is not theirs to send (it is bound
            # to the winner's thread), before their stream starts: no 5xx, no error
            # event, and a refused threads.create leaves no empty thread behind.
            assert sorted(turn.status for turn in turns) == [200, 404, 404, 404], [
                turn.events for turn in turns
            ]
            [won] = [turn for turn in turns if turn.status == 200]
            assert not won.errors, won.events
            expected.add(won.thread_id)
            listed = [thread["id"] for thread in alice.list_threads(limit=50)["data"]]
            assert set(listed) == expected
            holders = {
                item["thread_id"]
                for thread_id in listed
                for item in alice.all_items(thread_id)
                if any(a["id"] == image["id"] for a in item.get("attachments", []))
            }
            assert holders == {won.thread_id}


def test_a_message_names_an_attachment_once(browser: ChatKitClient) -> None:
    image = browser.attach("a.png", "image/png", PNG)
    twice = browser.post(
        {
            "type": "threads.create",
            "params": {"input": user_input_with("hi", [image["id"], image["id"]])},
        }
    )
    assert twice.status_code == 400 and error_of(twice)["code"] == "duplicate_attachment"
    assert browser.list_threads()["data"] == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("no_bucket", "The bucket 'no-such-bucket-here' does not exist at S3_ENDPOINT_URL=http"),
        ("bad_key", "refused the credentials for the bucket"),
        ("no_key", "No AWS credentials for ATTACHMENT_STORAGE=s3://"),
        ("no_server", "Could not reach S3_ENDPOINT_URL=http://127.0.0.1:"),
    ],
)
def test_s3_start_fails_naming_the_fix(fake: FakeProvider, problem: str, message: str) -> None:
    from app.attachments.s3 import BucketUnavailable

    with s3_settings() as s3, pytest.MonkeyPatch.context() as env:
        if problem == "no_bucket":
            s3["attachment_storage"] = "s3://no-such-bucket-here/uploads"
        elif problem == "bad_key":
            env.setenv("AWS_ACCESS_KEY_ID", "not-the-key")
        elif problem == "no_key":
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                env.delenv(name)
            for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
                env.setenv(name, "/nonexistent")
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        else:
            s3["s3_endpoint_url"] = f"http://127.0.0.1:{closed_port()}"
        app = create_app(fake_settings(fake, attachments_enabled=True, **s3))

        async def start() -> None:
            async with app.router.lifespan_context(app):
                pass

        with pytest.raises(BucketUnavailable) as refused:
            asyncio.run(start())
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_an_image_is_served_as_what_its_bytes_are(browser: ChatKitClient) -> None:
    image = browser.attach("photo.png", "image/png", JPEG)
    preview = browser.http.get(image["preview_url"])
    assert preview.headers["content-type"] == "image/jpeg" and preview.content == JPEG


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data"),
        ("multipart/form-data; boundary=xyz", b"--xyz--\r\n"),
        ("multipart/form-data", b"whatever"),
        ("application/octet-stream", b""),
    ],
)
def test_malformed_uploads_are_400(browser: ChatKitClient, content_type: str, body: bytes) -> None:
    attachment = browser.create_attachment("a.png", "image/png", 100).json()
    response = browser.http.post(
        attachment["upload_descriptor"]["url"], content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400, response.text
    error_of(response)


def test_a_message_carries_at_most_max_per_message(small: ChatKitClient) -> None:
    ids = [small.attach(f"{n}.png", "image/png", PNG)["id"] for n in range(3)]
    refused = small.post(
        {"type": "threads.create", "params": {"input": user_input_with("hi", ids)}}
    )
    assert refused.status_code == 400 and error_of(refused)["code"] == "too_many_attachments"
    assert small.list_threads()["data"] == []


# -- history ---------------------------------------------------------------------------------


def test_only_the_newest_images_are_resent(small: ChatKitClient, fake: FakeProvider) -> None:
    images = [PNG + bytes([n]) for n in range(3)]
    first = small.attach("0.png", "image/png", images[0])
    thread = small.create_thread("zero", [first["id"]]).thread_id
    for n in (1, 2):
        sent = small.attach(f"{n}.png", "image/png", images[n])
        assert not small.send(thread, str(n), [sent["id"]]).errors
    seen = model_calls(fake)[-1]
    assert seen.images() == [("image/png", images[1]), ("image/png", images[2])]
    assert "[image 0.png, not resent]" in seen.texts()


def test_text_files_are_capped_and_missing_files_are_named(
    small: ChatKitClient, fake: FakeProvider
) -> None:
    long = small.attach("long.md", "text/markdown", b"x" * 300)
    thread = small.create_thread("read it", [long["id"]]).thread_id
    assert f"[file long.md]\n{'x' * 100}\n[... cut at 100 characters]" in (
        model_calls(fake)[-1].texts()
    )
    small.request("attachments.delete", attachment_id=long["id"])
    turn = small.send(thread, "and now?")
    assert not turn.errors and turn.reply_text
    assert "[file long.md is no longer available]" in model_calls(fake)[-1].texts()


# -- origins, switches, sweeps ---------------------------------------------------------------


def test_urls_use_the_public_origin(pool: Pool, browser: ChatKitClient) -> None:
    forwarded = browser.http.post(
        "/chatkit",
        json={
            "type": "attachments.create",
            "params": {"name": "a.png", "size": 10, "mime_type": "image/png"},
        },
        headers={"x-forwarded-proto": "https", "x-forwarded-host": "chat.example.com"},
    ).json()
    assert forwarded["preview_url"].startswith("https://chat.example.com/chatkit/attachments/")
    with ChatKitClient(pool.url(public_url="https://api.example.com/base")) as client:
        created = client.create_attachment("a.txt", "text/plain", 10).json()
        descriptor = created["upload_descriptor"]
        assert (descriptor["method"], descriptor["headers"]) == ("POST", {})
        assert unsigned(descriptor["url"]) == (
            f"https://api.example.com/base/chatkit/attachments/{created['id']}/upload"
        )


def test_attachments_off(pool: Pool) -> None:
    with ChatKitClient(pool.url(attachments_enabled=False)) as client:
        assert client.http.get("/chatkit/attachments/policy").json() == {
            "enabled": False,
            "maxSize": 20 * 1024 * 1024,
            "maxCount": 4,
            "accept": {},
        }
        refused = client.create_attachment("a.png", "image/png", 10)
        assert refused.status_code == 400
        assert error_of(refused)["code"] == "attachments_disabled"
        named = client.post(
            {"type": "threads.create", "params": {"input": user_input_with("hi", ["atc_1"])}}
        )
        assert named.status_code == 400 and error_of(named)["code"] == "attachments_disabled"


def test_unsent_uploads_are_swept(pool: Pool) -> None:
    # Orphans expire after ~0.7 s here; the sweep runs every ~0.2 s.
    with ChatKitClient(pool.url("openai", "memory", attachment_orphan_hours=0.0002)) as client:
        kept = client.attach("kept.png", "image/png", PNG)
        assert not client.create_thread("keep it", [kept["id"]]).errors
        orphan = client.attach("orphan.png", "image/png", PNG)
        deadline = time.monotonic() + 10
        while client.http.get(orphan["preview_url"]).status_code == 200:
            assert time.monotonic() < deadline, "the orphan was never swept"
            time.sleep(0.1)
        assert client.http.get(kept["preview_url"]).status_code == 200


# -- settings and sniffing, without a server ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"attachment_storage": "ftp://files"}, "ATTACHMENT_STORAGE: 'ftp://files' is neither"),
        ({"attachment_storage": "s3://Bad_Bucket"}, "s3://BUCKET/PREFIX"),
        ({"attachment_types": "image/png,image/tiff"}, "ATTACHMENT_TYPES: image/tiff unknown"),
        ({"attachment_types": ""}, "ATTACHMENT_TYPES: empty"),
        ({"public_url": "chat.example.com"}, "PUBLIC_URL: 'chat.example.com' is not"),
        ({"attachment_max_bytes": 0}, "ATTACHMENT_MAX_BYTES"),
    ],
)
def test_bad_attachment_settings_name_the_fix(
    fake: FakeProvider, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        fake_settings(fake, **overrides)


def test_attachment_settings_parse(fake: FakeProvider) -> None:
    settings = fake_settings(
        fake,
        attachment_types=" Image/PNG, text/csv ,image/png",
        attachment_storage="s3://my-bucket/chat/uploads/",
        public_url="https://chat.example.com/",
    )
    assert settings.attachment_types == ["image/png", "text/csv"]
    assert parse_s3_storage(settings.attachment_storage) == ("my-bucket", "chat/uploads")
    assert settings.public_url == "https://chat.example.com"


@pytest.mark.parametrize(
    ("head", "complete", "expected"),
    [
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", False, "image/webp"),
        (b"GIF89a\x01\x00", False, "image/gif"),
        ("caf\u00e9".encode()[:-1], False, "text/plain"),  # a sample cut inside a character
        ("caf\u00e9".encode()[:-1], True, None),  # ...but the whole file: not UTF-8
        (b"<price>12</price>", True, "text/plain"),  # not an HTML tag
        (b"\xef\xbb\xbf  <HTML>", True, None),
        (b"<?xml version='1.0'?><x/>", True, None),
        (b"", True, None),
    ],
)
def test_sniff(head: bytes, complete: bool, expected: str | None) -> None:
    assert sniff(head, complete) == expected
