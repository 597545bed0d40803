"""Attachment bytes in an S3-compatible bucket (``ATTACHMENT_STORAGE=s3://BUCKET/PREFIX``).

AWS S3, Cloudflare R2, MinIO, GCS interop: ``S3_ENDPOINT_URL`` names a non-AWS service;
credentials and region come from the standard ``AWS_*`` variables (boto3's chain).
boto3 is imported on first use, so an app storing files in its database never loads
it, and its blocking calls run in worker threads, off the event loop.

Objects are named ``PREFIX/<attachment id>``; callers pass the attachment id as ``key``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from chatkit.store import NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# What one stream() step reads: the store's chunk size, so a download holds as much
# memory whichever storage serves it.
STREAM_BYTES = 256 * 1024
# Long enough for a slow upload to start; the signature fixes the size and type anyway.
PRESIGN_EXPIRES_S = 15 * 60
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class BucketUnavailable(RuntimeError):
    """The bucket does not answer at start-up; the message names the setting to fix."""


class S3Objects:
    """``S3Objects(bucket, prefix, endpoint_url)``: the calls the attachment service needs."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        *,
        presign_expires_s: int = PRESIGN_EXPIRES_S,
    ) -> None:
        if not bucket:
            raise ValueError("S3 storage needs a bucket: ATTACHMENT_STORAGE=s3://BUCKET/PREFIX")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.presign_expires_s = presign_expires_s
        self._client_lock = threading.Lock()  # creating a boto3 client is not thread-safe
        self._client_instance: S3Client | None = None

    def object_key(self, key: str) -> str:
        # Keys are attachment ids the server made; refuse anything that could leave the prefix.
        if not key or "/" in key or key in (".", "..") or "\x00" in key:
            raise ValueError(f"not an object name: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _client(self) -> S3Client:
        with self._client_lock:
            if self._client_instance is None:
                self._client_instance = self._new_client()
            return self._client_instance

    def _new_client(self) -> S3Client:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        # A region is needed to sign; S3-compatible services mostly ignore it.
        region = session.region_name or "us-east-1"
        config = Config(
            signature_version="s3v4",
            # Path style: MinIO, moto and most self-hosted services have no per-bucket DNS.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        return session.client(
            "s3", endpoint_url=self.endpoint_url, region_name=region, config=config
        )

    async def _call(self, method: str, **params: Any) -> Any:
        def call() -> Any:
            return getattr(self._client(), method)(Bucket=self.bucket, **params)

        return await asyncio.to_thread(call)  # one thread hop: the client is made there too

    @property
    def storage(self) -> str:
        """The ``ATTACHMENT_STORAGE`` value this names."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    async def check_bucket(self) -> None:
        """HEAD the bucket (s3:ListBucket); BucketUnavailable naming the fix otherwise.

        Without it a missing bucket or refused credentials would show only later, and
        as something else: HEAD of an object in a missing bucket is a 404 like a file
        not uploaded yet.
        """
        try:
            await self._call("head_bucket")
        except Exception as error:
            raise BucketUnavailable(self._bucket_problem(error)) from error

    def _bucket_problem(self, error: Exception) -> str:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError

        setting = f"ATTACHMENT_STORAGE={self.storage}"
        where = f"S3_ENDPOINT_URL={self.endpoint_url}" if self.endpoint_url else "AWS S3"
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return (
                f"No AWS credentials for {setting}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or an instance role)."
            )
        if isinstance(error, BotoConnectionError):
            return (
                f"Could not reach {where} for {setting} ({type(error).__name__}): start the "
                "service, or fix S3_ENDPOINT_URL (empty for AWS S3)."
            )
        code = _error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return (
                f"The bucket {self.bucket!r} does not exist at {where} ({setting}): create it, "
                "or fix ATTACHMENT_STORAGE / S3_ENDPOINT_URL."
            )
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return (
                f"{where} refused the credentials for the bucket {self.bucket!r} ({setting}, "
                "HTTP 403): set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY to a key allowed "
                "s3:ListBucket on the bucket and s3:GetObject, s3:PutObject, s3:DeleteObject "
                "on its objects."
            )
        return (
            f"Checking the bucket of {setting} at {where} failed "
            f"({type(error).__name__} {code}): check ATTACHMENT_STORAGE, S3_ENDPOINT_URL "
            "and the AWS_* credentials."
        )

    async def presign_put(self, key: str, content_type: str, size: int) -> str:
        """A URL for one PUT of exactly ``size`` bytes of ``content_type``.

        Both headers are signed: S3 refuses a PUT whose Content-Length or Content-Type
        differs (403 SignatureDoesNotMatch), so a client cannot store more than declared.
        """
        client = await asyncio.to_thread(self._client)
        params = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "ContentType": content_type,
            "ContentLength": size,
        }
        url: str = await asyncio.to_thread(
            client.generate_presigned_url,
            "put_object",
            Params=params,
            ExpiresIn=self.presign_expires_s,
            HttpMethod="PUT",
        )
        return url

    async def head(self, key: str) -> int | None:
        """The object's size; None when there is none (not uploaded yet)."""
        try:
            response = await self._call("head_object", Key=self.object_key(key))
        except Exception as error:
            if _is_missing(error):
                return None
            raise
        return int(response["ContentLength"])

    async def read(self, key: str) -> bytes:
        """The whole object (NotFoundError when missing): for files the model gets whole."""
        return b"".join([chunk async for chunk in self.stream(key)])

    async def read_head(self, key: str, n: int) -> bytes:
        """The object's first ``n`` bytes (fewer when it is shorter), by a ranged GET."""
        if n <= 0:
            return b""
        body = await self._get(key, Range=f"bytes=0-{n - 1}")
        try:
            data: bytes = await asyncio.to_thread(body.read, n)
        finally:
            await asyncio.to_thread(body.close)
        return data

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object, ``STREAM_BYTES`` at a time; NotFoundError (first step) when missing."""
        body = await self._get(key)
        try:
            while chunk := await asyncio.to_thread(body.read, STREAM_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(body.close)

    async def _get(self, key: str, **params: Any) -> Any:
        try:
            response = await self._call("get_object", Key=self.object_key(key), **params)
        except Exception as error:
            if _is_missing(error):
                raise NotFoundError(f"Object {key} not found") from None
            raise
        return response["Body"]

    async def delete(self, keys: list[str]) -> None:
        """Delete the objects (missing ones are no error); raises when S3 refuses any."""
        names = [self.object_key(key) for key in keys]
        for start in range(0, len(names), _DELETE_BATCH):
            batch = names[start : start + _DELETE_BATCH]
            response = await self._call(
                "delete_objects",
                Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
            )
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"S3 refused to delete {len(errors)} object(s), e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)  # botocore's ClientError
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _is_missing(error: Exception) -> bool:
    return _error_code(error) in _MISSING
