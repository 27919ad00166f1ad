"""Fixtures of the store library tests: one backend suite run against every backend.

The S3 backend runs against moto's server mode (a real HTTP server on 127.0.0.1, so boto3's
whole request path is exercised, not a mocked client). moto is a dev requirement: when it is
missing the fixture FAILS with instructions — a skipped S3 suite would hide a broken backend.
"""

import secrets
from pathlib import Path

import pytest

from storage.store.backends import ChunkBackend, new_namespace
from storage.store.backends.local import LocalBackend

BACKEND_KINDS = ["local-fsync", "local-nofsync", "s3"]


def make_s3_backend(endpoint: str, bucket: str | None = None, prefix: str = "store/"):
    """A fresh bucket on the moto server and an S3Backend on it."""
    from storage.store.backends.s3 import S3Backend

    bucket = bucket or f"acura-test-{secrets.token_hex(6)}"
    backend = S3Backend(
        bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
        prefix=prefix,
    )
    backend.client.create_bucket(Bucket=bucket)
    return backend


@pytest.fixture(autouse=True)
def isolated_store():
    """Overrides the Django-settings fixture of tests/storage/conftest.py: the library tests
    need no Django (each test builds its own backend in its own tmp_path or bucket)."""
    return None


@pytest.fixture(params=BACKEND_KINDS)
def backend(request, tmp_path) -> ChunkBackend:
    """Each backend test runs against local (fsync on and off) and S3 (moto)."""
    if request.param == "s3":
        return make_s3_backend(request.getfixturevalue("moto_endpoint"))
    return LocalBackend(tmp_path / "store", fsync=request.param == "local-fsync")


@pytest.fixture
def ns() -> str:
    return new_namespace()


@pytest.fixture
def other_ns() -> str:
    return new_namespace()


def leave_partial_write(backend: ChunkBackend, ns: str, digest_hex: str, data: bytes) -> None:
    """Leave behind what a writer killed mid-write leaves: a temp file next to the target
    (local) or an uncompleted multipart upload for the key (S3)."""
    if isinstance(backend, LocalBackend):
        path = backend._chunk_path(ns, digest_hex)
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{digest_hex}.0123456789abcdef.tmp").write_bytes(data)
        return
    key = backend._chunk_key(ns, digest_hex)
    upload = backend.client.create_multipart_upload(Bucket=backend.bucket, Key=key)
    backend.client.upload_part(
        Bucket=backend.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data
    )


def stored_names(backend: ChunkBackend, tmp_path: Path) -> list[str]:
    """Everything the backend holds (files under tmp_path or keys in the bucket)."""
    if isinstance(backend, LocalBackend):
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    listed = backend.client.list_objects_v2(Bucket=backend.bucket)
    return sorted(obj["Key"] for obj in listed.get("Contents", ()))
