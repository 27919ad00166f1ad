"""Fixtures of the store library tests: one backend suite run against every backend.

The S3 backend runs against moto's server mode (a real HTTP server on 127.0.0.1, so boto3's
whole request path is exercised, not a mocked client). moto is a dev requirement: when it is
missing the fixture FAILS with instructions — a skipped S3 suite would hide a broken backend.
"""

import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from storage.store.backends import ChunkBackend, new_namespace
from storage.store.backends.local import LocalBackend

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
BACKEND_KINDS = ["local-fsync", "local-nofsync", "s3"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """URL of a moto S3 server started for this test session (and stopped after it)."""
    if not MOTO_SERVER.exists():
        pytest.fail(
            f"moto[server] is not installed ({MOTO_SERVER} missing): "
            "run `.venv/bin/pip install -r requirements-dev.txt`",
            pytrace=False,
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if proc.poll() is not None:
                pytest.fail(
                    f"moto_server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server did not answer on {url} within 30 s", pytrace=False)
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
