"""Usage accounting: logical vs stored bytes, dedup across machines, attribution to the
machine that uploaded a chunk first — and the pages that show it."""

import random

import pytest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from storage.models import Chunk, IndexFile, Snapshot
from storage.selectors import customer_usage, machine_usage, machine_usage_table

from .conftest import CHUNK, make_disk


def random_image(seed: int, chunks: int = 6, zero_at: int | None = 2) -> bytes:
    """Incompressible chunks (so stored ≈ logical before dedup), one of them zeros."""
    rnd = random.Random(seed)
    parts = [rnd.randbytes(CHUNK) for _ in range(chunks)]
    if zero_at is not None:
        parts[zero_at] = bytes(CHUNK)
    return b"".join(parts)


@pytest.fixture
def shared(agent, customer):
    """Two machines replicating identical data (a golden image): the second adds nothing."""
    data = random_image(1)
    first, second = make_disk(customer), make_disk(customer)
    a = agent.replicate(first, data)
    b = agent.replicate(second, data)
    return {"data": data, "first": first.machine, "second": second.machine, "a": a, "b": b}


def test_empty_store(customer):
    assert customer_usage(customer) == {
        "logical_bytes": 0,
        "stored_bytes": 0,
        "chunk_count": 0,
        "snapshot_count": 0,
        "index_bytes": 0,
        "dedup_ratio": None,
    }


def test_two_machines_sharing_chunks(shared, customer):
    assert shared["b"]["uploaded"] == 0  # dedup: the store already had every chunk
    chunks = Chunk.objects.for_customer(customer)
    stored = sum(c.stored_size for c in chunks)
    logical_one = len(shared["data"]) - CHUNK  # the zero chunk is not data to read
    usage = customer_usage(customer)
    assert usage["snapshot_count"] == 2
    assert usage["chunk_count"] == 5 == chunks.count()
    assert usage["logical_bytes"] == 2 * logical_one
    assert usage["stored_bytes"] == stored
    assert usage["dedup_ratio"] == pytest.approx(2 * logical_one / stored)
    assert usage["dedup_ratio"] > 1.9  # random data: the gain is all deduplication
    indexes = IndexFile.objects.for_customer(customer)
    assert usage["index_bytes"] == sum(i.stored_bytes for i in indexes) > 0

    first = machine_usage(customer, shared["first"])
    assert first["logical_bytes"] == logical_one
    assert first["stored_bytes"] == stored  # it uploaded every chunk first
    assert first["chunk_count"] == 5 and first["snapshot_count"] == 1
    assert first["dedup_ratio"] == pytest.approx(logical_one / stored)

    second = machine_usage(customer, shared["second"])
    assert second["logical_bytes"] == logical_one
    assert second["stored_bytes"] == 0 and second["chunk_count"] == 0
    assert second["dedup_ratio"] is None
    assert second["index_bytes"] > 0


def test_incremental_snapshot_adds_only_its_changed_chunk(agent, customer):
    disk = make_disk(customer)
    data = random_image(2)
    agent.replicate(disk, data)
    before = customer_usage(customer)
    changed = data[:CHUNK] + random.Random(99).randbytes(CHUNK) + data[2 * CHUNK :]
    result = agent.replicate(disk, changed)
    assert result["uploaded"] == 1
    after = customer_usage(customer)
    new = Snapshot.objects.for_customer(customer).get(pk=result["snapshot"]["id"])
    assert after["stored_bytes"] - before["stored_bytes"] == new.new_stored_bytes > 0
    assert after["logical_bytes"] == before["logical_bytes"] + new.logical_bytes
    assert after["dedup_ratio"] > before["dedup_ratio"]
    machine = machine_usage(customer, disk.machine)
    assert machine["stored_bytes"] == after["stored_bytes"]
    assert machine["snapshot_count"] == 2


def test_chunks_being_swept_are_not_counted(shared, customer):
    before = customer_usage(customer)
    victim = Chunk.objects.for_customer(customer).first()
    Chunk.objects.for_customer(customer).filter(pk=victim.pk).update(sweeping=True)
    after = customer_usage(customer)
    assert after["stored_bytes"] == before["stored_bytes"] - victim.stored_size
    assert after["chunk_count"] == before["chunk_count"] - 1
    assert after["logical_bytes"] == before["logical_bytes"]


def test_dedup_scope_is_one_customer(shared, customer, other_customer, other_agent):
    before = customer_usage(customer)
    result = other_agent.replicate(make_disk(other_customer), shared["data"])
    assert result["uploaded"] == 5  # the other customer's store holds its own copy
    assert customer_usage(customer) == before
    theirs = customer_usage(other_customer)
    assert theirs["snapshot_count"] == 1
    assert theirs["stored_bytes"] == before["stored_bytes"]


def test_machine_usage_table_is_one_query(agent, customer, django_assert_num_queries):
    disks = [make_disk(customer) for _ in range(4)]
    for i, disk in enumerate(disks[:3]):
        agent.replicate(disk, random_image(10 + i, chunks=2 + i, zero_at=None))
    agent.replicate(disks[0], random_image(10, chunks=2, zero_at=None))  # nothing new
    with django_assert_num_queries(1):
        rows = machine_usage_table(customer)
        figures = [(m.name, m.usage["stored_bytes"], m.usage["snapshot_count"]) for m in rows]
        groups = [m.group.name for m in rows]
    assert len(groups) == 3  # the machine without snapshots is left out
    assert [name for name, _, _ in figures] == [d.machine.name for d in reversed(disks[:3])]
    assert [count for _, _, count in figures] == [1, 1, 2]
    for machine in rows:
        assert machine.usage == machine_usage(customer, machine)
        assert machine.last_snapshot_at is not None
    assert sum(stored for _, stored, _ in figures) == customer_usage(customer)["stored_bytes"]


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ["viewer", "operator", "admin"], indirect=True)
def test_usage_page(role_client, shared, customer):
    response = role_client.get(reverse("storage:usage", args=[customer.slug]))
    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["usage"] == customer_usage(customer)
    assert body.count('data-testid="machine-usage-row"') == 2
    for machine in (shared["first"], shared["second"]):
        assert reverse("storage:machine_snapshots", args=[customer.slug, machine.pk]) in body
    ratio = customer_usage(customer)["dedup_ratio"]
    assert f"{ratio:.1f}×" in body


def test_usage_page_query_count_does_not_grow_with_machines(
    viewer_client, agent, customer, django_assert_max_num_queries
):
    for i in range(6):
        agent.replicate(make_disk(customer), random_image(30 + i, chunks=2, zero_at=None))
    with django_assert_max_num_queries(9):
        response = viewer_client.get(reverse("storage:usage", args=[customer.slug]))
    assert response.content.decode().count('data-testid="machine-usage-row"') == 6


def test_usage_page_empty_state(viewer_client, customer):
    body = viewer_client.get(reverse("storage:usage", args=[customer.slug])).content.decode()
    assert 'data-testid="usage-empty"' in body
    assert 'data-testid="storage-ratio">—<' in body


def test_usage_page_is_404_for_strangers(stranger_client, customer):
    assert stranger_client.get(reverse("storage:usage", args=[customer.slug])).status_code == 404


def test_dashboard_shows_storage_and_keeps_the_other_cards(viewer_client, shared, customer):
    response = viewer_client.get(reverse("acura_portal:dashboard", args=[customer.slug]))
    body = response.content.decode()
    usage = customer_usage(customer)
    assert response.context["storage"] == usage
    assert 'data-testid="storage-usage"' in body
    assert "Snapshot storage usage appears here once" not in body
    assert f'data-testid="storage-snapshots">{usage["snapshot_count"]}<' in body
    stored, logical = filesizeformat(usage["stored_bytes"]), filesizeformat(usage["logical_bytes"])
    assert stored == "320.1\xa0KB" and logical == "640.0\xa0KB"  # 5 and 2 × 5 chunks of 64 KiB
    assert f'data-testid="storage-stored">{stored}<' in body
    assert f'data-testid="storage-logical">{logical}<' in body
    assert f'data-testid="storage-ratio">{usage["dedup_ratio"]:.1f}×<' in body
    assert "Machines" in body and "Machine groups" in body  # the existing cards stay


def test_nav_links_the_usage_page(viewer_client, customer):
    body = viewer_client.get(reverse("acura_portal:dashboard", args=[customer.slug])).content
    assert reverse("storage:usage", args=[customer.slug]).encode() in body
    assert b"Snapshots &amp; storage <small>soon</small>" not in body
