"""A snapshot records the point in time it is of: its consistency (quiesced or not) and the
source's change id (VMware CBT), given when the upload session opens; the next session of
the disk answers that change id as ``base_change_id``."""

import pytest

from storage.models import Snapshot, UploadSession

from .conftest import make_disk, split

DATA = b"guest data" * 30000


def _replicate(agent, disk, data, **extra):
    session = agent.open(disk, **extra)
    assert session.status_code == 201, session.content
    body = session.json()
    chunks = [c for c in split(data) if c.strip(b"\0")]
    if chunks:
        assert agent.upload(body["id"], chunks).status_code == 200
    committed = agent.commit_full(body["id"], data)
    assert committed.status_code == 201, committed.content
    return body, committed.json()


def test_consistency_and_change_id_reach_the_snapshot_and_the_next_session(agent, customer):
    disk = make_disk(customer)
    first_session, first = _replicate(
        agent, disk, DATA, consistency="application", change_id="52 de 7c/11"
    )
    assert first_session["base_change_id"] is None
    assert first["consistency"] == "application" and first["change_id"] == "52 de 7c/11"
    listed = agent.client.get("/api/v1/agent/snapshots/", {"machine": disk.machine_id}).json()
    assert [(s["consistency"], s["change_id"]) for s in listed["results"]] == [
        ("application", "52 de 7c/11")
    ]
    second_session, second = _replicate(agent, disk, DATA, consistency="crash", change_id="52/12")
    assert second_session["base_snapshot"] == first["id"]
    assert second_session["base_change_id"] == "52 de 7c/11"
    assert second["consistency"] == "crash" and second["change_id"] == "52/12"


def test_without_them_the_snapshot_says_nothing(agent, customer):
    disk = make_disk(customer)
    _, first = _replicate(agent, disk, DATA)
    assert first["consistency"] == "" and first["change_id"] == ""
    session = agent.open(disk).json()
    assert session["base_snapshot"] == first["id"] and session["base_change_id"] is None


def test_a_resumed_session_takes_the_new_point_in_time(agent, customer):
    """A crashed VMware job's snapshot is gone; the next job reads a new one and says so."""
    disk = make_disk(customer)
    opened = agent.open(
        disk, consistency="crash", change_id="old/1", taken_at="2026-12-01T10:00:00Z"
    ).json()
    again = agent.open(
        disk, consistency="application", change_id="new/2", taken_at="2026-12-01T11:00:00Z"
    )
    assert again.status_code == 200 and again.json()["id"] == opened["id"]
    assert agent.upload(opened["id"], split(DATA)).status_code == 200
    snapshot = agent.commit_full(opened["id"], DATA).json()
    assert snapshot["consistency"] == "application" and snapshot["change_id"] == "new/2"
    assert snapshot["created_at"].startswith("2026-12-01T11:00:00")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"consistency": "quiesced"}, "consistency"),
        ({"consistency": 3}, "consistency"),
        ({"change_id": "x" * 256}, "change_id"),
        ({"change_id": ["a"]}, "change_id"),
    ],
)
def test_bad_values_are_400_and_open_nothing(agent, customer, extra, field):
    disk = make_disk(customer)
    response = agent.open(disk, **extra)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not UploadSession.objects.for_customer(customer).exists()
    assert not Snapshot.objects.for_customer(customer).exists()
