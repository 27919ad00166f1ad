"""The customer's snapshot pages: a machine's points in time, raw image downloads and
protection from pruning — per role, across customers, bit-exact."""

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from storage.models import Snapshot, SnapshotState
from tests.factories import DiskFactory, MachineFactory

from .conftest import CHUNK, read_stream


def disk_image(seed: int, chunks: int = 6) -> bytes:
    rnd = random.Random(seed)
    parts = [rnd.randbytes(CHUNK) for _ in range(chunks)]
    parts[1] = bytes(CHUNK)  # a zero chunk: never stored, restored as zeros
    return b"".join(parts)[:-123]  # a short last chunk


@pytest.fixture
def disk(machine, customer):
    return DiskFactory(machine=machine, customer=customer, key="scsi0:0", label="Hard disk 1")


@pytest.fixture
def replicated(agent, disk, customer):
    """Two points in time of ``disk``: returns (snapshot, its data, the older snapshot)."""
    first = agent.replicate(disk, disk_image(1))["snapshot"]
    data = disk_image(2)
    second = agent.replicate(disk, data)["snapshot"]
    snapshots = Snapshot.objects.for_customer(customer)
    return snapshots.get(pk=second["id"]), data, snapshots.get(pk=first["id"])


def list_url(slug, machine):
    return reverse("storage:machine_snapshots", args=[slug, machine.pk])


def image_url(slug, snapshot):
    return reverse("storage:snapshot_image", args=[slug, snapshot.pk])


def protect_url(slug, snapshot):
    return reverse("storage:snapshot_protect", args=[slug, snapshot.pk])


def last_message(response) -> str:
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


# --- the list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role_client", "can_operate"),
    [("viewer", False), ("operator", True), ("admin", True)],
    indirect=["role_client"],
)
def test_every_role_sees_the_points_in_time(
    role_client, can_operate, replicated, machine, customer
):
    snapshot, _data, older = replicated
    response = role_client.get(list_url(customer.slug, machine))
    assert response.status_code == 200
    body = response.content.decode()
    rows = re.findall(r'data-snapshot="([0-9a-f-]+)"', body)
    assert rows == [str(snapshot.pk), str(older.pk)]  # newest first
    assert "Complete" in body and "Incremental" in body and "Full" in body
    assert reverse("storage:machine_prune_preview", args=[customer.slug, machine.pk]) in body
    assert (image_url(customer.slug, snapshot) in body) is can_operate
    assert (protect_url(customer.slug, snapshot) in body) is can_operate


def test_list_shows_sizes_state_and_the_machines_usage(
    viewer_client, replicated, machine, customer
):
    snapshot, _data, older = replicated
    Snapshot.objects.for_customer(customer).filter(pk=older.pk).update(
        state=SnapshotState.FAILED, protected=True
    )
    response = viewer_client.get(list_url(customer.slug, machine))
    body = response.content.decode()
    assert "Failed verification" in body and 'data-testid="protected"' in body
    assert "1 protected" in body and "1 failed verification" in body
    assert "2 points in time" in body
    usage = response.context["usage"]
    assert usage["snapshot_count"] == 2
    assert usage["logical_bytes"] == snapshot.logical_bytes + older.logical_bytes
    assert usage["stored_bytes"] == snapshot.new_stored_bytes + older.new_stored_bytes > 0
    assert snapshot.index.get_kind_display() in body


def test_times_are_shown_in_the_customers_zone(viewer_client, replicated, machine, customer):
    snapshot, _data, _older = replicated
    customer.time_zone = "Asia/Tokyo"
    customer.save()
    when = datetime(2025, 3, 1, 22, 30, 5, tzinfo=UTC)
    Snapshot.objects.for_customer(customer).filter(pk=snapshot.pk).update(created_at=when)
    body = viewer_client.get(list_url(customer.slug, machine)).content.decode()
    assert "2025-03-02 07:30:05 JST" in body


def test_empty_state(viewer_client, machine, customer):
    response = viewer_client.get(list_url(customer.slug, machine))
    assert response.status_code == 200
    assert 'data-testid="snapshots-empty"' in response.content.decode()


def test_pagination_and_bounded_queries(
    viewer_client, replicated, machine, customer, django_assert_max_num_queries
):
    snapshot, _data, _older = replicated
    other_disk = DiskFactory(machine=machine, customer=customer, key="scsi0:1")
    start = snapshot.created_at
    copies = []
    for i in range(60):
        row = Snapshot.objects.for_customer(customer).get(pk=snapshot.pk)
        row.id = uuid.uuid4()
        row.disk = other_disk if i % 2 else snapshot.disk
        row.created_at = start - timedelta(hours=i + 1)
        copies.append(row)
    Snapshot.objects.bulk_create(copies)
    url = list_url(customer.slug, machine)
    with django_assert_max_num_queries(10):
        first = viewer_client.get(url)
    assert len(re.findall(r'data-testid="snapshot-row"', first.content.decode())) == 50
    assert "Page 1 of 2 · 62 snapshots" in first.content.decode()
    second = viewer_client.get(url, {"page": 2})
    assert len(re.findall(r'data-testid="snapshot-row"', second.content.decode())) == 12
    # Disk headings carry the disk's totals over every page.
    assert "32 points in time" in first.content.decode()  # scsi0:0: 2 replicated + 30
    assert "30 points in time" in first.content.decode()  # scsi0:1, split over both pages
    with django_assert_max_num_queries(10):
        viewer_client.get(url, {"page": 2})


# --- download ------------------------------------------------------------------------------


def test_viewer_cannot_download(viewer_client, replicated, customer):
    snapshot, _data, _older = replicated
    assert viewer_client.get(image_url(customer.slug, snapshot)).status_code == 403


@pytest.mark.parametrize("role_client", ["operator", "admin"], indirect=True)
def test_download_is_bit_exact(role_client, replicated, customer, machine):
    snapshot, data, _older = replicated
    response = role_client.get(image_url(customer.slug, snapshot))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert response["Accept-Ranges"] == "bytes"
    assert read_stream(response) == data
    local = snapshot.created_at.astimezone(ZoneInfo(customer.time_zone))  # Europe/Berlin
    stamp = local.strftime("%Y%m%dT%H%M%S")
    expected = f'attachment; filename="{machine.name}-scsi0_0-{stamp}.raw"'
    assert response["Content-Disposition"] == expected


def test_download_filename_uses_the_customers_zone(operator_client, replicated, customer):
    snapshot, _data, _older = replicated
    customer.time_zone = "America/New_York"
    customer.save()
    when = datetime(2025, 7, 4, 3, 0, 0, tzinfo=UTC)
    Snapshot.objects.for_customer(customer).filter(pk=snapshot.pk).update(created_at=when)
    response = operator_client.get(image_url(customer.slug, snapshot))
    assert "-20250703T230000.raw" in response["Content-Disposition"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 10), (f"bytes={CHUNK - 5}-{CHUNK + 20}", CHUNK - 5, CHUNK + 21)],
)
def test_download_supports_range(operator_client, replicated, customer, header, start, end):
    snapshot, data, _older = replicated
    response = operator_client.get(image_url(customer.slug, snapshot), HTTP_RANGE=header)
    assert response.status_code == 206
    assert read_stream(response) == data[start:end]
    assert response["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}"


def test_download_of_an_unsatisfiable_range(operator_client, replicated, customer):
    snapshot, data, _older = replicated
    url = image_url(customer.slug, snapshot)
    response = operator_client.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert response.status_code == 416


def test_older_point_in_time_downloads_its_own_bytes(operator_client, replicated, customer):
    _snapshot, _data, older = replicated
    response = operator_client.get(image_url(customer.slug, older))
    assert read_stream(response) == disk_image(1)


# --- protect -------------------------------------------------------------------------------


def test_viewer_cannot_protect(viewer_client, replicated, customer):
    snapshot, _data, _older = replicated
    response = viewer_client.post(protect_url(customer.slug, snapshot), {"protected": "1"})
    assert response.status_code == 403
    snapshot.refresh_from_db()
    assert snapshot.protected is False


@pytest.mark.parametrize("role_client", ["operator", "admin"], indirect=True)
def test_protect_and_release(role_client, replicated, customer, machine):
    snapshot, _data, _older = replicated
    url = protect_url(customer.slug, snapshot)
    response = role_client.post(url, {"protected": "1"})
    assert response.status_code == 302
    assert response["Location"] == list_url(customer.slug, machine)
    assert "is now protected: pruning never removes it" in last_message(response)
    snapshot.refresh_from_db()
    assert snapshot.protected is True
    again = role_client.post(url, {"protected": "1"})
    assert "was already protected" in last_message(again)
    released = role_client.post(url, {"protected": "0"})
    assert "no longer protected" in last_message(released)
    snapshot.refresh_from_db()
    assert snapshot.protected is False


def test_protect_goes_back_to_a_local_next_only(operator_client, replicated, customer, machine):
    snapshot, _data, _older = replicated
    url = protect_url(customer.slug, snapshot)
    page2 = list_url(customer.slug, machine) + "?page=2"
    response = operator_client.post(url, {"protected": "1", "next": page2})
    assert response["Location"] == page2
    response = operator_client.post(url, {"protected": "0", "next": "https://evil.example/"})
    assert response["Location"] == list_url(customer.slug, machine)


@pytest.mark.parametrize("value", ["", "yes", "2", "true"])
def test_protect_with_a_bad_value_changes_nothing(operator_client, replicated, customer, value):
    snapshot, _data, _older = replicated
    response = operator_client.post(protect_url(customer.slug, snapshot), {"protected": value})
    assert response.status_code == 302
    assert "Choose protected=1" in last_message(response)
    snapshot.refresh_from_db()
    assert snapshot.protected is False


def test_protect_is_post_only(operator_client, replicated, customer):
    snapshot, _data, _older = replicated
    assert operator_client.get(protect_url(customer.slug, snapshot)).status_code == 405


def test_the_list_toggles_protection_in_place(operator_client, replicated, customer, machine):
    snapshot, _data, _older = replicated
    body = operator_client.get(list_url(customer.slug, machine)).content.decode()
    assert ">Protect</button>" in body and ">Unprotect</button>" not in body
    operator_client.post(protect_url(customer.slug, snapshot), {"protected": "1"})
    body = operator_client.get(list_url(customer.slug, machine)).content.decode()
    assert ">Unprotect</button>" in body


# --- other customers -----------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["acme", "globex"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_stranger_gets_404_everywhere(stranger_client, replicated, machine, slug, method):
    snapshot, _data, _older = replicated
    for url in [list_url(slug, machine), image_url(slug, snapshot), protect_url(slug, snapshot)]:
        response = getattr(stranger_client, method)(url, {"protected": "1"})
        assert response.status_code == 404, f"{method.upper()} {url}"
    snapshot.refresh_from_db()
    assert snapshot.protected is False


def test_another_customers_snapshot_in_an_own_machine_url_is_404(
    admin_client_, other_agent, other_customer, customer
):
    theirs = MachineFactory(customer=other_customer)
    disk = DiskFactory(machine=theirs, customer=other_customer)
    snap = other_agent.replicate(disk, disk_image(9))["snapshot"]
    snapshot = Snapshot.objects.for_customer(other_customer).get(pk=snap["id"])
    assert admin_client_.get(image_url(customer.slug, snapshot)).status_code == 404
    assert admin_client_.get(list_url(customer.slug, theirs)).status_code == 404
    response = admin_client_.post(protect_url(customer.slug, snapshot), {"protected": "1"})
    assert response.status_code == 404


def test_anonymous_is_sent_to_login(client, replicated, customer):
    snapshot, _data, _older = replicated
    response = client.get(image_url(customer.slug, snapshot))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- the machine page links here -----------------------------------------------------------


def test_machine_page_shows_snapshot_count_and_usage(viewer_client, replicated, machine, customer):
    body = viewer_client.get(
        reverse("protection:machine_detail", args=[customer.slug, machine.pk])
    ).content.decode()
    assert list_url(customer.slug, machine) in body
    assert "All 2 snapshots" in body
    assert 'data-testid="machine-storage"' in body and 'data-testid="usage-stored"' in body


def test_machine_page_without_snapshots(viewer_client, machine, customer):
    body = viewer_client.get(
        reverse("protection:machine_detail", args=[customer.slug, machine.pk])
    ).content.decode()
    assert 'data-testid="machine-storage-empty"' in body
    assert list_url(customer.slug, machine) in body
