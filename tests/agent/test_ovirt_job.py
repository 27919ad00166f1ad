"""The oVirt appliance's job runner (agent/ovirt) against the real agent API, the in-test
engine (the engine API is a stand-in) and the real data side: qcow2 layers served by qemu-nbd
through the ovirt-imageio daemon. The product description's lifecycle: a snapshot at the
start, the previous replication's snapshot deleted at the end, the new one kept as the base;
the first replication reads the non-zero extents, the next only the new layer's."""

import os

import pytest

from agent.errors import AgentError
from protection.models import JobState
from storage.models import Snapshot

from .ovirt_appliance import DISK, MIB, SIZE, OVirtAppliance, ovirt_peer

pytestmark = pytest.mark.django_db(transaction=True)

CS = 64 * 1024  # tests/conftest.py's chunk size


@pytest.fixture
def appliance(live_server, customer, tmp_path):
    with ovirt_peer(tmp_path / "peer") as (engine, storage):
        a = OVirtAppliance(customer, live_server.url, tmp_path, engine, storage)
        try:
            yield a
        finally:
            a.close()


def snapshot_of(appliance, job):
    (snap,) = Snapshot.objects.for_customer(appliance.customer).filter(job=job)
    return snap


def chunks(*spans):
    return len({p for off, n in spans for p in range(off // CS, (off + n - 1) // CS + 1)})


def test_full_then_incremental_keep_one_snapshot_and_restore_both_points(appliance, tmp_path):
    appliance.protect()
    first = [(1 * MIB + 5, os.urandom(200_000)), (12 * MIB, b"log line\n" * 5000)]
    for offset, data in first:
        appliance.storage.write(DISK, offset, data)
    point1 = appliance.storage.content(DISK)

    _, job1 = appliance.run_job()

    assert job1.state == JobState.SUCCEEDED, job1.error_message
    assert job1.bytes_read <= chunks(*((o, len(d)) for o, d in first)) * CS  # non-zero only
    (kept,) = appliance.snapshots()
    assert kept.description == f"acura-job-{job1.pk}"
    snap1 = snapshot_of(appliance, job1)
    assert snap1.change_id == kept.id and snap1.consistency == "crash"

    changes = [(4 * MIB + 3, os.urandom(5000)), (15 * MIB, os.urandom(70_000))]
    for offset, data in changes:
        appliance.storage.write(DISK, offset, data)
    point2 = appliance.storage.content(DISK)

    _, job2 = appliance.run_job()

    assert job2.state == JobState.SUCCEEDED, job2.error_message
    assert job2.warnings == []
    # Only the new layer's extents (64 KiB qcow2 clusters) were read.
    assert (
        sum(len(d) for _, d in changes)
        <= job2.bytes_read
        <= chunks(*((o, len(d)) for o, d in changes)) * CS
    )
    (kept,) = appliance.snapshots()  # the previous one is deleted, the new one kept
    assert kept.description == f"acura-job-{job2.pk}"
    assert appliance.restore(snap1.pk, tmp_path / "one.raw") == point1
    assert appliance.restore(snapshot_of(appliance, job2).pk, tmp_path / "two.raw") == point2


def test_a_deleted_base_snapshot_falls_back_to_a_full_read_and_loses_nothing(appliance, tmp_path):
    appliance.protect()
    appliance.storage.write(DISK, 2 * MIB, os.urandom(CS))
    _, job1 = appliance.run_job()
    assert job1.state == JobState.SUCCEEDED, job1.error_message
    (base,) = appliance.snapshots()
    appliance.delete_snapshot(base.id)  # what the product description warns against
    appliance.storage.write(DISK, 8 * MIB, os.urandom(CS))

    _, job2 = appliance.run_job()

    assert job2.state == JobState.SUCCEEDED, job2.error_message
    assert job2.bytes_read == SIZE
    (warning,) = job2.warnings
    assert "is gone or no longer under the new one" in warning
    expected = appliance.storage.content(DISK)
    assert appliance.restore(snapshot_of(appliance, job2).pk, tmp_path / "r.raw") == expected
    assert [s.description for s in appliance.snapshots()] == [f"acura-job-{job2.pk}"]


def test_stray_snapshots_of_a_crashed_job_are_deleted_by_the_next_one(appliance):
    appliance.protect()
    appliance.take_snapshot("acura-job-999")  # a job killed mid-way left it
    appliance.take_snapshot("before upgrade")  # the customer's own: never touched
    _, job = appliance.run_job()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert sorted(s.description for s in appliance.snapshots()) == [
        f"acura-job-{job.pk}",
        "before upgrade",
    ]


def test_an_expired_ticket_is_renewed_and_the_read_resumes(appliance, tmp_path, monkeypatch):
    from agent.ranged import RangeDisk

    appliance.protect()
    for offset in range(0, SIZE, 2 * MIB):
        appliance.storage.write(DISK, offset, os.urandom(CS))
    original, calls = RangeDisk._get, []

    def expiring(self, url, offset, length):
        calls.append(url)
        if len(calls) == 3:  # the ticket expires mid-way (the daemon really removes it)
            transfer = next(iter(appliance.storage.transfers.values()))
            appliance.storage.imageio.remove_ticket(transfer.ticket)
        return original(self, url, offset, length)

    monkeypatch.setattr(RangeDisk, "_get", expiring)
    _, job = appliance.run_job()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(set(calls)) == 2  # the second URL is the renewed transfer's
    expected = appliance.storage.content(DISK)
    assert appliance.restore(snapshot_of(appliance, job).pk, tmp_path / "r.raw") == expected


def test_a_vm_gone_fails_the_job_clearly(appliance):
    appliance.protect()
    appliance.engine.model.vms.clear()
    outcome, job = appliance.run_job()
    assert isinstance(outcome, AgentError) and job.state == JobState.FAILED
    assert "VM 'web1' (vm1) is not in the oVirt engine" in job.error_message


def test_a_refused_login_fails_the_job_clearly(appliance):
    from clouds.services.clouds import seal

    appliance.protect()
    appliance.set_cloud(password_sealed=seal("wrong"))
    _, job = appliance.run_job()
    assert job.state == JobState.FAILED
    assert "refused the login 'admin@internal'" in job.error_message
    assert appliance.snapshots() == []


def test_an_unreachable_engine_fails_the_job_clearly(appliance):
    appliance.protect()
    appliance.set_cloud(endpoint="http://127.0.0.1:9/ovirt-engine/api")
    _, job = appliance.run_job()
    assert job.state == JobState.FAILED
    assert "cannot reach server oVirt engine 127.0.0.1:9" in job.error_message


def test_a_transfer_a_crashed_job_left_open_is_cancelled_first(appliance):
    import ovirtsdk4.types as types

    appliance.protect()
    appliance.storage.write(DISK, 0, os.urandom(CS))
    _, job1 = appliance.run_job()
    assert job1.state == JobState.SUCCEEDED, job1.error_message
    (base,) = appliance.snapshots()
    snaps = appliance.sdk.system_service().vms_service().vm_service("vm1").snapshots_service()
    (disk,) = snaps.snapshot_service(base.id).disks_service().list()
    volume = types.DiskSnapshot(id=disk.image_id)
    left = (
        appliance.sdk.system_service()
        .image_transfers_service()
        .add(
            types.ImageTransfer(
                direction=types.ImageTransferDirection.DOWNLOAD,
                format=types.DiskFormat.RAW,
                snapshot=volume,
            )
        )
    )  # fmt: skip  (what a job killed mid-read leaves open)

    _, job2 = appliance.run_job()

    assert job2.state == JobState.SUCCEEDED, job2.error_message
    assert appliance.storage.transfers[left.id].phase == "cancelled_user"
    assert [s.description for s in appliance.snapshots()] == [f"acura-job-{job2.pk}"]


@pytest.mark.parametrize(
    "phase, message",
    [("paused_system", "was paused by the system (cancelled)"), ("finished_failure", "ended")],
)
def test_a_failed_transfer_fails_the_job_and_keeps_the_base(appliance, phase, message):
    appliance.protect()
    _, job1 = appliance.run_job()
    assert job1.state == JobState.SUCCEEDED, job1.error_message
    appliance.engine.transfer_fault = phase
    _, job2 = appliance.run_job()
    assert job2.state == JobState.FAILED
    assert "the image transfer of disk web1_Disk1" in job2.error_message
    assert message in job2.error_message
    # The new snapshot is gone, the base of the next job stays.
    assert [s.description for s in appliance.snapshots()] == [f"acura-job-{job1.pk}"]


def test_a_snapshot_stuck_locked_fails_the_job_clearly(appliance, monkeypatch):
    import agent.ovirt.job as ovirt_job

    monkeypatch.setattr(ovirt_job, "SNAPSHOT_TIMEOUT", 0.5)
    appliance.protect()
    appliance.engine.snapshots_stay_locked = True
    _, job = appliance.run_job()
    assert job.state == JobState.FAILED
    assert "is still locked after 0 s" in job.error_message
    assert "is a storage task stuck in oVirt?" in job.error_message
