"""Verify finds damage, quarantines it, marks snapshots failed; the next replication heals."""

import io
import json
import random
from pathlib import Path

import pytest
from django.core.management import call_command

from storage.models import Chunk, QuarantinedChunk, Snapshot, SnapshotState
from storage.services.context import customer_store
from storage.services.restore import SnapshotImage
from storage.services.verify import verify_customer
from storage.store.errors import ChunkNotFound

from .conftest import CHUNK, make_disk, read_stream


def image(seed: int, chunks: int = 6) -> bytes:
    rnd = random.Random(seed)
    return b"".join(rnd.randbytes(CHUNK) for _ in range(chunks))


def blob_path(customer, digest: str) -> Path:
    store = customer_store(customer)
    return Path(store.backend.root) / store.namespace / "chunks" / digest[:2] / digest[2:4] / digest


@pytest.fixture
def replicated(agent, customer):
    disk = make_disk(customer)
    data = image(1)
    snapshot = agent.replicate(disk, data)["snapshot"]
    return disk, data, snapshot


def test_clean_store_verifies_and_stamps_snapshots(customer, replicated):
    result = verify_customer(customer)
    assert result["bad_chunks"] == [] and result["missing_chunks"] == []
    assert result["chunks_checked"] == 6
    snapshot = Snapshot.objects.for_customer(customer).get()
    assert snapshot.verified_at is not None and snapshot.state == SnapshotState.COMPLETE


def test_corrupt_chunk_is_quarantined_and_the_chain_heals(agent, customer, replicated):
    disk, data, first = replicated
    digest = Chunk.objects.for_customer(customer).order_by("digest").first().digest
    path = blob_path(customer, digest)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # bit rot in the payload
    path.write_bytes(bytes(raw))

    result = verify_customer(customer)
    assert result["bad_chunks"] == [digest]
    assert result["affected_snapshots"] == [first["id"]]
    assert not path.exists()
    quarantine = list((path.parents[3] / "quarantine").iterdir())
    assert any(p.name.startswith(digest) for p in quarantine)
    assert not Chunk.objects.for_customer(customer).filter(digest=digest).exists()
    record = QuarantinedChunk.objects.for_customer(customer).get()
    assert "CRC" in record.reason and record.repaired_at is None
    damaged = Snapshot.objects.for_customer(customer).get(pk=first["id"])
    assert damaged.state == SnapshotState.FAILED
    with pytest.raises(ChunkNotFound):
        b"".join(SnapshotImage.open(damaged).iter_range())

    # The next replication: the failed snapshot is no base; the missing-query reports the
    # quarantined chunk missing, the agent sends it again, and the chain is healthy again.
    session = agent.open(disk).json()
    assert session["base_snapshot"] is None
    second = agent.replicate(disk, data)
    assert second["uploaded"] == 1
    damaged.refresh_from_db()
    assert damaged.state == SnapshotState.COMPLETE
    assert read_stream(agent.image(first["id"])) == data
    assert QuarantinedChunk.objects.for_customer(customer).get().repaired_at is not None
    assert verify_customer(customer)["bad_chunks"] == []


def test_vanished_blob_is_reported(customer, replicated):
    digest = Chunk.objects.for_customer(customer).order_by("digest").last().digest
    blob_path(customer, digest).unlink()
    result = verify_customer(customer)
    assert result["bad_chunks"] == [digest]
    assert "ChunkNotFound" in QuarantinedChunk.objects.for_customer(customer).get().reason


def test_sampled_verify_checks_a_share(customer, replicated):
    result = verify_customer(customer, sample_percent=50, rng=random.Random(1))
    assert result["chunks_checked"] == 3
    # A sample does not stamp snapshots as fully verified.
    assert Snapshot.objects.for_customer(customer).get().verified_at is None


def test_verify_command_exit_status_and_json(customer, replicated):
    out = io.StringIO()
    call_command("verify_store", "--customer", customer.slug, stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["damaged"] is False and summary["chunks_checked"] == 6

    digest = Chunk.objects.for_customer(customer).first().digest
    blob_path(customer, digest).write_bytes(b"garbage")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_store", "--sample", "100", stdout=out)
    assert exit_info.value.code == 1
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["damaged"] is True and summary["bad_chunks"] == [digest]
    assert len(summary["affected_snapshots"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "0"], "--sample must be"),
        (["--sample", "101"], "--sample must be"),
        (["--customer", "nope"], "No customer with the slug 'nope'"),
    ],
)
def test_verify_command_bad_arguments(db, args, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("verify_store", *args)


def test_chunk_missing_from_the_catalog_heals_too(agent, customer, replicated):
    disk, data, first = replicated
    lost = Chunk.objects.for_customer(customer).order_by("digest").first()
    lost.delete()  # e.g. a catalog restored from an older backup
    result = verify_customer(customer)
    assert result["missing_chunks"] == [lost.digest]
    assert verify_customer(customer)["missing_chunks"] == [lost.digest]
    record = QuarantinedChunk.objects.for_customer(customer).get()  # recorded once
    assert record.reason == "missing from the store"
    assert Snapshot.objects.for_customer(customer).get().state == SnapshotState.FAILED

    assert agent.replicate(disk, data)["uploaded"] == 1
    record.refresh_from_db()
    assert record.repaired_at is not None
    assert Snapshot.objects.for_customer(customer).get(pk=first["id"]).state == "complete"


def test_uploads_without_repairs_do_not_reread_failed_snapshots(
    agent, customer, replicated, monkeypatch
):
    from storage.services import sessions

    Snapshot.objects.for_customer(customer).update(state=SnapshotState.FAILED)
    calls = []
    monkeypatch.setattr(sessions, "recheck_failed_snapshots", lambda c: calls.append(c))
    agent.replicate(make_disk(customer, key="other"), image(2))
    assert calls == []
