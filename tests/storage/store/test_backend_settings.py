"""backend_from_settings: ACURA_STORE_URL → backend."""

from pathlib import Path

import pytest

from storage.store.backends import backend_from_settings, new_namespace
from storage.store.backends.local import LocalBackend
from storage.store.backends.s3 import S3Backend
from storage.store.errors import StoreConfigError

from .conftest import make_s3_backend


@pytest.mark.parametrize("url", [None, "", "   "])
def test_unset_means_local_under_the_data_folder(tmp_path, url):
    backend = backend_from_settings(url, tmp_path, fsync=True)
    assert isinstance(backend, LocalBackend)
    assert backend.root == tmp_path / "store"
    assert backend.fsync is True


def test_file_url(tmp_path):
    backend = backend_from_settings(f"file://{tmp_path}/chunks%20here", Path("/unused"), False)
    assert isinstance(backend, LocalBackend)
    assert backend.root == tmp_path / "chunks here"
    assert backend.fsync is False
    assert backend_from_settings(f"file://localhost{tmp_path}", tmp_path, True).root == tmp_path


@pytest.mark.parametrize(
    "url", ["file://relative/path", "file:relative", "file://otherhost/x", "ftp://x/y", "/abs"]
)
def test_bad_urls(url, tmp_path):
    with pytest.raises(StoreConfigError) as excinfo:
        backend_from_settings(url, tmp_path, True)
    assert isinstance(excinfo.value, ValueError)


def test_s3_url():
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    backend = backend_from_settings(
        "s3://my-bucket/acura/store/?endpoint=http://127.0.0.1:9000&region=eu-central-1",
        Path("/unused"),
        True,
        environ=env,
    )
    assert isinstance(backend, S3Backend)
    assert (backend.bucket, backend.prefix) == ("my-bucket", "acura/store/")
    assert backend.endpoint_url == "http://127.0.0.1:9000"
    assert backend.client.meta.region_name == "eu-central-1"
    credentials = backend.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AKIDEXAMPLE", "secret")
    plain = backend_from_settings("s3://bucket", Path("/unused"), True, environ=env)
    assert plain.prefix == "" and plain.endpoint_url is None


@pytest.mark.parametrize(
    "url", ["s3:///no-bucket", "s3://bucket/p?endpont=typo", "s3://bucket/bad prefix!/"]
)
def test_bad_s3_urls(url):
    with pytest.raises(StoreConfigError):
        backend_from_settings(url, Path("/unused"), True, environ={})


def test_s3_url_against_moto(moto_endpoint):
    bucket = make_s3_backend(moto_endpoint).bucket  # creates the bucket
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    url = f"s3://{bucket}/from-url?endpoint={moto_endpoint}&region=us-east-1"
    backend = backend_from_settings(url, Path("/unused"), True, environ=env)
    ns = new_namespace()
    backend.put_object(ns, "hello.txt", b"hi")
    assert backend.get_object(ns, "hello.txt") == b"hi"
    listed = backend.client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"from-url/{ns}/objects/hello.txt"]
