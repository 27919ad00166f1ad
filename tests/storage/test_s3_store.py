"""The whole protocol against the S3 backend (moto's server on 127.0.0.1): replicate, replicate
incrementally, restore with Range, delete a snapshot, collect garbage, verify."""

import hashlib
import os
import secrets
from datetime import timedelta

import pytest

from storage.models import Chunk, CustomerStore, Snapshot
from storage.services import context
from storage.services.gc import CustomerGc
from storage.services.verify import verify_customer
from storage.store.backends.s3 import S3Backend

from .conftest import CHUNK, digest_of, make_disk, read_stream, split


@pytest.fixture
def s3_store(settings, monkeypatch, moto_endpoint):
    """settings.STORE_URL on a fresh bucket of the moto server; yields the backend."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"acura-{secrets.token_hex(6)}"
    settings.STORE_URL = f"s3://{bucket}/acura/store?endpoint={moto_endpoint}&region=us-east-1"
    context._backend.cache_clear()
    backend = context.backend()
    assert isinstance(backend, S3Backend) and backend.prefix == "acura/store/"
    backend.client.create_bucket(Bucket=bucket)
    return backend


def keys(backend: S3Backend) -> set[str]:
    pages = backend.client.get_paginator("list_objects_v2").paginate(Bucket=backend.bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


def chunk_key(namespace: str, chunk: bytes) -> str:
    digest = hashlib.sha256(chunk).hexdigest()
    return f"acura/store/{namespace}/chunks/{digest[:4]}/{digest}"


def test_protocol_gc_and_verify_on_s3(s3_store, agent, customer, isolated_store):
    disk = make_disk(customer)
    data = os.urandom(5 * CHUNK) + bytes(CHUNK) + b"tail" * 1000
    first = agent.replicate(disk, data)
    assert first["uploaded"] == 6
    namespace = CustomerStore.objects.get(customer=customer).namespace
    stored = keys(s3_store)
    assert {chunk_key(namespace, c) for c in split(data) if c.strip(b"\0")} <= stored
    assert not list(isolated_store.rglob("*"))  # nothing went to the local store

    # Incremental: chunk 2 changes; only it travels, the commit is a delta.
    changed = bytearray(data)
    changed[2 * CHUNK : 2 * CHUNK + 8] = b"CHANGED!"
    changed = bytes(changed)
    session = agent.open(disk).json()
    digests = [digest_of(c) for c in split(changed) if c.strip(b"\0")]
    missing = agent.missing(session["id"], digests).json()["missing"]
    assert missing == [hashlib.sha256(split(changed)[2]).hexdigest()]
    assert agent.upload(session["id"], [split(changed)[2]]).json()["stored"] == 1
    response = agent.commit_delta(
        session["id"],
        len(changed),
        first["snapshot"]["index_checksum"],
        [(2, digest_of(split(changed)[2]))],
    )
    assert response.status_code == 201, response.content
    second = response.json()

    # Restore both, whole and by Range (across a chunk boundary, into the zero chunk).
    assert read_stream(agent.image(first["snapshot"]["id"])) == data
    assert read_stream(agent.image(second["id"])) == changed
    ranged = agent.image(second["id"], HTTP_RANGE=f"bytes={2 * CHUNK - 3}-{5 * CHUNK + 9}")
    assert ranged.status_code == 206
    assert read_stream(ranged) == changed[2 * CHUNK - 3 : 5 * CHUNK + 10]

    # Delete the first snapshot: its unique chunk (the old chunk 2) is garbage.
    Snapshot.objects.for_customer(customer).filter(pk=first["snapshot"]["id"]).delete()
    old_key = chunk_key(namespace, split(data)[2])
    assert old_key in keys(s3_store)
    stats = CustomerGc(customer, grace=timedelta(0)).run()
    assert stats.swept_chunks == 1 and stats.freed_bytes > CHUNK
    remaining = keys(s3_store)
    assert old_key not in remaining
    assert {chunk_key(namespace, c) for c in split(changed) if c.strip(b"\0")} <= remaining
    assert Chunk.objects.for_customer(customer).count() == 6
    assert read_stream(agent.image(second["id"])) == changed  # the delta's base index stays

    result = verify_customer(customer)
    assert result["chunks_checked"] == 6
    assert result["bad_chunks"] == result["missing_chunks"] == result["index_problems"] == []
    assert result["affected_snapshots"] == []
