"""The upload protocol end to end through the API: replicate, replicate again, restore."""

import hashlib
import os
import random

import pytest

from storage.models import Chunk, IndexFile, SessionState, Snapshot, UploadSession

from .conftest import CHUNK, digest_of, make_disk, read_stream, split


def disk_image(seed: int, chunks: int = 8) -> bytes:
    """Random chunks, one all-zero chunk and one compressible chunk."""
    rnd = random.Random(seed)
    parts = [rnd.randbytes(CHUNK) for _ in range(chunks)]
    parts[2] = bytes(CHUNK)
    parts[3] = (b"log line %d\n" % seed) * (CHUNK // 12) + b"x" * (CHUNK % 12)
    return b"".join(parts)[: chunks * CHUNK - 1000]  # a short last chunk


def test_first_replication_then_restore_bit_exact(agent, customer):
    disk = make_disk(customer)
    data = disk_image(1)
    opened = agent.open(disk)
    assert opened.status_code == 201
    session = opened.json()
    assert session["base_snapshot"] is None and session["chunk_size"] == CHUNK
    result = agent.replicate(disk, data)
    snapshot = result["snapshot"]
    assert result["uploaded"] == 7  # 8 chunks, one of them all zeros
    assert snapshot["disk_size"] == len(data)
    assert snapshot["zero_chunks"] == 1
    assert snapshot["logical_bytes"] == len(data) - CHUNK
    response = agent.image(snapshot["id"])
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert read_stream(response) == data
    assert Chunk.objects.for_customer(customer).count() == 7


def test_incremental_replication_sends_only_changed_chunks(agent, customer):
    disk = make_disk(customer)
    first_data = disk_image(2)
    first = agent.replicate(disk, first_data)["snapshot"]
    changed = bytearray(first_data)
    changed[5 * CHUNK + 10 : 5 * CHUNK + 20] = b"0123456789"
    changed = bytes(changed)

    session = agent.open(disk).json()
    assert session["base_snapshot"] == first["id"]
    assert session["base_index_checksum"] == first["index_checksum"]
    digests = [digest_of(c) for c in split(changed) if c.strip(b"\0")]
    missing = agent.missing(session["id"], digests).json()["missing"]
    assert missing == [hashlib.sha256(split(changed)[5]).hexdigest()]
    assert agent.upload(session["id"], [split(changed)[5]]).json()["stored"] == 1
    response = agent.commit_delta(
        session["id"], len(changed), first["index_checksum"], [(5, digest_of(split(changed)[5]))]
    )
    assert response.status_code == 201, response.content
    second = response.json()
    assert second["base"] == first["id"]
    assert read_stream(agent.image(first["id"])) == first_data
    assert read_stream(agent.image(second["id"])) == changed
    # The second index is stored as a delta of the first.
    index = Snapshot.objects.for_customer(customer).get(pk=second["id"]).index
    assert index.kind == "delta" and index.base_id is not None
    assert (
        index.stored_bytes
        < IndexFile.objects.for_customer(customer).get(pk=index.base_id).stored_bytes
    )


def test_interrupted_session_resumes_without_resending(agent, customer):
    disk = make_disk(customer)
    data = disk_image(3)
    chunks = [c for c in split(data) if c.strip(b"\0")]
    session = agent.open(disk).json()
    agent.upload(session["id"], chunks[:4])  # then the agent "crashes"
    resumed = agent.open(disk)
    assert resumed.status_code == 200
    assert resumed.json()["id"] == session["id"] and resumed.json()["resumed"] is True
    missing = agent.missing(session["id"], [digest_of(c) for c in chunks]).json()["missing"]
    assert missing == [hashlib.sha256(c).hexdigest() for c in chunks[4:]]
    agent.upload(session["id"], chunks[4:])
    assert agent.commit_full(session["id"], data).status_code == 201


def test_disk_can_grow_and_shrink_between_snapshots(agent, customer):
    disk = make_disk(customer)
    small = os.urandom(3 * CHUNK)
    agent.replicate(disk, small)
    grown = small + os.urandom(2 * CHUNK + 7)
    snap = agent.replicate(disk, grown)["snapshot"]
    assert read_stream(agent.image(snap["id"])) == grown
    shrunk = grown[: CHUNK + 5]
    snap = agent.replicate(disk, shrunk)["snapshot"]
    assert read_stream(agent.image(snap["id"])) == shrunk


def test_empty_disk(agent, customer):
    disk = make_disk(customer)
    snap = agent.replicate(disk, b"")["snapshot"]
    assert snap["disk_size"] == 0
    assert read_stream(agent.image(snap["id"])) == b""


@pytest.mark.parametrize(
    ("header", "expected_slice", "status"),
    [
        ("bytes=0-9", slice(0, 10), 206),
        ("bytes=65530-65545", slice(65530, 65546), 206),  # across a chunk boundary
        ("bytes=-100", slice(-100, None), 206),
        ("bytes=131072-", slice(131072, None), 206),
        ("bytes=0-1,5-6", slice(None), 200),  # several ranges: the whole image
    ],
)
def test_range_requests(agent, customer, header, expected_slice, status):
    disk = make_disk(customer)
    data = disk_image(4)
    snap = agent.replicate(disk, data)["snapshot"]
    response = agent.image(snap["id"], HTTP_RANGE=header)
    assert response.status_code == status
    body = read_stream(response)
    assert body == data[expected_slice]
    if status == 206:
        start = expected_slice.start if expected_slice.start is not None else 0
        start = start if start >= 0 else len(data) + start
        assert response["Content-Range"] == f"bytes {start}-{start + len(body) - 1}/{len(data)}"


def test_unsatisfiable_range(agent, customer):
    disk = make_disk(customer)
    data = disk_image(5)
    snap = agent.replicate(disk, data)["snapshot"]
    response = agent.image(snap["id"], HTTP_RANGE=f"bytes={len(data)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(data)}"


def test_index_endpoint_serves_the_cacheable_index(agent, customer):
    disk = make_disk(customer)
    data = disk_image(6)
    snap = agent.replicate(disk, data)["snapshot"]
    response = agent.client.get(f"/api/v1/agent/snapshots/{snap['id']}/index/")
    assert response.status_code == 200
    assert response.content == b"".join(digest_of(c) for c in split(data))
    assert response["X-Index-Checksum"] == snap["index_checksum"]
    assert response["X-Chunk-Size"] == str(CHUNK)


def test_snapshot_list_filters(agent, customer):
    disk_a = make_disk(customer, key="a")
    disk_b = make_disk(customer, key="b")
    agent.replicate(disk_a, disk_image(7))
    agent.replicate(disk_b, disk_image(8))
    everything = agent.client.get("/api/v1/agent/snapshots/").json()
    assert everything["count"] == 2
    only_a = agent.client.get(f"/api/v1/agent/snapshots/?machine={disk_a.machine_id}").json()
    assert [s["disk"] for s in only_a["results"]] == ["a"]


def test_abort_closes_the_session(agent, customer):
    disk = make_disk(customer)
    session = agent.open(disk).json()
    url = f"/api/v1/agent/upload-sessions/{session['id']}/abort/"
    assert agent.client.post(url).status_code == 200
    assert UploadSession.objects.for_customer(customer).get().state == SessionState.ABORTED
    again = agent.client.post(url)
    assert again.status_code == 409
    assert "aborted" in again.json()["error"]["message"]
    assert agent.open(disk).status_code == 201  # a new session


def test_full_index_can_be_committed_raw_for_large_disks(agent, customer, settings):
    """A raw binary index (32 bytes a chunk, no base64) has its own, larger limit."""
    disk = make_disk(customer)
    data = disk_image(9)
    session = agent.open(disk).json()
    chunks = [c for c in split(data) if c.strip(b"\0")]
    agent.upload(session["id"], chunks)
    index = b"".join(digest_of(c) for c in split(data))
    url = f"/api/v1/agent/upload-sessions/{session['id']}/commit/"
    settings.STORE_MAX_INDEX_BYTES = len(index) - 1
    too_big = agent.client.generic(
        "POST", f"{url}?disk_size={len(data)}", index, "application/octet-stream"
    )
    assert too_big.status_code == 413
    settings.STORE_MAX_INDEX_BYTES = len(index)
    no_size = agent.client.generic("POST", url, index, "application/octet-stream")
    assert no_size.status_code == 400 and "disk_size" in no_size.json()["error"]["details"]
    response = agent.client.generic(
        "POST", f"{url}?disk_size={len(data)}", index, "application/octet-stream"
    )
    assert response.status_code == 201, response.content
    assert read_stream(agent.image(response.json()["id"])) == data
