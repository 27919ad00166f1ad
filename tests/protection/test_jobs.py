"""The replication job state machine (protection.services.jobs) and the machine status
that follows it."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from clouds.models import Agent, AgentStatus
from protection.models import JobState, JobTrigger, Machine, MachineStatus, ReplicationJob
from protection.services.jobs import (
    JobError,
    job_cancel,
    job_fail,
    job_finish,
    job_progress,
    job_queue,
    job_start_for_agent,
    job_take_next,
    jobs_cancel_for_machines,
    jobs_fail_stuck,
    jobs_to_cancel,
)
from protection.services.machines import machines_stop_protection
from storage.services.sessions import CommitRequest, session_open
from storage.services.sessions import session_commit as commit
from tests.factories import DiskFactory, MachineFactory

CHUNK = 64 * 1024  # tests.conftest sets STORE_CHUNK_SIZE to this


def make_agent(customer, **fields):
    fields = {"status": AgentStatus.ONLINE, "last_seen_at": timezone.now(), **fields}
    return Agent.objects.create(customer=customer, platform="linux", **fields)


@pytest.fixture
def agent(customer):
    return make_agent(customer)


@pytest.fixture
def machine(customer, agent):
    return MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)


def state_of(job) -> str:
    return ReplicationJob.objects.for_customer(job.customer_id).get(pk=job.pk).state


def machine_row(machine) -> Machine:
    return Machine.objects.for_customer(machine.customer_id).get(pk=machine.pk)


def snapshot_for(job, taken_at=None):
    """A real committed snapshot of the job's machine (an all-zero disk: nothing to upload)."""
    disk = DiskFactory(machine=job.machine, customer=job.machine.customer, size_bytes=2 * CHUNK)
    session, _ = session_open(job.customer, job.machine, disk, taken_at=taken_at, job=job)
    return commit(session, CommitRequest(disk_size=2 * CHUNK, digests=bytes(64)))


def started(customer, agent, machine) -> ReplicationJob:
    job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    return job_take_next(customer, agent)


def succeed(job, taken_at=None) -> ReplicationJob:
    snapshot = snapshot_for(job, taken_at)
    return job_finish(job, succeeded=True, snapshot_ids=[snapshot.pk])


# --- Queueing ----------------------------------------------------------------------------


def test_queue_creates_a_queued_job_for_the_machines_agent(customer, agent, machine, admin_user):
    job = job_queue(customer, machine, trigger=JobTrigger.MANUAL, requested_by=admin_user)
    assert (job.state, job.trigger, job.agent_id) == (JobState.QUEUED, "manual", agent.pk)
    assert job.requested_by == admin_user
    assert job.started_at is None and job.is_active
    # Queued is not yet replicating: the machine shows what it showed before.
    assert machine_row(machine).status == MachineStatus.PROTECTED


@pytest.mark.parametrize("status", [MachineStatus.UNPROTECTED, MachineStatus.DISCOVERED])
def test_queue_refuses_an_unprotected_machine(customer, machine, status):
    Machine.objects.for_customer(customer).filter(pk=machine.pk).update(status=status)
    machine.refresh_from_db()
    with pytest.raises(JobError) as exc:
        job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    assert exc.value.code == "not_protected"
    assert "start protection" in exc.value.message
    assert not ReplicationJob.objects.for_customer(customer).exists()


def test_queue_refuses_a_machine_without_agent(customer):
    machine = MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=None)
    with pytest.raises(JobError) as exc:
        job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    assert exc.value.code == "no_agent"
    assert not ReplicationJob.objects.for_customer(customer).exists()


def test_queue_refuses_another_customers_machine(customer, other_customer, machine):
    with pytest.raises(JobError) as exc:
        job_queue(other_customer, machine, trigger=JobTrigger.MANUAL)
    assert exc.value.code == "not_found"
    assert not ReplicationJob.objects.all_customers().exists()


# --- At most one active job per machine ----------------------------------------------------


def test_a_second_active_job_is_a_clean_conflict(customer, machine):
    first = job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    with pytest.raises(JobError) as exc:
        job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    assert exc.value.code == "conflict"
    assert exc.value.job == first
    assert f"job {first.pk}, queued" in exc.value.message
    assert ReplicationJob.objects.for_customer(customer).count() == 1


@pytest.mark.parametrize("state", [JobState.RUNNING, JobState.COMMITTING])
def test_the_constraint_covers_every_active_state(customer, agent, machine, state):
    ReplicationJob.objects.create(
        customer=customer, machine=machine, agent=agent, trigger="manual", state=state
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReplicationJob.objects.create(
            customer=customer, machine=machine, agent=agent, trigger="manual"
        )
    with pytest.raises(JobError) as exc:
        job_start_for_agent(customer, agent, machine)
    assert exc.value.code == "conflict"


def test_finished_jobs_do_not_count(customer, agent, machine):
    for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        ReplicationJob.objects.create(
            customer=customer, machine=machine, agent=agent, trigger="manual", state=state
        )
    assert job_queue(customer, machine, trigger=JobTrigger.SCHEDULE).state == JobState.QUEUED


def test_a_row_written_behind_the_services_back_is_still_a_conflict(customer, agent, machine):
    """The service does not look first: the database constraint decides (IntegrityError)."""
    other = ReplicationJob.objects.create(
        customer=customer, machine=machine, agent=agent, trigger="agent", state="running"
    )
    with pytest.raises(JobError) as exc:
        job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    assert (exc.value.code, exc.value.job) == ("conflict", other)


@pytest.mark.django_db(transaction=True)
def test_racing_creators_make_exactly_one_job(customer, agent, machine):
    """Eight threads create a job for one machine at the same moment: one wins."""
    barrier = threading.Barrier(8)
    results = []

    def create(i):
        try:
            barrier.wait()
            if i % 2:
                results.append(job_queue(customer, machine, trigger=JobTrigger.SCHEDULE).pk)
            else:
                results.append(job_start_for_agent(customer, agent, machine).pk)
        except JobError as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1, results
    assert sorted(r for r in results if not isinstance(r, int)) == ["conflict"] * 7
    assert ReplicationJob.objects.for_customer(customer).get().pk == winners[0]


# --- Taking and starting -------------------------------------------------------------------


def test_take_next_starts_the_oldest_queued_job_of_the_agent(customer, agent):
    machines = [
        MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)
        for _ in range(2)
    ]
    first = job_queue(customer, machines[1], trigger=JobTrigger.SCHEDULE)
    second = job_queue(customer, machines[0], trigger=JobTrigger.SCHEDULE)
    ReplicationJob.objects.for_customer(customer).filter(pk=second.pk).update(
        created_at=first.created_at + timedelta(seconds=1)
    )
    taken = job_take_next(customer, agent)
    assert taken.pk == first.pk
    assert taken.state == JobState.RUNNING
    assert taken.started_at is not None and taken.last_progress_at == taken.started_at
    assert job_take_next(customer, agent).pk == second.pk
    assert job_take_next(customer, agent) is None


def test_take_next_never_hands_out_another_agents_job(customer, other_customer, machine):
    job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    assert job_take_next(customer, make_agent(customer)) is None
    assert job_take_next(other_customer, make_agent(other_customer)) is None


def test_first_job_is_the_initial_sync_later_ones_replicate(customer, agent, machine):
    job = started(customer, agent, machine)
    assert machine_row(machine).status == MachineStatus.INITIAL_SYNC
    succeed(job)
    assert machine_row(machine).status == MachineStatus.IN_SYNC
    started(customer, agent, machine)
    assert machine_row(machine).status == MachineStatus.REPLICATING


def test_start_for_agent_runs_at_once(customer, agent, machine):
    job = job_start_for_agent(customer, agent, machine)
    assert (job.state, job.trigger, job.agent_id) == (JobState.RUNNING, "agent", agent.pk)
    assert machine_row(machine).status == MachineStatus.INITIAL_SYNC


def test_start_for_agent_refuses_other_agents_and_unprotected_machines(customer, agent, machine):
    with pytest.raises(JobError) as exc:
        job_start_for_agent(customer, make_agent(customer), machine)
    assert exc.value.code == "not_found"
    Machine.objects.for_customer(customer).filter(pk=machine.pk).update(
        status=MachineStatus.UNPROTECTED
    )
    machine.refresh_from_db()
    with pytest.raises(JobError) as exc:
        job_start_for_agent(customer, agent, machine)
    assert exc.value.code == "not_protected"
    assert not ReplicationJob.objects.for_customer(customer).exists()


# --- Progress ------------------------------------------------------------------------------


def test_progress_records_counters_and_the_commit_phase(customer, agent, machine):
    job = started(customer, agent, machine)
    before = job.last_progress_at
    job = job_progress(job, phase="reading disk-1", bytes_done=10, bytes_total=100, bytes_read=10)
    assert (job.state, job.phase, job.bytes_done, job.bytes_total) == (
        "running",
        "reading disk-1",
        10,
        100,
    )
    assert job.percent == 10
    assert job.last_progress_at > before
    job = job_progress(job, phase="committing", bytes_done=100)
    assert (job.state, job.bytes_total, job.percent) == (JobState.COMMITTING, 100, 100)
    # A machine commits disk by disk: the next disk's reading is running again.
    job = job_progress(job, phase="reading disk-2", bytes_sent=5, new_chunks=1)
    assert (job.state, job.bytes_sent, job.new_chunks) == (JobState.RUNNING, 5, 1)


@pytest.mark.parametrize("bad", [-1, 2**63, "5", 1.5, True])
def test_progress_refuses_bad_counters_and_changes_nothing(customer, agent, machine, bad):
    job = started(customer, agent, machine)
    job_progress(job, bytes_done=1)
    with pytest.raises(JobError) as exc:
        job_progress(job, phase="committing", bytes_done=2, bytes_sent=bad)
    assert exc.value.code == "invalid"
    assert "bytes_sent" in exc.value.message
    job.refresh_from_db()
    assert (job.state, job.bytes_done, job.bytes_sent) == (JobState.RUNNING, 1, 0)


def test_progress_on_a_job_that_is_not_running_is_refused(customer, agent, machine):
    queued = job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    with pytest.raises(JobError) as exc:
        job_progress(queued, bytes_done=1)
    assert exc.value.code == "not_running"
    job = job_take_next(customer, agent)
    job_fail(job, "disk vanished")
    with pytest.raises(JobError) as exc:
        job_progress(job, bytes_done=1)
    assert exc.value.code == "not_running"
    assert exc.value.message == f"Job {job.pk} is failed: disk vanished"


# --- Results -------------------------------------------------------------------------------


def test_success_needs_the_jobs_own_snapshots(customer, agent, machine):
    job = started(customer, agent, machine)
    with pytest.raises(JobError) as exc:
        job_finish(job, succeeded=True, snapshot_ids=[])
    assert exc.value.code == "invalid"
    other_machine = MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)
    foreign = snapshot_for(started(customer, agent, other_machine))
    with pytest.raises(JobError) as exc:
        job_finish(job, succeeded=True, snapshot_ids=[foreign.pk])
    assert exc.value.code == "invalid"
    assert str(foreign.pk) in exc.value.message
    assert state_of(job) == JobState.RUNNING


def test_success_sets_in_sync_and_last_replicated_from_the_snapshot_time(customer, agent, machine):
    job = started(customer, agent, machine)
    taken = job.started_at - timedelta(minutes=7)  # the source snapshot's moment
    snapshot = snapshot_for(job, taken_at=taken)
    job = job_finish(job, succeeded=True, snapshot_ids=[snapshot.pk], bytes_read=9, new_chunks=0)
    assert (job.state, job.bytes_read, job.error_message) == (JobState.SUCCEEDED, 9, "")
    assert job.finished_at is not None and not job.is_active
    row = machine_row(machine)
    assert (row.status, row.status_message) == (MachineStatus.IN_SYNC, "")
    assert row.last_replicated_at == taken == snapshot.created_at


def test_the_same_result_twice_answers_the_same_job(customer, agent, machine):
    job = started(customer, agent, machine)
    snapshot = snapshot_for(job)
    first = job_finish(job, succeeded=True, snapshot_ids=[snapshot.pk])
    again = job_finish(job, succeeded=True, snapshot_ids=[str(snapshot.pk)])
    assert again.pk == first.pk and again.finished_at == first.finished_at
    with pytest.raises(JobError) as exc:  # a different result after the first one
        job_finish(job, succeeded=False, error="late failure")
    assert exc.value.code == "not_running"
    assert state_of(job) == JobState.SUCCEEDED


def test_failure_needs_a_message_and_puts_the_machine_in_error(customer, agent, machine):
    job = started(customer, agent, machine)
    with pytest.raises(JobError) as exc:
        job_finish(job, succeeded=False, error="   ")
    assert exc.value.code == "invalid"
    job = job_finish(job, succeeded=False, error="  Disk /dev/sdb unreadable  ")
    assert (job.state, job.error_message) == (JobState.FAILED, "Disk /dev/sdb unreadable")
    row = machine_row(machine)
    assert (row.status, row.status_message) == (MachineStatus.ERROR, "Disk /dev/sdb unreadable")
    assert row.last_replicated_at is None
    assert job_finish(job, succeeded=False, error="again").state == JobState.FAILED


def test_a_result_for_a_cancelled_job_is_refused(customer, agent, machine):
    job = started(customer, agent, machine)
    job_cancel(customer, job)
    with pytest.raises(JobError) as exc:
        job_finish(job, succeeded=False, error="stopped")
    assert exc.value.code == "not_running"
    assert "cancelled" in exc.value.message


def test_the_next_success_clears_the_error(customer, agent, machine):
    job_finish(started(customer, agent, machine), succeeded=False, error="network down")
    assert machine_row(machine).status == MachineStatus.ERROR
    job = started(customer, agent, machine)
    assert machine_row(machine).status == MachineStatus.INITIAL_SYNC  # never replicated yet
    succeed(job)
    row = machine_row(machine)
    assert (row.status, row.status_message) == (MachineStatus.IN_SYNC, "")


# --- Cancel --------------------------------------------------------------------------------


def test_cancel_a_queued_job(customer, agent, machine):
    job = job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    job = job_cancel(customer, job)
    assert (job.state, job.cancel_requested) == (JobState.CANCELLED, True)
    assert machine_row(machine).status == MachineStatus.PROTECTED
    # The agent never started it: nothing to tell it.
    assert jobs_to_cancel(customer, agent) == []
    assert job_take_next(customer, agent) is None


def test_cancel_a_running_job_tells_its_agent(customer, agent, machine):
    job = started(customer, agent, machine)
    job_cancel(customer, job)
    assert state_of(job) == JobState.CANCELLED
    assert jobs_to_cancel(customer, agent) == [job.pk]
    assert jobs_to_cancel(customer, make_agent(customer)) == []
    # The agent's next progress call learns it (409 in the API).
    with pytest.raises(JobError) as exc:
        job_progress(job, bytes_done=5)
    assert exc.value.code == "not_running"
    # The machine had never replicated: back to Protected.
    assert machine_row(machine).status == MachineStatus.PROTECTED


def test_cancel_returns_the_machine_to_its_previous_state(customer, agent, machine):
    succeed(started(customer, agent, machine))
    job_cancel(customer, started(customer, agent, machine))
    assert machine_row(machine).status == MachineStatus.IN_SYNC

    job_finish(started(customer, agent, machine), succeeded=False, error="quota exceeded")
    job_cancel(customer, started(customer, agent, machine))
    row = machine_row(machine)
    # The last replication failed; cancelling the retry does not make the machine look fine.
    assert (row.status, row.status_message) == (MachineStatus.ERROR, "quota exceeded")


def test_a_committing_job_cannot_be_cancelled(customer, agent, machine):
    job = started(customer, agent, machine)
    job_progress(job, phase="committing")
    with pytest.raises(JobError) as exc:
        job_cancel(customer, job)
    assert exc.value.code == "not_running"
    assert "committing" in exc.value.message
    assert state_of(job) == JobState.COMMITTING


def test_cancel_with_a_stale_copy_does_not_interrupt_a_commit(customer, agent, machine):
    job = started(customer, agent, machine)
    stale = ReplicationJob.objects.for_customer(customer).get(pk=job.pk)
    job_progress(job, phase="committing")  # the agent moved on since the page was read
    assert stale.state == JobState.RUNNING
    with pytest.raises(JobError) as exc:
        job_cancel(customer, stale)
    assert "committing" in exc.value.message
    assert state_of(job) == JobState.COMMITTING


def test_cancel_of_a_finished_or_foreign_job_is_refused(customer, other_customer, agent, machine):
    job = started(customer, agent, machine)
    job_fail(job, "boom")
    with pytest.raises(JobError) as exc:
        job_cancel(customer, job)
    assert exc.value.code == "not_running"
    job2 = job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    with pytest.raises(JobError) as exc:
        job_cancel(other_customer, job2)
    assert exc.value.code == "not_found"
    assert state_of(job2) == JobState.QUEUED


# --- Paused and unprotected machines -------------------------------------------------------


def test_a_paused_machine_stays_paused_through_its_job(customer, agent, machine):
    job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    Machine.objects.for_customer(customer).filter(pk=machine.pk).update(status=MachineStatus.PAUSED)
    job = job_take_next(customer, agent)
    assert machine_row(machine).status == MachineStatus.PAUSED
    taken = job.started_at - timedelta(minutes=1)
    job_finish(job, succeeded=True, snapshot_ids=[snapshot_for(job, taken).pk])
    row = machine_row(machine)
    # Still paused, but the snapshot exists: RPO is measured from it.
    assert (row.status, row.last_replicated_at) == (MachineStatus.PAUSED, taken)


def test_a_job_ending_after_stop_protection_leaves_the_machine_unprotected(
    customer, agent, machine
):
    job = started(customer, agent, machine)
    job_progress(job, phase="committing")  # committing jobs are not cancelled by Stop
    changed, _ = machines_stop_protection(customer, [machine])
    assert changed == 1
    assert state_of(job) == JobState.COMMITTING
    succeed(job)
    row = machine_row(machine)
    assert row.status == MachineStatus.UNPROTECTED
    assert row.last_replicated_at is not None


def test_stop_protection_cancels_queued_and_running_jobs(customer, agent):
    queued_machine, running_machine, idle_machine = (
        MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)
        for _ in range(3)
    )
    running = started(customer, agent, running_machine)
    queued = job_queue(customer, queued_machine, trigger=JobTrigger.SCHEDULE)
    Machine.objects.for_customer(customer).filter(pk=running_machine.pk).update(
        next_run_at=timezone.now()
    )
    changed, skipped = machines_stop_protection(
        customer, [queued_machine, running_machine, idle_machine]
    )
    assert (changed, skipped) == (3, 0)
    assert state_of(queued) == state_of(running) == JobState.CANCELLED
    assert jobs_to_cancel(customer, agent) == [running.pk]
    for m in (queued_machine, running_machine, idle_machine):
        row = machine_row(m)
        assert (row.status, row.next_run_at) == (MachineStatus.UNPROTECTED, None)


def test_jobs_cancel_for_machines_only_touches_the_given_customers_jobs(
    customer, other_customer, machine
):
    other_agent = make_agent(other_customer)
    other_machine = MachineFactory(
        customer=other_customer, status=MachineStatus.PROTECTED, agent=other_agent
    )
    foreign = job_queue(other_customer, other_machine, trigger=JobTrigger.MANUAL)
    mine = job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    assert jobs_cancel_for_machines(customer, [machine.pk, other_machine.pk]) == 1
    assert state_of(mine) == JobState.CANCELLED
    assert state_of(foreign) == JobState.QUEUED


# --- Server-side failures ------------------------------------------------------------------


def test_stuck_jobs_fail_and_live_ones_do_not(customer, agent):
    machines = [
        MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)
        for _ in range(4)
    ]
    now = timezone.now()
    stuck_running = started(customer, agent, machines[0])
    stuck_committing = started(customer, agent, machines[1])
    job_progress(stuck_committing, phase="committing")
    never_reported = started(customer, agent, machines[2])
    alive = started(customer, agent, machines[3])
    jobs = ReplicationJob.objects.for_customer(customer)
    jobs.filter(pk__in=[stuck_running.pk, stuck_committing.pk]).update(
        last_progress_at=now - timedelta(minutes=31)
    )
    jobs.filter(pk=never_reported.pk).update(
        last_progress_at=None, started_at=now - timedelta(hours=2)
    )
    jobs.filter(pk=alive.pk).update(last_progress_at=now - timedelta(minutes=29))
    queued_machine = MachineFactory(customer=customer, status=MachineStatus.PROTECTED, agent=agent)
    queued = job_queue(customer, queued_machine, trigger=JobTrigger.SCHEDULE)
    jobs.filter(pk=queued.pk).update(created_at=now - timedelta(days=3))

    assert jobs_fail_stuck(now, timedelta(minutes=30)) == 3
    for job in (stuck_running, stuck_committing, never_reported):
        job.refresh_from_db()
        assert job.state == JobState.FAILED
        assert job.error_message == "No progress from the agent for 30 minutes; the job was failed."
        row = machine_row(job.machine)
        assert (row.status, row.status_message) == (MachineStatus.ERROR, job.error_message)
    assert state_of(alive) == JobState.RUNNING
    assert state_of(queued) == JobState.QUEUED  # queued jobs are the reconciler's business
    assert jobs_fail_stuck(now, timedelta(minutes=30)) == 0  # idempotent


def test_progress_landing_between_search_and_write_keeps_the_job_alive(customer, agent, machine):
    """The stuck check found the job, then the agent's progress arrived before the failing
    UPDATE ran: the UPDATE re-checks "no progress" and leaves the job running."""
    job = started(customer, agent, machine)
    now = timezone.now()
    jobs = ReplicationJob.objects.for_customer(customer).filter(pk=job.pk)
    jobs.update(last_progress_at=now - timedelta(hours=1))
    landed = []

    def agent_reports_first(execute, sql, params, many, context):
        failing = sql.startswith('UPDATE "protection_replicationjob" SET "state"')
        if failing and not landed:
            landed.append(sql)
            jobs.update(last_progress_at=timezone.now())  # the agent's progress call
        return execute(sql, params, many, context)

    with connection.execute_wrapper(agent_reports_first):
        assert jobs_fail_stuck(now, timedelta(minutes=30)) == 0
    assert landed, "the failing UPDATE never ran"
    assert state_of(job) == JobState.RUNNING
    assert machine_row(machine).status == MachineStatus.INITIAL_SYNC


def test_job_fail_respects_the_states_it_is_given(customer, agent, machine):
    job = started(customer, agent, machine)
    assert job_fail(job, "queue timeout", from_states=(JobState.QUEUED,)) is False
    assert state_of(job) == JobState.RUNNING
    assert job_fail(job, "agent removed") is True
    assert job_fail(job, "again") is False
    job.refresh_from_db()
    assert job.error_message == "agent removed"


def test_jobs_of_another_customer_are_never_seen(customer, other_customer, agent, machine):
    job = job_queue(customer, machine, trigger=JobTrigger.MANUAL)
    stranger = make_agent(other_customer)
    assert job_take_next(other_customer, stranger) is None
    assert jobs_to_cancel(other_customer, stranger) == []
    assert state_of(job) == JobState.QUEUED
