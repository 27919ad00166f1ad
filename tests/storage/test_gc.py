"""Garbage collection: what it frees, what it keeps, crash recovery, the command."""

import io
import json
import os
import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage.models import Chunk, IndexFile, MaintenanceRun, Snapshot
from storage.services.context import customer_store
from storage.services.gc import CustomerGc, collect_garbage

from .conftest import CHUNK, make_disk, read_stream, split


def image(seed: int, chunks: int = 4) -> bytes:
    rnd = random.Random(seed)
    return b"".join(rnd.randbytes(CHUNK) for _ in range(chunks))


def test_frees_only_what_no_snapshot_references(agent, customer):
    disk = make_disk(customer)
    first = image(1, 8)
    second = first[: 7 * CHUNK] + image(2, 1)  # shares seven chunks with the first
    snap1 = agent.replicate(disk, first)["snapshot"]
    snap2 = agent.replicate(disk, second)["snapshot"]
    assert Chunk.objects.for_customer(customer).count() == 9
    Snapshot.objects.for_customer(customer).filter(pk=snap1["id"]).delete()

    stats = CustomerGc(customer, grace=timedelta(0)).run()
    assert stats.swept_chunks == 1
    assert stats.freed_bytes > 0
    assert Chunk.objects.for_customer(customer).count() == 8
    assert read_stream(agent.image(snap2["id"])) == second
    # The pruned snapshot's index was the full base of the second's delta: it stays
    # while the delta needs it.
    assert IndexFile.objects.for_customer(customer).count() == 2


def test_grace_period_keeps_young_garbage(agent, customer):
    disk = make_disk(customer)
    session = agent.open(disk).json()
    agent.upload(session["id"], split(image(3)))  # uploaded, never committed
    agent.client.post(f"/api/v1/agent/upload-sessions/{session['id']}/abort/")
    assert CustomerGc(customer, grace=timedelta(hours=1)).run().swept_chunks == 0
    assert CustomerGc(customer, grace=timedelta(0)).run().swept_chunks == 4


def test_open_session_holds_back_the_sweep(agent, customer):
    disk = make_disk(customer)
    old = agent.replicate(disk, image(4))["snapshot"]
    other = make_disk(customer, key="other")
    session = agent.open(other).json()  # opened before the garbage below exists
    Snapshot.objects.for_customer(customer).filter(pk=old["id"]).delete()
    # Everything unreferenced is older than the grace of 0, but not older than the open
    # session: the sweep must wait for it.
    from storage.models import UploadSession

    UploadSession.objects.for_customer(customer).filter(pk=session["id"]).update(
        started_at=Chunk.objects.for_customer(customer).earliest("created_at").created_at
    )
    assert CustomerGc(customer, grace=timedelta(0)).run().swept_chunks == 0


def test_unused_index_chains_and_orphans_are_removed(agent, customer):
    disk = make_disk(customer)
    data = image(5)
    snaps = [agent.replicate(disk, data[: (i + 2) * CHUNK])["snapshot"] for i in range(3)]
    store = customer_store(customer)
    store.backend.put_object(store.namespace, "indexes/orphan-from-a-crash.idx", b"x")
    store.backend.put_chunk(store.namespace, "ab" * 32, b"orphan blob")
    old = os.path.getmtime(store.backend.root) - 3600
    for path in store.backend.root.rglob("*orphan*"):
        os.utime(path, (old, old))
    os.utime(
        store.backend.root / store.namespace / "chunks" / "ab" / "ab" / ("ab" * 32), (old, old)
    )
    Snapshot.objects.for_customer(customer).delete()
    stats = CustomerGc(customer, grace=timedelta(0)).run()
    assert stats.index_files_deleted == 3
    assert stats.orphan_objects_deleted == 1
    assert stats.orphan_chunks_deleted == 1
    assert not IndexFile.objects.for_customer(customer).exists()
    assert list(store.backend.iter_objects(store.namespace, "indexes/")) == []
    assert list(store.backend.iter_chunks(store.namespace)) == []
    assert len(snaps) == 3


def test_a_crash_after_claiming_is_completed_by_the_next_run(agent, customer):
    disk = make_disk(customer)
    data = image(6)
    snap = agent.replicate(disk, data)["snapshot"]
    Snapshot.objects.for_customer(customer).filter(pk=snap["id"]).delete()
    crashed = CustomerGc(customer, grace=timedelta(0))
    crashed.compute_cutoff()
    crashed.mark()
    crashed.claim()  # ... and the worker dies here
    assert Chunk.objects.for_customer(customer).filter(sweeping=True).count() == 4
    # Meanwhile claimed chunks count as missing, and an upload revives one.
    session = agent.open(disk).json()
    digests = [__import__("hashlib").sha256(c).digest() for c in split(data)]
    assert len(agent.missing(session["id"], digests).json()["missing"]) == 4
    agent.upload(session["id"], split(data)[:1])
    assert agent.commit_full(session["id"], data[:CHUNK]).status_code == 201
    stats = CustomerGc(customer, grace=timedelta(0)).run()
    assert stats.swept_chunks == 3
    assert Chunk.objects.for_customer(customer).filter(sweeping=True).count() == 0
    latest = Snapshot.objects.for_customer(customer).get()
    assert read_stream(agent.image(latest.pk)) == data[:CHUNK]


def test_collect_garbage_summary_and_history(agent, customer):
    agent.replicate(make_disk(customer), image(7))
    Snapshot.objects.for_customer(customer).delete()
    summary = collect_garbage(grace_hours=0)
    assert summary["customers"] == 1 and summary["swept_chunks"] == 4
    assert summary["freed_bytes"] >= 4 * CHUNK
    assert summary["duration_seconds"] >= 0
    run = MaintenanceRun.objects.get(kind="gc")
    assert run.ok is True and run.summary["swept_chunks"] == 4


def test_collect_garbage_command(agent, customer):
    agent.replicate(make_disk(customer), image(8))
    out = io.StringIO()
    call_command("collect_garbage", "--grace-hours", "0", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["swept_chunks"] == 0 and summary["grace_hours"] == 0
    with pytest.raises(CommandError, match="--grace-hours must be 0 or more"):
        call_command("collect_garbage", "--grace-hours", "-1")
    with pytest.raises(CommandError, match="No customer with the slug"):
        call_command("collect_garbage", "--customer", "nope")


def test_periodic_storage_tasks_run(agent, customer):
    from storage.tasks import collect_garbage as gc_task
    from storage.tasks import verify_store as verify_task

    agent.replicate(make_disk(customer), image(9))
    assert gc_task.apply().get()["customers"] == 1
    assert verify_task.apply(kwargs={"sample_percent": 100}).get()["damaged"] is False
