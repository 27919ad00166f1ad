"""The VMware appliance's job runner (agent/vmware) against the real agent API (the live
server) and the vSphere simulator as the replication peer: snapshots that freeze the disk,
CBT (``*`` then change ids, paged), /folder Range reads, the quiesce strategy, power actions,
storage thresholds, leftover snapshots, a CBT reset, vCenter failures."""

import os
import threading

import pytest
from pyVim.task import WaitForTask

from agent.daemon import Daemon
from agent.errors import AgentError
from agent.replicate import JobRecords
from agent.vmware import snapshots as vmware_snapshots
from clouds.services.clouds import seal
from protection.models import JobState, JobTrigger, Machine, ReplicationJob
from protection.services.jobs import job_queue
from storage.models import Snapshot
from tests.e2e_support import wait_until
from tests.vsphere_support import folder_faults, running_vcsim

from .vmware_support import MIB, Appliance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]

DISK_MIB = 8
DISK = DISK_MIB * MIB
CS = 64 * 1024  # tests/conftest.py's chunk size
VM = "DC0_H0_VM1"
QUIESCE_FAILS = "DC0_H0_VM2"


@pytest.fixture
def peer():
    with running_vcsim(
        vms=3, disk_mib=DISK_MIB, quiesce_fail=[QUIESCE_FAILS], user="acura", password="pw",
        cbt_page_mib=2,  # four pages per disk: the runner must follow startOffset
    ) as where:  # fmt: skip
        yield where


@pytest.fixture
def appliance(peer, live_server, customer, tmp_path):
    a = Appliance(customer, live_server.url, tmp_path, *peer)
    yield a
    a.close()


def snapshot_of(appliance, job):
    (snap,) = Snapshot.objects.for_customer(appliance.customer).filter(job=job)
    return snap


def chunks_touched(*spans):
    return len({p for off, n in spans for p in range(off // CS, (off + n - 1) // CS + 1)})


def test_first_and_incremental_replication_read_only_what_cbt_lists(appliance, tmp_path):
    appliance.protect(VM)
    assert not appliance.change_tracking(VM)
    first = [(1 * MIB + 5, os.urandom(300_000)), (6 * MIB, b"end of disk" * 1000)]
    for offset, data in first:
        appliance.write(VM, offset, data)

    _, job = appliance.run_job(VM)

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.warnings == []
    snap1 = snapshot_of(appliance, job)
    assert snap1.consistency == "application" and snap1.change_id
    # "*": only the allocated areas were read, the rest is known to be zeros
    allocated = chunks_touched(*((o, len(d)) for o, d in first))
    assert allocated * CS - CS <= job.bytes_read <= allocated * CS
    point1 = appliance.whole_disk(VM, DISK)
    assert appliance.change_tracking(VM)
    assert appliance.snapshot_names(VM) == []  # the job's snapshot is removed
    machine = Machine.objects.for_customer(appliance.customer).get(pk=job.machine_id)
    assert machine.change_tracking is True

    changes = [(2 * MIB + 100, os.urandom(5000)), (7 * MIB + 60_000, os.urandom(70_000))]
    for offset, data in changes:
        appliance.write(VM, offset, data)

    _, job2 = appliance.run_job(VM)

    assert job2.state == JobState.SUCCEEDED, job2.error_message
    snap2 = snapshot_of(appliance, job2)
    assert snap2.change_id != snap1.change_id and snap2.consistency == "application"
    changed = chunks_touched(*((o, len(d)) for o, d in changes))
    written = sum(len(d) for _, d in changes)
    assert written <= job2.bytes_read <= changed * CS  # within one chunk per changed area
    point2 = appliance.whole_disk(VM, DISK)
    assert point2 != point1
    assert appliance.restore(snap1.pk, tmp_path / "one.raw") == point1
    assert appliance.restore(snap2.pk, tmp_path / "two.raw") == point2
    assert appliance.snapshot_names(VM) == []


def test_what_the_guest_writes_during_the_job_is_not_in_its_point_in_time(
    appliance, tmp_path, monkeypatch
):
    """The job reads the frozen layer: what the guest writes after the snapshot is not in it."""
    appliance.protect(VM)
    appliance.write(VM, 0, b"A" * CS)
    frozen = appliance.whole_disk(VM, DISK)
    take = vmware_snapshots.take

    def take_then_write(*args, **kwargs):
        taken = take(*args, **kwargs)
        appliance.write(VM, 0, b"B" * CS)  # the guest writes on while the job reads
        return taken

    monkeypatch.setattr(vmware_snapshots, "take", take_then_write)
    _, job = appliance.run_job(VM)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert appliance.restore(snapshot_of(appliance, job).pk, tmp_path / "a.raw") == frozen
    assert appliance.read(VM, 0, 4) == b"BBBB"


def test_quiesce_failure_falls_back_to_a_crash_consistent_snapshot(appliance):
    appliance.protect(QUIESCE_FAILS)
    _, job = appliance.run_job(QUIESCE_FAILS)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert snapshot_of(appliance, job).consistency == "crash"
    (warning,) = job.warnings
    assert warning.startswith(f"quiescing VM {QUIESCE_FAILS} failed") and "crash" in warning
    assert appliance.snapshot_names(QUIESCE_FAILS) == []


def test_enforced_quiescing_fails_the_job_and_leaves_no_snapshot(appliance):
    appliance.set_cloud(enforce_quiesce=True)
    appliance.protect(QUIESCE_FAILS)
    outcome, job = appliance.run_job(QUIESCE_FAILS)
    assert isinstance(outcome, AgentError)
    assert job.state == JobState.FAILED
    assert f"quiescing VM {QUIESCE_FAILS} failed" in job.error_message
    assert "enforces the quiesce strategy" in job.error_message
    assert not Snapshot.objects.for_customer(appliance.customer).filter(job=job).exists()
    assert appliance.snapshot_names(QUIESCE_FAILS) == []


def test_power_off_at_start_and_power_on_at_finish(appliance):
    appliance.protect(VM)
    appliance.set_cloud(on_replication_start="power_off", on_replication_finish="none")
    _, job = appliance.run_job(VM)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert appliance.power_state(VM) == "poweredOff"  # the finish action said: leave it

    appliance.set_cloud(on_replication_start="power_off", on_replication_finish="power_on")
    _, job = appliance.run_job(VM)  # already off at start: not an error
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert appliance.power_state(VM) == "poweredOn"


def test_the_finish_power_action_runs_when_the_job_fails_after_the_start(appliance):
    appliance.set_cloud(
        enforce_quiesce=True, on_replication_start="power_off", on_replication_finish="power_on"
    )
    appliance.protect(QUIESCE_FAILS)
    assert appliance.power_state(QUIESCE_FAILS) == "poweredOn"
    _, job = appliance.run_job(QUIESCE_FAILS)
    assert job.state == JobState.FAILED and "quiescing" in job.error_message
    assert appliance.power_state(QUIESCE_FAILS) == "poweredOn"


def test_a_leftover_snapshot_of_a_crashed_job_is_removed_by_the_next_one(appliance):
    appliance.protect(VM)
    appliance.take_snapshot(VM, "acura-job-999")  # what a job killed mid-way leaves
    appliance.take_snapshot(VM, "before upgrade")  # the customer's own: never touched
    _, job = appliance.run_job(VM)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert appliance.snapshot_names(VM) == ["before upgrade"]


def test_a_cbt_reset_falls_back_to_a_full_read_compared_with_the_base(appliance, tmp_path):
    appliance.protect(VM)
    appliance.write(VM, 3 * MIB, os.urandom(CS))
    _, job = appliance.run_job(VM)
    assert job.state == JobState.SUCCEEDED, job.error_message
    appliance.set_change_tracking(VM, False)  # an admin resets CBT: old change ids are void
    appliance.set_change_tracking(VM, True)
    appliance.write(VM, 5 * MIB, os.urandom(3 * CS))

    _, job2 = appliance.run_job(VM)

    assert job2.state == JobState.SUCCEEDED, job2.error_message
    assert job2.bytes_read == DISK  # read whole, compared chunk by chunk with the base
    (warning,) = job2.warnings
    assert "no longer accepts change id" in warning
    expected = appliance.whole_disk(VM, DISK)
    assert appliance.restore(snapshot_of(appliance, job2).pk, tmp_path / "r.raw") == expected
    assert job2.bytes_sent < 4 * CS + 64 * 1024  # only the changed chunks went over the wire


@pytest.mark.parametrize(
    "fields, refusal",
    [
        ({"disk_storage_threshold_percent": 50}, "threshold per machine disk asks for 50 %"),
        ({"free_space_threshold_percent": 10}, "below the free space storage threshold of 10 %"),
    ],
)
def test_a_storage_threshold_refuses_the_job_and_touches_nothing(
    live_server, customer, tmp_path, fields, refusal
):
    # 0.001 % of vcsim's 252 GiB datastore is ~2.6 MB: less than half of the 8 MiB disk
    with running_vcsim(vms=2, disk_mib=DISK_MIB, datastore_free_percent=0.001) as peer:
        appliance = Appliance(customer, live_server.url, tmp_path, *peer)
        try:
            appliance.set_cloud(on_replication_start="power_off", **fields)
            appliance.protect(VM)
            _, job = appliance.run_job(VM)
            assert job.state == JobState.FAILED
            assert "datastore LocalDS_0 has 0.0 GiB free" in job.error_message
            assert refusal in job.error_message
            assert "nothing on the VM was changed" in job.error_message
            assert appliance.power_state(VM) == "poweredOn"
            assert appliance.snapshot_names(VM) == []
            assert not appliance.change_tracking(VM)
        finally:
            appliance.close()


def test_a_vm_gone_from_vcenter_fails_the_job_clearly(appliance):
    appliance.protect(VM)
    vm = appliance.vm(VM)
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.Destroy_Task())
    _, job = appliance.run_job(VM)
    assert job.state == JobState.FAILED
    assert f"VM '{VM}'" in job.error_message and "is not in vCenter" in job.error_message


def test_credentials_no_longer_valid_fail_the_job_clearly(appliance):
    appliance.protect(VM)
    appliance.set_cloud(password_sealed=seal("changed-by-someone"))
    _, job = appliance.run_job(VM)
    assert job.state == JobState.FAILED
    assert "refused the login 'acura'" in job.error_message
    assert "no longer valid" in job.error_message


def test_an_unreachable_vcenter_fails_the_job_clearly(appliance):
    appliance.protect(VM)
    appliance.set_cloud(endpoint="127.0.0.1:9")  # nothing listens on the discard port
    _, job = appliance.run_job(VM)
    assert job.state == JobState.FAILED
    assert "cannot reach" in job.error_message and "127.0.0.1:9" in job.error_message


def test_a_snapshot_that_cannot_be_removed_is_a_warning_and_goes_next_time(
    live_server, customer, tmp_path
):
    with running_vcsim(vms=2, disk_mib=DISK_MIB, snapshot_remove_fail=1) as peer:
        appliance = Appliance(customer, live_server.url, tmp_path, *peer)
        try:
            appliance.protect(VM)
            _, job = appliance.run_job(VM)
            assert job.state == JobState.SUCCEEDED, job.error_message  # the data is safe
            (warning,) = job.warnings
            assert warning.startswith(f"the VMware snapshot acura-job-{job.pk} of VM {VM} could")
            assert "FileLocked" in warning and "tried again on the next job" in warning
            assert appliance.snapshot_names(VM) == [f"acura-job-{job.pk}"]

            _, job2 = appliance.run_job(VM)

            assert job2.state == JobState.SUCCEEDED, job2.error_message
            assert job2.warnings == [] and appliance.snapshot_names(VM) == []
        finally:
            appliance.close()


def test_disks_added_grown_and_removed_between_replications(appliance, tmp_path):
    appliance.protect(VM)
    first = appliance.disk_key(VM)
    appliance.write(VM, 1 * MIB, os.urandom(CS))
    _, job1 = appliance.run_job(VM)
    assert job1.state == JobState.SUCCEEDED, job1.error_message

    # The admin grows the disk (CBT restarts for it) and adds a second one.
    appliance.grow_disk(VM, first, 12)
    appliance.write(VM, 11 * MIB, b"tail of the grown disk")
    second = appliance.add_disk(VM, 4)
    appliance.write(VM, 4096, b"on the new disk", key=second)

    _, job2 = appliance.run_job(VM)

    assert job2.state == JobState.SUCCEEDED, job2.error_message
    assert any(f"disk {first} was resized" in w for w in job2.warnings), job2.warnings
    assert any(f"disk {second} " in w and "new since" in w for w in job2.warnings)
    grown = snapshot_of(appliance, job2)
    assert grown.disk_size == 12 * MIB
    assert appliance.restore(grown.pk, tmp_path / "grown.raw") == appliance.whole_disk(VM, 12 * MIB)

    # The portal's discovery learns of the new disk: the next job replicates both.
    appliance.discover()
    appliance.write(VM, 2 * MIB, os.urandom(3000))
    appliance.write(VM, 3 * MIB, os.urandom(3000), key=second)
    _, job3 = appliance.run_job(VM)
    assert job3.state == JobState.SUCCEEDED, job3.error_message
    assert job3.warnings == []
    assert job3.bytes_read <= 2 * CS + CS  # one changed area on the first, the new one's data
    snaps = {
        s.disk.key: s for s in Snapshot.objects.for_customer(appliance.customer).filter(job=job3)
    }
    assert set(snaps) == {str(first), str(second)}
    for key, size in ((first, 12 * MIB), (second, 4 * MIB)):
        expected = appliance.whole_disk(VM, size, key)
        assert appliance.restore(snaps[str(key)].pk, tmp_path / f"{key}.raw") == expected

    # The second disk is removed again: the job replicates what is left, nothing is lost.
    appliance.remove_disk(VM, second)
    _, job4 = appliance.run_job(VM)
    assert job4.state == JobState.SUCCEEDED, job4.error_message
    (left,) = Snapshot.objects.for_customer(appliance.customer).filter(job=job4)
    assert left.disk.key == str(first)
    assert Snapshot.objects.for_customer(appliance.customer).filter(disk__key=str(second)).exists()


def test_datastore_reads_that_fail_are_retried_then_fail_the_job_clearly(appliance, peer, tmp_path):
    appliance.protect(VM)
    for position in range(0, DISK, MIB):
        appliance.write(VM, position, os.urandom(2 * CS))
    folder_faults(*peer, after=3, count=2)  # a hiccup: two reads fail, their retries work
    _, job = appliance.run_job(VM)
    assert job.state == JobState.SUCCEEDED, job.error_message
    expected = appliance.whole_disk(VM, DISK)
    assert appliance.restore(snapshot_of(appliance, job).pk, tmp_path / "a.raw") == expected

    appliance.write(VM, 0, os.urandom(CS))
    folder_faults(*peer, after=1, count=1000)  # past the descriptor, the datastore stays down
    _, failed = appliance.run_job(VM)
    assert failed.state == JobState.FAILED
    assert "reading disk" in failed.error_message and "HTTP 503" in failed.error_message
    assert "the next job reads it again" in failed.error_message
    assert appliance.snapshot_names(VM) == []  # removed even so

    folder_faults(*peer, after=0, count=0)
    _, again = appliance.run_job(VM)
    assert again.state == JobState.SUCCEEDED, again.error_message
    expected = appliance.whole_disk(VM, DISK)
    assert appliance.restore(snapshot_of(appliance, again).pk, tmp_path / "b.raw") == expected


def test_the_appliance_daemon_ends_a_job_a_crashed_run_left_and_replicates_the_next(
    appliance, tmp_path
):
    """The daemon (agent/daemon.py) of the appliance: a job its previous run began and never
    ended (the process was killed mid-job: its record and its snapshot remain) is ended as
    failed at start, not left running for the stuck-job check; the next job, queued by the
    portal, takes a new snapshot, removes the one left behind and replicates."""
    appliance.protect(VM)
    crashed = job_queue(appliance.customer, appliance.machine(VM), trigger=JobTrigger.MANUAL)
    taken = appliance.client.json("POST", "jobs/next/", {})
    assert taken["id"] == crashed.pk
    JobRecords(appliance.config.state_dir).save(appliance.machine(VM).pk, crashed.pk, {})
    appliance.take_snapshot(VM, f"acura-job-{crashed.pk}")
    daemon = Daemon(appliance.config)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    jobs = ReplicationJob.objects.for_customer(appliance.customer)
    try:
        ended = wait_until(lambda: jobs.filter(pk=crashed.pk, state=JobState.FAILED).first())
        assert "the appliance restarted during this job" in ended.error_message
        fresh = job_queue(appliance.customer, appliance.machine(VM), trigger=JobTrigger.MANUAL)
        done = wait_until(
            lambda: jobs.filter(
                pk=fresh.pk, state__in=[JobState.SUCCEEDED, JobState.FAILED]
            ).first(),
            timeout=60,
        )
    finally:
        daemon.stop("test over")
        runner.join(timeout=30)
    assert done.state == JobState.SUCCEEDED, done.error_message
    assert appliance.snapshot_names(VM) == []
    assert JobRecords(appliance.config.state_dir).machines() == []
