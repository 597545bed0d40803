"""S3Objects against a real S3-compatible server on loopback (moto, tests/s3_server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from chatkit.store import NotFoundError

from app.attachments.s3 import STREAM_BYTES, S3Objects
from tests.s3_server import S3Server, s3_server

__all__ = ["s3_server"]  # the session fixture, used below


@pytest.fixture
def objects(s3_server: S3Server) -> Iterator[S3Objects]:
    yield S3Objects(s3_server.new_bucket(), "some/prefix", s3_server.endpoint_url)


async def put(url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.put(url, content=data, headers=headers)


async def test_presigned_put_then_read(objects: S3Objects, s3_server: S3Server) -> None:
    data = os.urandom(2 * STREAM_BYTES + 17)
    url = await objects.presign_put("atc_1", "image/png", len(data))
    assert url.startswith(f"{s3_server.endpoint_url}/{objects.bucket}/some/prefix/atc_1?")
    assert await objects.head("atc_1") is None  # not uploaded yet

    response = await put(url, data, {"Content-Type": "image/png"})
    assert response.status_code == 200, response.text

    assert await objects.head("atc_1") == len(data)
    assert await objects.read("atc_1") == data
    assert await objects.read_head("atc_1", 8) == data[:8]
    assert await objects.read_head("atc_1", len(data) + 100) == data
    assert await objects.read_head("atc_1", 0) == b""
    chunks = [chunk async for chunk in objects.stream("atc_1")]
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= STREAM_BYTES and len(chunks) >= 3
    head = s3_server.client().head_object(Bucket=objects.bucket, Key="some/prefix/atc_1")
    assert head["ContentType"] == "image/png"

    await objects.delete(["atc_1", "atc_never_uploaded"])  # missing keys are no error
    assert await objects.head("atc_1") is None
    with pytest.raises(NotFoundError):
        await objects.read("atc_1")
    with pytest.raises(NotFoundError):
        await objects.read_head("atc_1", 8)
    await objects.delete([])


async def test_presigned_put_is_bound_to_its_size_and_type(
    objects: S3Objects, s3_server: S3Server
) -> None:
    url = await objects.presign_put("atc_2", "image/png", 10)
    refused_before = len(s3_server.refused)
    for data, content_type in (
        (b"x" * 11, "image/png"),  # more bytes than declared
        (b"x" * 9, "image/png"),  # fewer
        (b"<html>0123", "text/html"),  # another type
    ):
        response = await put(url, data, {"Content-Type": content_type})
        assert response.status_code == 403, response.text
        assert "SignatureDoesNotMatch" in response.text
    async with httpx.AsyncClient() as client:  # no Content-Type at all
        response = await client.put(url, content=b"x" * 10)
    assert response.status_code == 403
    assert len(s3_server.refused) == refused_before + 4
    assert await objects.head("atc_2") is None  # nothing stored

    tampered = url.replace("atc_2", "atc_3")  # the key is signed too
    assert (await put(tampered, b"x" * 10, {"Content-Type": "image/png"})).status_code == 403
    ok = await put(url, b"x" * 10, {"Content-Type": "image/png"})
    assert ok.status_code == 200, ok.text
    assert await objects.head("atc_2") == 10


async def test_keys_stay_under_the_prefix(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    bare = S3Objects(bucket, "", s3_server.endpoint_url)
    assert bare.object_key("atc_1") == "atc_1"
    assert S3Objects(bucket, "/a/b/", None).object_key("atc_1") == "a/b/atc_1"
    for bad in ("", "..", "a/b", "../x", "a\x00"):
        with pytest.raises(ValueError):
            bare.object_key(bad)
    with pytest.raises(ValueError, match="bucket"):
        S3Objects("", "p", None)
    url = await bare.presign_put("atc_1", "text/plain", 2)
    assert (await put(url, b"hi", {"Content-Type": "text/plain"})).status_code == 200
    assert await bare.read("atc_1") == b"hi"
    missing = S3Objects("no-such-bucket-here", "", s3_server.endpoint_url)
    with pytest.raises(Exception, match="NoSuchBucket"):
        await missing.read("atc_1")  # (HEAD has no body: a missing bucket is None there)
