"""replicate_disks and restore_snapshot in-process against the real agent API (the live
server): what is read, what is sent, what the server commits, what a restore returns."""

import hashlib
import threading
import time

import pytest

from agent.disk import SourceDisk
from agent.errors import Cancelled, DiskError
from agent.index import IndexCache, checksum
from agent.replicate import DiskSource, JobRecords, replicate_disks
from agent.restore import restore_snapshot
from agent.workers import frame_record
from protection.models import JobState, ReplicationJob, ReplicationPolicy
from protection.services.jobs import job_cancel
from storage.models import SessionState, Snapshot, UploadSession

from .conftest import CS, chunk, overwrite, sha256_file, write_image

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = [
    ("random", 1),
    ("zero", 0),
    ("text", 2),
    ("random", 1),  # a duplicate of chunk 0: sent once
    ("zero", 0),
    ("random", 3),
    ("text", 4),
    ("random", 5),
]
DISTINCT_NONZERO = 5  # random 1, text 2, random 3, text 4, random 5 — plus the short tail


def replicate(h, image, extents=None, **kwargs):
    with SourceDisk(str(image), "disk-a") as disk:
        return replicate_disks(
            h.client,
            h.machine_id,
            [DiskSource(disk, extents)],
            state_dir=h.folder / "state",
            threads=2,
            **kwargs,
        )


def restored(h, snapshot_id, tmp_path):
    out = tmp_path / f"restored-{snapshot_id}.img"
    report = restore_snapshot(h.client, snapshot_id, str(out), threads=3)
    return out, report


def test_full_incremental_changed_areas_and_restore(harness, tmp_path):
    h = harness
    image = write_image(tmp_path / "disk.img", KINDS, tail=1000)
    size = image.stat().st_size
    h.protect({"disk-a": str(image)})
    first_sha = sha256_file(image)

    full = replicate(h, image)
    assert full.state == "succeeded"
    assert full.bytes_read == size
    assert full.chunks_sent == full.new_chunks == DISTINCT_NONZERO + 1  # + the short tail
    assert full.disks[0]["delta"] is False
    snap = Snapshot.objects.for_customer(h.customer).get(pk=full.snapshots[0])
    assert snap.disk_size == size and snap.zero_chunks == 2
    job = ReplicationJob.objects.for_customer(h.customer).get(pk=full.job)
    assert job.state == JobState.SUCCEEDED and job.new_chunks == full.new_chunks
    assert job.bytes_read == size and job.bytes_sent == full.bytes_sent
    assert job.bytes_done == job.bytes_total == size
    # The index the agent cached is the server's.
    cached = IndexCache(h.folder / "state").load(h.machine_id, "disk-a", snap.index_checksum)
    assert cached is not None
    assert checksum(cached.chunk_size, cached.disk_size, cached.digests) == snap.index_checksum

    # Three chunks change (one becomes zero): only two are sent, compared against the base.
    overwrite(image, 1, chunk("random", 11))
    overwrite(image, 5, chunk("zero"))
    overwrite(image, 6, chunk("text", 12))
    second_sha = sha256_file(image)
    incremental = replicate(h, image)
    assert incremental.bytes_read == size
    assert incremental.chunks_sent == incremental.new_chunks == 2
    assert incremental.disks[0]["delta"] is True
    assert incremental.disks[0]["changed_chunks"] == 3

    # Changed areas: only the listed chunk is read; a second, unlisted change is (rightly,
    # per the list) not looked at.
    overwrite(image, 7, chunk("random", 13))
    listed = replicate(h, image, extents=[(7 * CS + 100, 10)])
    assert listed.bytes_read == CS
    assert listed.chunks_sent == 1
    third_sha = sha256_file(image)

    for result, expected in ((full, first_sha), (incremental, second_sha), (listed, third_sha)):
        out, report = restored(h, result.snapshots[0], tmp_path)
        assert sha256_file(out) == expected
        assert report["disk_size"] == size
        assert not (tmp_path / f"{out.name}.partial").exists()
    assert not JobRecords(h.folder / "state").load(h.machine_id)


def test_without_a_cached_index_the_base_is_fetched(harness, tmp_path):
    h = harness
    image = write_image(tmp_path / "disk.img", KINDS)
    h.protect({"disk-a": str(image)})
    replicate(h, image)
    for path in (h.folder / "state" / "indexes").iterdir():
        path.write_bytes(b"garbage")
    overwrite(image, 2, chunk("text", 77))
    again = replicate(h, image)
    assert again.chunks_sent == 1 and again.disks[0]["delta"] is True


def test_changed_areas_without_a_base_read_the_whole_disk(harness, tmp_path):
    h = harness
    image = write_image(tmp_path / "disk.img", KINDS)
    h.protect({"disk-a": str(image)})
    result = replicate(h, image, extents=[(0, 10)])
    assert result.bytes_read == image.stat().st_size
    assert result.chunks_sent == DISTINCT_NONZERO


def test_a_crashed_run_is_resumed_and_sends_only_missing_chunks(harness, tmp_path):
    h = harness
    image = write_image(tmp_path / "disk.img", [("random", i) for i in range(10)])
    h.protect({"disk-a": str(image)})
    # What a run killed mid-upload leaves: the job running, its record, an open session
    # with four chunks stored.
    job = h.client.json("POST", "jobs/", {"machine": h.machine_id})
    JobRecords(h.folder / "state").save(h.machine_id, job["id"], {})
    body = {"machine": h.machine_id, "disk": "disk-a", "job": job["id"]}
    session = h.client.json("POST", "upload-sessions/", body)
    pieces = [chunk("random", i) for i in range(4)]
    records = b"".join(b"".join(frame_record(hashlib.sha256(p).digest(), p)[1:]) for p in pieces)
    h.client.request("POST", f"upload-sessions/{session['id']}/chunks/", body=records)

    result = replicate(h, image)
    assert result.resumed is True and result.job == job["id"]
    assert result.disks[0]["resumed_session"] is True
    assert result.chunks_sent == result.new_chunks == 6
    assert result.state == "succeeded"
    out, _ = restored(h, result.snapshots[0], tmp_path)
    assert sha256_file(out) == sha256_file(image)


def test_an_unreadable_disk_fails_the_job_and_commits_nothing(harness, tmp_path):
    h = harness
    image = write_image(tmp_path / "disk.img", [("random", i) for i in range(8)])
    h.protect({"disk-a": str(image)})
    disk = SourceDisk(str(image), "disk-a")
    with open(image, "r+b") as f:  # the disk shrinks under the agent: reads come up short
        f.truncate(3 * CS)
    try:
        with pytest.raises(DiskError, match="ended at byte"):
            replicate_disks(
                h.client, h.machine_id, [DiskSource(disk)], state_dir=h.folder / "state"
            )
    finally:
        disk.close()
    job = ReplicationJob.objects.for_customer(h.customer).get()
    assert job.state == JobState.FAILED and "ended at byte" in job.error_message
    assert not Snapshot.objects.for_customer(h.customer).exists()
    assert UploadSession.objects.for_customer(h.customer).get().state == SessionState.ABORTED
    assert not JobRecords(h.folder / "state").load(h.machine_id)


def test_a_cancel_in_the_portal_stops_a_throttled_upload(harness, tmp_path):
    h = harness
    ReplicationPolicy.objects.create(customer=h.customer, bandwidth_limit_mbps=1)
    image = write_image(tmp_path / "disk.img", [("random", i) for i in range(24)])
    h.protect({"disk-a": str(image)})

    def cancel_soon():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = ReplicationJob.objects.for_customer(h.customer).first()
            if job is not None and job.bytes_sent > 0:
                job_cancel(h.customer, job)
                return
            time.sleep(0.1)

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match=r"no longer running|cancelled"):
        replicate(h, image, progress_interval=0.2)
    canceller.join()
    # 1.5 MiB at 1 Mbit/s would take 12 s: the limit held, and the cancel cut it short.
    assert time.monotonic() - started < 10
    job = ReplicationJob.objects.for_customer(h.customer).get()
    assert job.state == JobState.CANCELLED
    assert 0 < job.bytes_sent < 24 * CS
    # Progress counts a chunk done once its upload is answered, not when it was read.
    assert job.bytes_done < job.bytes_read
    assert UploadSession.objects.for_customer(h.customer).get().state == SessionState.ABORTED
    assert not Snapshot.objects.for_customer(h.customer).exists()


def test_two_disks_are_one_job_with_two_snapshots(harness, tmp_path):
    h = harness
    a = write_image(tmp_path / "a.img", [("random", 1), ("zero", 0)])
    b = write_image(tmp_path / "b.img", [("random", 1), ("text", 2)])  # chunk 0 as on a
    h.protect({"disk-a": str(a), "disk-b": str(b)})
    with SourceDisk(str(a), "disk-a") as da, SourceDisk(str(b), "disk-b") as db:
        result = replicate_disks(
            h.client, h.machine_id, [DiskSource(da), DiskSource(db)], state_dir=h.folder / "st"
        )
    assert result.state == "succeeded" and len(result.snapshots) == 2
    # disk-b's first chunk is disk-a's: the store has it, so it is not sent again.
    assert [d["chunks_sent"] for d in result.disks] == [1, 1]
    job = ReplicationJob.objects.for_customer(h.customer).get(pk=result.job)
    assert sorted(str(s) for s in job.snapshots.values_list("pk", flat=True)) == sorted(
        result.snapshots
    )
    for snapshot, image in zip(result.snapshots, (a, b), strict=True):
        out, _ = restored(h, snapshot, tmp_path)
        assert sha256_file(out) == sha256_file(image)


def test_a_grown_disk_reads_its_new_tail_even_with_a_change_list(harness, tmp_path):
    h = harness
    image = write_image(tmp_path / "disk.img", [("random", 1), ("random", 2)], tail=100)
    h.protect({"disk-a": str(image)})
    replicate(h, image)
    with open(image, "ab") as f:  # the disk grows by almost two chunks
        f.write(chunk("text", 9, 2 * CS - 100))
    result = replicate(h, image, extents=[])
    # The old short last chunk and the new one are read; the unchanged first two are not.
    assert result.bytes_read == image.stat().st_size - 2 * CS
    assert result.chunks_sent == 2
    out, _ = restored(h, result.snapshots[0], tmp_path)
    assert sha256_file(out) == sha256_file(image)
