"""Error paths of commit and of the snapshot endpoints (the upload ones are in
test_upload_errors.py): a clear JSON error, and nothing changed."""

import base64
import hashlib
import struct
import time

import pytest

from storage.models import IndexFile, SessionState, Snapshot, UploadSession

from .conftest import CHUNK, digest_of, make_disk, read_stream, split
from .error_support import SESSIONS, SNAPSHOTS, Unchanged, error_of, post, rand_chunk


@pytest.fixture
def unchanged(customer, isolated_store):
    return Unchanged(customer, isolated_store)


@pytest.fixture
def disk(customer):
    return make_disk(customer)


@pytest.fixture
def session(agent, disk):
    """An open first session (no base)."""
    return agent.open(disk).json()["id"]


@pytest.fixture
def based(agent, disk):
    """A first snapshot of 3 chunks, and an open second session on it."""
    data = rand_chunk(3 * CHUNK)
    snapshot = agent.replicate(disk, data)["snapshot"]
    return snapshot, agent.open(disk).json()["id"]


def commit(agent, session_id, body: dict):
    return agent.post_json(f"{SESSIONS}{session_id}/commit/", body)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def changes(*records: tuple[int, bytes]) -> str:
    return b64(b"".join(struct.pack(">Q32s", pos, digest) for pos, digest in records))


DIGEST = hashlib.sha256(b"x").digest()
UNKNOWN_ID = "5b0c6bd4-3e0e-4d7a-9a51-1f6c2b0f4e11"  # fixed: xdist workers must agree on ids


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"disk_size": 0, "index": "", "changes": ""}, "non_field_errors"),
        ({"disk_size": 0, "index": "", "base_checksum": "0" * 64}, "non_field_errors"),
        ({"disk_size": 0}, "non_field_errors"),
        ({"disk_size": CHUNK, "index": "!!not base64!!"}, "non_field_errors"),
        ({"disk_size": CHUNK, "index": b64(DIGEST)[:-2]}, "non_field_errors"),
        ({"disk_size": CHUNK, "index": b64(DIGEST + b"x")}, "index"),
        ({"disk_size": CHUNK, "base_checksum": "0" * 64, "changes": "%%%"}, "non_field_errors"),
        ({"disk_size": CHUNK, "base_checksum": "0" * 64, "changes": b64(b"x" * 41)}, "changes"),
        ({"disk_size": CHUNK, "changes": changes((0, DIGEST))}, "base_checksum"),
        ({"disk_size": CHUNK, "base_checksum": "abc", "changes": ""}, "base_checksum"),
        ({"disk_size": -1, "index": ""}, "disk_size"),
        ({"disk_size": "big", "index": ""}, "disk_size"),
        ({"index": ""}, "disk_size"),
    ],
    ids=[
        "both",
        "index-and-base",
        "neither",
        "index-bad-base64",
        "index-bad-padding",
        "index-not-multiple-of-32",
        "changes-bad-base64",
        "changes-not-multiple-of-40",
        "changes-without-base",
        "short-base-checksum",
        "negative-disk-size",
        "disk-size-not-a-number",
        "no-disk-size",
    ],
)
def test_malformed_commit(agent, based, unchanged, body, field):
    _, session_id = based
    unchanged()
    error = error_of(commit(agent, session_id, body), 400)
    assert field in error["details"], error
    unchanged.check()


def test_malformed_commit_json(agent, session, unchanged):
    unchanged()
    error_of(post(agent, f"{SESSIONS}{session}/commit/", b"{"), 400, "not valid JSON")
    error_of(post(agent, f"{SESSIONS}{session}/commit/", b"[]"), 400, "JSON object")
    unchanged.check()


def test_wrong_base_checksum_is_base_mismatch(agent, based, unchanged):
    _snapshot, session_id = based
    unchanged()
    body = {"disk_size": 3 * CHUNK, "base_checksum": "0" * 64, "changes": changes((1, DIGEST))}
    error = error_of(commit(agent, session_id, body), 400, "does not match the base")
    assert error["details"] == {"code": "base_mismatch"}
    unchanged.check()


def test_delta_without_a_base(agent, session, unchanged):
    unchanged()
    body = {"disk_size": CHUNK, "base_checksum": "0" * 64, "changes": changes((0, DIGEST))}
    error = error_of(commit(agent, session, body), 400, "no base snapshot")
    assert error["details"]["code"] == "no_base"
    unchanged.check()


def test_missing_chunks_then_upload_and_commit_again(agent, customer, disk, unchanged):
    data = rand_chunk(2 * CHUNK)
    session_id = agent.open(disk).json()["id"]
    agent.upload(session_id, split(data)[:1])  # the second chunk never arrives
    unchanged()
    error = error_of(agent.commit_full(session_id, data), 400, "not in the store")
    assert error["details"] == {
        "code": "missing_chunks",
        "missing": [hashlib.sha256(split(data)[1]).hexdigest()],
    }
    unchanged.check()  # no snapshot, no index file (row or object), session still open
    assert UploadSession.objects.for_customer(customer).get().state == SessionState.OPEN

    assert agent.upload(session_id, split(data)[1:]).status_code == 200
    response = agent.commit_full(session_id, data)
    assert response.status_code == 201, response.content
    assert read_stream(agent.image(response.json()["id"])) == data


def test_delta_referencing_a_missing_chunk(agent, based, unchanged):
    snapshot, session_id = based
    unchanged()
    body = {
        "disk_size": 3 * CHUNK,
        "base_checksum": snapshot["index_checksum"],
        "changes": changes((1, DIGEST)),
    }
    error = error_of(commit(agent, session_id, body), 400)
    assert error["details"]["missing"] == [DIGEST.hex()]
    unchanged.check()


def index_body(disk_size: int, entries: int) -> dict:
    return {"disk_size": disk_size, "index": b64(bytes(32) * entries)}


@pytest.mark.parametrize(
    "body",
    [
        index_body(3 * CHUNK, 2),
        index_body(3 * CHUNK, 4),
        index_body(0, 1),
        index_body(2**62, 1),
    ],
    ids=["too-few-entries", "too-many-entries", "entries-for-empty-disk", "huge-disk"],
)
def test_index_entry_count_must_match_the_disk_size(agent, session, unchanged, body):
    unchanged()
    error = error_of(commit(agent, session, body), 400)
    assert error["details"]["code"] == "bad_index"
    unchanged.check()


ZERO = bytes(32)


@pytest.mark.parametrize(
    ("disk_size", "records", "message"),
    [
        (3 * CHUNK, [(2, ZERO), (1, ZERO)], "out of order"),
        (3 * CHUNK, [(1, ZERO), (1, ZERO)], "out of order"),
        (3 * CHUNK, [(3, ZERO)], "outside the 3 entries"),
        (3 * CHUNK, [(2**64 - 1, ZERO)], "outside"),
        (2 * CHUNK, [(2, ZERO)], "outside the 2 entries"),
        (4 * CHUNK, [], "every new position"),
        (4 * CHUNK, [(1, ZERO)], "every new position"),
        (2**62, [(3, ZERO)], "every new position"),
    ],
    ids=[
        "descending",
        "duplicate",
        "beyond-disk",
        "max-position",
        "beyond-shrunk-disk",
        "grown-unlisted",
        "grown-other-listed",
        "huge-growth",
    ],
)
def test_delta_positions_must_be_ordered_and_inside(
    agent, based, unchanged, disk_size, records, message
):
    snapshot, session_id = based
    unchanged()
    body = {
        "disk_size": disk_size,
        "base_checksum": snapshot["index_checksum"],
        "changes": changes(*records),
    }
    started = time.monotonic()
    error = error_of(commit(agent, session_id, body), 400, message)
    assert time.monotonic() - started < 2  # a huge disk_size allocates nothing
    assert error["details"]["code"] == "bad_index"
    unchanged.check()


@pytest.mark.parametrize("close", ["commit", "abort"])
def test_commit_on_a_closed_session_is_409(agent, customer, disk, close, unchanged):
    data = rand_chunk(CHUNK)
    session_id = agent.open(disk).json()["id"]
    agent.upload(session_id, [data])
    if close == "commit":
        assert agent.commit_full(session_id, data).status_code == 201
    else:
        assert agent.client.post(f"{SESSIONS}{session_id}/abort/").status_code == 200
    unchanged()
    error = error_of(agent.commit_full(session_id, data), 409, "open a new one")
    assert error["details"]["code"] == "session_closed"
    error_of(agent.client.post(f"{SESSIONS}{session_id}/abort/"), 409)
    unchanged.check()
    assert Snapshot.objects.for_customer(customer).count() == (close == "commit")


def test_commit_over_the_size_limit_is_413(agent, session, settings, unchanged):
    settings.STORE_MAX_UPLOAD_BYTES = 100
    unchanged()
    error_of(commit(agent, session, index_body(4 * CHUNK, 4)), 413)
    unchanged.check()


# -- snapshot and session endpoints ------------------------------------------------------


@pytest.mark.parametrize("lookup", [UNKNOWN_ID, "not-a-uuid", "1"])
@pytest.mark.parametrize("suffix", ["", "index/", "image/"])
def test_unknown_or_malformed_snapshot_id_is_404(agent, based, lookup, suffix):
    error_of(agent.client.get(f"{SNAPSHOTS}{lookup}/{suffix}"), 404)


@pytest.mark.parametrize("lookup", [UNKNOWN_ID, "not-a-uuid"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("post", "missing/"),
        ("post", "chunks/"),
        ("post", "commit/"),
        ("post", "abort/"),
    ],
)
def test_unknown_or_malformed_session_id_is_404(agent, based, unchanged, lookup, method, suffix):
    unchanged()
    error_of(getattr(agent.client, method)(f"{SESSIONS}{lookup}/{suffix}"), 404)
    unchanged.check()


@pytest.mark.parametrize("header", ["bytes=196608-", "bytes=500000-600000", "bytes=-0"])
def test_unsatisfiable_range_is_416_with_the_error_body(agent, based, header):
    snapshot, _ = based
    response = agent.image(snapshot["id"], HTTP_RANGE=header)
    error_of(response, 416, "outside the image of 196608 bytes")
    assert response["Content-Range"] == "bytes */196608"


@pytest.mark.parametrize("query", ["machine=abc", "machine=-1", f"machine={10**30}"])
def test_snapshot_list_with_a_bad_machine_filter(agent, based, query):
    error = error_of(agent.client.get(f"{SNAPSHOTS}?{query}"), 400)
    assert "machine" in error["details"]


def test_nothing_left_behind_by_failed_commits(agent, customer, based, isolated_store):
    """Rejected commits leave no index object in the store (not even for the GC)."""
    _snapshot, session_id = based
    for body in (
        {"disk_size": 3 * CHUNK, "base_checksum": "0" * 64, "changes": ""},
        {"disk_size": 3 * CHUNK, "index": b64(DIGEST * 3)},
    ):
        assert commit(agent, session_id, body).status_code == 400
    objects = list(isolated_store.rglob("*.idx"))
    assert len(objects) == IndexFile.objects.for_customer(customer).count() == 1
    digests = [digest_of(c) for c in split(rand_chunk(CHUNK))]
    assert agent.missing(session_id, digests).status_code == 200  # still open and usable
