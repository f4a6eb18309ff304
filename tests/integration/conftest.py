"""Shared fixtures for integration tests: a real S3 API server (moto) on loopback.

The server runs in server mode (HTTP on 127.0.0.1, a free port chosen by the OS), so
s3fs/botocore talk to it exactly as they would to S3: signed requests, conditional PUTs
(``If-None-Match: *``), listings. Clients find it through the standard ``AWS_ENDPOINT_URL``
environment variable, which botocore (and so s3fs) reads natively: that is also how a
user points skybatch at MinIO, R2 or any S3-compatible store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server."""

    endpoint_url: str

    def new_bucket(self) -> str:
        """Create a fresh bucket and return its name."""
        import boto3

        name = f"skybatch-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint_url).create_bucket(Bucket=name)
        return name


_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server for the whole session; stopped at teardown."""
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    # The request log goes to stderr line by line; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _ENV.items():
            mp.setenv(key, value)
        # Never let a developer's real AWS config leak into tests.
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        try:
            yield S3Server(endpoint_url=endpoint)
        finally:
            server.stop()
            import s3fs

            # Cached clients point at this server; drop them with it.
            s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_store_url(s3_server: S3Server) -> str:
    """A store URL in a fresh bucket: ``s3://<bucket>/runs``."""
    import s3fs

    # An s3fs client cached by an earlier test (before the endpoint and keys were set)
    # would be reused by fsspec and fail; every S3 test starts from fresh clients.
    s3fs.S3FileSystem.clear_instance_cache()
    return f"s3://{s3_server.new_bucket()}/runs"
