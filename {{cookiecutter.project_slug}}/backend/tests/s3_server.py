"""A real S3-compatible server on loopback for the tests: moto's server mode.

Like the fake LLM, a stand-in at the wire: the app's real boto3 path runs against it.

    with s3_attachment_settings() as settings:   # a fresh bucket on the shared server
        app = create_app(Settings(**settings, ...))  # attachment_storage, s3_endpoint_url

    s3_server                                    # session fixture: the shared S3Server
    s3.new_bucket(), s3.environment(bucket)      # env vars for a subprocess backend
    with running_s3_server() as s3: ...          # a server of one's own

The AWS_* test credentials are exported into os.environ meanwhile (boto3 reads them
there); ``environment()`` gives them to subprocesses.

moto does not check the signatures of presigned URLs; S3 does. So the server here
checks them itself (``PresignedSignatureCheck``, SigV4 query auth as S3 does it): a PUT
whose Content-Length or Content-Type is not the signed one is refused with 403
SignatureDoesNotMatch, as AWS, R2 and MinIO refuse it. Nor does moto check access keys:
a header-signed request by another key than the test one is refused with 403
InvalidAccessKeyId here, so a test can start an app with a wrong key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import pytest
from moto.server import ThreadedMotoServer

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Never reach for a developer's real AWS setup.
UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-type":
        value = environ.get("CONTENT_TYPE")
    elif name == "content-length":
        value = environ.get("CONTENT_LENGTH")
    else:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return None if value is None else " ".join(str(value).split())


def presigned_signature_error(environ: dict[str, Any], now: datetime) -> str | None:
    """Why S3 would refuse this presigned request; None when its signature holds."""
    raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    path, _, query = raw_uri.partition("?")
    pairs = [(unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in query.split("&"))]
    params = dict(pairs)
    try:
        signature = params["X-Amz-Signature"]
        credential = params["X-Amz-Credential"]
        amz_date = params["X-Amz-Date"]
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"]
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError"
    access_key, _, scope = credential.partition("/")
    if access_key != ACCESS_KEY or params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "InvalidAccessKeyId"
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if now > signed_at + timedelta(seconds=expires):
        return "AccessDenied: Request has expired"
    headers = []
    for name in signed_headers.split(";"):
        value = _header(environ, name)
        if value is None:
            return f"SignatureDoesNotMatch: signed header {name} missing"
        headers.append(f"{name}:{value}\n")
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        [
            str(environ["REQUEST_METHOD"]),
            path,
            canonical_query,
            "".join(headers),
            signed_headers,
            "UNSIGNED-PAYLOAD",
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + SECRET_KEY).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "SignatureDoesNotMatch"
    return None


def access_key_error(environ: dict[str, Any]) -> str | None:
    """InvalidAccessKeyId for a header-signed request by another key than the test one
    (moto takes any key; S3 answers 403), so tests can start an app with a bad key."""
    found = re.search(r"Credential=([^/,\s]+)/", str(environ.get("HTTP_AUTHORIZATION", "")))
    if found is None or found.group(1) == ACCESS_KEY:
        return None
    return "InvalidAccessKeyId"


class PresignedSignatureCheck:
    """WSGI middleware: refuses presigned requests whose SigV4 signature does not hold,
    and header-signed ones by an unknown access key."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.refused: list[str] = []  # what it refused, for tests to look at

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "X-Amz-Signature=" in str(environ.get("QUERY_STRING", "")):
            error = presigned_signature_error(environ, datetime.now(UTC))
        else:
            error = access_key_error(environ)
        if error is None:
            return self.app(environ, start_response)
        self.refused.append(error)
        code = error.split(":", 1)[0]
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{error}</Message></Error>"
        ).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


class _CheckingMotoServer(ThreadedMotoServer):
    """moto's threaded server with its WSGI app wrapped in the signature check."""

    check: PresignedSignatureCheck | None = None

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.check = PresignedSignatureCheck(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, self.check, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@dataclass
class S3Server:
    endpoint_url: str
    server: _CheckingMotoServer

    @property
    def refused(self) -> list[str]:
        return self.server.check.refused if self.server.check else []

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        """A fresh bucket, open to browser PUTs from any origin (CORS), as a deployment
        serving a web frontend configures its bucket."""
        name = f"test-{uuid.uuid4().hex[:20]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        client.put_bucket_cors(
            Bucket=name,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": ["*"],
                        "AllowedMethods": ["PUT", "GET", "HEAD"],
                        "AllowedHeaders": ["*"],
                        "MaxAgeSeconds": 600,
                    }
                ]
            },
        )
        return name

    def environment(self, bucket: str, prefix: str = "uploads") -> dict[str, str]:
        """The app's settings for this bucket, plus the AWS_* credentials."""
        return {
            **CREDENTIALS,
            "ATTACHMENT_STORAGE": f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}",
            "S3_ENDPOINT_URL": self.endpoint_url,
        }


@contextmanager
def aws_test_credentials() -> Iterator[None]:
    """The test credentials in os.environ (boto3 reads them there), restored on exit."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        for name in UNSET:
            env.delenv(name, raising=False)
        yield


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """A server of its own on a free loopback port, with the test credentials exported."""
    with aws_test_credentials():
        server = _CheckingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield S3Server(f"http://{host}:{port}", server)
        finally:
            server.stop()


_shared: list[S3Server] = []
_shared_lock = threading.Lock()


def shared_s3_server() -> S3Server:
    """One server for the whole test process, started on first use (a daemon thread,
    gone with the process); tests keep apart by taking a bucket each."""
    with _shared_lock:
        if not _shared:
            server = _CheckingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            _shared.append(S3Server(f"http://{host}:{port}", server))
        return _shared[0]


@contextmanager
def s3_attachment_settings(prefix: str = "uploads") -> Iterator[dict[str, str]]:
    """Settings (``Settings`` field names) storing attachments in a fresh bucket of the
    shared server; the AWS_* test credentials are exported until exit."""
    server = shared_s3_server()
    with aws_test_credentials():
        bucket = server.new_bucket()
        storage = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        yield {"attachment_storage": storage, "s3_endpoint_url": server.endpoint_url}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The shared server, with the credentials exported; import it where needed."""
    with aws_test_credentials():
        yield shared_s3_server()


__all__ = [
    "S3Server",
    "aws_test_credentials",
    "running_s3_server",
    "s3_attachment_settings",
    "s3_server",
    "shared_s3_server",
]
