"""Customer B's agent against customer A's data: nothing to see, nothing to borrow.

Dedup scope is one customer: B learns nothing about whether A stores a chunk, B's upload of
the same bytes is B's own copy in B's namespace, and B cannot commit A's digests.
"""

import hashlib
import os

import pytest

from storage.models import Chunk, CustomerStore, Snapshot, UploadSession

from .conftest import CHUNK, digest_of, make_disk, read_stream, split
from .error_support import SESSIONS, SNAPSHOTS, Unchanged, error_of


@pytest.fixture
def a_world(agent, customer):
    """A's disk, one committed snapshot, and an open session with one uploaded chunk."""
    disk = make_disk(customer, key="a-disk")
    data = os.urandom(3 * CHUNK)
    snapshot = agent.replicate(disk, data)["snapshot"]
    session = agent.open(disk).json()["id"]
    extra = os.urandom(CHUNK)
    assert agent.upload(session, [extra]).status_code == 200
    return {"disk": disk, "data": data, "snapshot": snapshot, "session": session, "extra": extra}


@pytest.fixture
def a_unchanged(customer, isolated_store):
    return Unchanged(customer, isolated_store)


SESSION_ACTIONS = [
    ("get", ""),
    ("post", "missing/"),
    ("post", "chunks/"),
    ("post", "commit/"),
    ("post", "abort/"),
]


@pytest.mark.parametrize(("method", "suffix"), SESSION_ACTIONS)
def test_b_cannot_touch_a_session(other_agent, a_world, a_unchanged, method, suffix):
    a_unchanged()
    url = f"{SESSIONS}{a_world['session']}/{suffix}"
    bodies = {
        "missing/": {"digests": [digest_of(a_world["extra"]).hex()]},
        "commit/": {"disk_size": 0, "index": ""},
    }
    if suffix == "chunks/":
        response = other_agent.upload(a_world["session"], [a_world["extra"]])
    elif method == "post":
        response = other_agent.post_json(url, bodies.get(suffix, {}))
    else:
        response = other_agent.client.get(url)
    error_of(response, 404)
    a_unchanged.check()


@pytest.mark.parametrize("suffix", ["", "index/", "image/"])
def test_b_cannot_fetch_a_snapshot(other_agent, a_world, suffix):
    response = other_agent.client.get(f"{SNAPSHOTS}{a_world['snapshot']['id']}/{suffix}")
    error_of(response, 404)


def test_b_lists_none_of_a_snapshots(other_agent, a_world):
    assert other_agent.client.get(SNAPSHOTS).json()["count"] == 0
    by_machine = other_agent.client.get(f"{SNAPSHOTS}?machine={a_world['disk'].machine_id}")
    assert by_machine.json()["count"] == 0
    by_disk = other_agent.client.get(f"{SNAPSHOTS}?disk={a_world['disk'].key}")
    assert by_disk.json()["count"] == 0


def test_b_cannot_open_a_session_on_a_machine(other_agent, other_customer, a_world, a_unchanged):
    b_job = other_agent.job_for(make_disk(other_customer, key="b-disk").machine)
    a_unchanged()
    disk = a_world["disk"]
    body = {"machine": disk.machine_id, "disk": disk.key, "job": b_job.pk}
    error = error_of(other_agent.post_json(SESSIONS, body), 400)
    assert error["details"]["machine"] == ["No such machine."]
    a_unchanged.check()


def test_b_cannot_upload_for_a_job(agent, other_agent, other_customer, a_world, a_unchanged):
    """A's job id in B's session open is "no such job", even for B's own disk."""
    a_job = agent.job_for(a_world["disk"].machine)
    b_disk = make_disk(other_customer, key="b-disk")
    a_unchanged()
    error = error_of(other_agent.open(b_disk, job=a_job.pk), 404)
    assert error["message"] == f"No job {a_job.pk} of this agent."
    a_unchanged.check()
    assert not UploadSession.objects.for_customer(other_customer).exists()


def test_dedup_never_crosses_customers(
    agent, other_agent, customer, other_customer, a_world, a_unchanged, isolated_store
):
    a_unchanged()
    a_chunks = [*list(split(a_world["data"])), a_world["extra"]]
    a_digests = [digest_of(c) for c in a_chunks]

    # B asks about A's chunks: all missing, whatever A stores.
    b_disk = make_disk(other_customer, key="b-disk")
    b_session = other_agent.open(b_disk).json()["id"]
    answer = other_agent.missing(b_session, a_digests)
    assert answer.json()["missing"] == [d.hex() for d in a_digests]

    # B commits an index of A's digests without uploading: refused, all listed as missing.
    response = other_agent.commit_full(b_session, a_world["data"])
    error = error_of(response, 400)
    assert error["details"]["missing"] == sorted(d.hex() for d in a_digests[:3])
    assert not Snapshot.objects.for_customer(other_customer).exists()

    # B uploads the same bytes: stored again, as B's own copy in B's namespace.
    first = split(a_world["data"])[0]
    result = other_agent.upload(b_session, [first]).json()
    assert result["stored"] == 1 and result["duplicates"] == 0
    a_ns = CustomerStore.objects.get(customer=customer).namespace
    b_ns = CustomerStore.objects.get(customer=other_customer).namespace
    assert a_ns != b_ns
    digest = hashlib.sha256(first).hexdigest()
    copies = sorted(p.relative_to(isolated_store).parts[0] for p in isolated_store.rglob(digest))
    assert copies == sorted([a_ns, b_ns])
    assert Chunk.objects.for_customer(other_customer).get().digest == digest

    a_unchanged.check()  # A's rows, sessions, snapshots and files are as they were
    assert read_stream(agent.image(a_world["snapshot"]["id"])) == a_world["data"]
    assert agent.missing(a_world["session"], a_digests).json()["missing"] == []


def test_b_delta_cannot_borrow_a_base_checksum(other_agent, other_customer, a_world):
    """A's index checksum means nothing in B's session (B has no base at all)."""
    b_disk = make_disk(other_customer, key="b-disk")
    b_session = other_agent.open(b_disk).json()["id"]
    response = other_agent.commit_delta(
        b_session, 3 * CHUNK, a_world["snapshot"]["index_checksum"], []
    )
    assert error_of(response, 400)["details"]["code"] == "no_base"
    assert UploadSession.objects.for_customer(other_customer).get().state == "open"
