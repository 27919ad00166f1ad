"""The reconciler: what a lost message or a worker that died between two writes left behind."""

from datetime import timedelta

import pytest
from django.utils import timezone

from acura_portal.tasks import reconcile_jobs
from clouds.models import Agent, AgentStatus
from protection.models import JobState, JobTrigger, Machine, MachineStatus, ReplicationJob
from protection.services.jobs import job_cancel, job_fail, job_queue, job_take_next
from protection.services.reconcile import jobs_reconcile
from storage.models import SessionState, UploadSession
from storage.services.job_sessions import sessions_abort_for_ended_jobs
from storage.services.sessions import session_open
from tests.factories import DiskFactory, MachineFactory

NOTHING = {"stuck_failed": 0, "unclaimed_failed": 0, "agentless_failed": 0, "machines_repaired": 0}


@pytest.fixture
def agent(customer):
    return Agent.objects.create(
        customer=customer,
        platform="linux",
        status=AgentStatus.ONLINE,
        last_seen_at=timezone.now(),
    )


def protected(customer, agent, **fields):
    fields = {"status": MachineStatus.PROTECTED, "agent": agent, **fields}
    return MachineFactory(customer=customer, **fields)


def syncing(customer, agent):
    """A machine as its first running job leaves it."""
    return protected(customer, agent, status=MachineStatus.INITIAL_SYNC)


def job_row(job) -> ReplicationJob:
    return ReplicationJob.objects.for_customer(job.customer_id).get(pk=job.pk)


def machine_row(machine) -> Machine:
    return Machine.objects.for_customer(machine.customer_id).get(pk=machine.pk)


def make_job(machine, state, *, age=timedelta(0), **fields):
    created = timezone.now() - age
    return ReplicationJob.objects.create(
        customer=machine.customer,
        machine=machine,
        agent=machine.agent,
        trigger=JobTrigger.SCHEDULE,
        state=state,
        created_at=created,
        **fields,
    )


# --- Jobs ------------------------------------------------------------------------------------


def test_stuck_jobs_fail_after_job_stuck_minutes(customer, agent, settings):
    settings.JOB_STUCK_MINUTES = 10
    now = timezone.now()
    stuck = make_job(
        syncing(customer, agent), JobState.RUNNING, last_progress_at=now - timedelta(minutes=11)
    )
    alive = make_job(
        syncing(customer, agent), JobState.RUNNING, last_progress_at=now - timedelta(minutes=9)
    )
    assert jobs_reconcile(now) == {**NOTHING, "stuck_failed": 1}
    assert job_row(stuck).state == JobState.FAILED
    assert "No progress from the agent for 10 minutes" in job_row(stuck).error_message
    assert job_row(alive).state == JobState.RUNNING
    assert machine_row(stuck.machine).status == MachineStatus.ERROR
    assert machine_row(alive.machine).status == MachineStatus.INITIAL_SYNC


def test_queued_jobs_nobody_took_fail_after_the_queue_timeout(customer, agent, settings):
    settings.JOB_QUEUE_TIMEOUT_HOURS = 6
    old = make_job(protected(customer, agent), JobState.QUEUED, age=timedelta(hours=7))
    young = make_job(protected(customer, agent), JobState.QUEUED, age=timedelta(hours=5))
    # Created long ago but taken since: the agent works on it, the queue timeout is over.
    taken = make_job(
        protected(customer, agent, status=MachineStatus.INITIAL_SYNC),
        JobState.RUNNING,
        age=timedelta(hours=8),
        last_progress_at=timezone.now(),
    )
    assert jobs_reconcile() == {**NOTHING, "unclaimed_failed": 1}
    row = job_row(old)
    assert row.state == JobState.FAILED
    assert row.error_message == (
        "No agent took the job within 6 hours (is the agent offline?); the job was failed."
    )
    machine = machine_row(old.machine)
    assert (machine.status, machine.status_message) == (MachineStatus.ERROR, row.error_message)
    assert job_row(young).state == JobState.QUEUED
    assert job_row(taken).state == JobState.RUNNING


def test_jobs_of_a_removed_agent_fail(customer, agent):
    queued = job_queue(customer, protected(customer, agent), trigger=JobTrigger.SCHEDULE)
    survivor_agent = Agent.objects.create(customer=customer, platform="linux")
    other = job_queue(customer, protected(customer, survivor_agent), trigger=JobTrigger.MANUAL)
    agent.delete()  # the admin removed it (the service refuses while jobs are active)
    assert jobs_reconcile() == {**NOTHING, "agentless_failed": 1}
    assert job_row(queued).state == JobState.FAILED
    assert job_row(queued).error_message == "The agent of this job was removed; the job was failed."
    assert job_row(other).state == JobState.QUEUED


# --- Machine statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_state", "replicated", "expected"),
    [
        (None, False, MachineStatus.PROTECTED),
        (JobState.SUCCEEDED, True, MachineStatus.IN_SYNC),
        (JobState.FAILED, False, MachineStatus.ERROR),
        # A cancelled job changed nothing: the one before it decides.
        (JobState.CANCELLED, True, MachineStatus.IN_SYNC),
    ],
)
def test_a_machine_left_replicating_without_a_job_gets_its_last_outcome(
    customer, agent, last_state, replicated, expected
):
    shown = MachineStatus.REPLICATING if replicated else MachineStatus.INITIAL_SYNC
    last = timezone.now() - timedelta(hours=1) if replicated else None
    machine = protected(customer, agent, status=shown, last_replicated_at=last)
    if replicated:
        make_job(machine, JobState.SUCCEEDED, age=timedelta(hours=2))
    if last_state is not None:
        make_job(machine, last_state, age=timedelta(hours=1), error_message="disk gone")
    assert jobs_reconcile() == {**NOTHING, "machines_repaired": 1}
    row = machine_row(machine)
    assert row.status == expected
    assert row.status_message == ("disk gone" if expected == MachineStatus.ERROR else "")
    assert jobs_reconcile() == NOTHING


def test_a_machine_whose_job_runs_shows_it(customer, agent):
    fresh = protected(customer, agent, status=MachineStatus.PROTECTED)
    make_job(fresh, JobState.RUNNING, last_progress_at=timezone.now())
    synced = protected(
        customer, agent, status=MachineStatus.ERROR, last_replicated_at=timezone.now()
    )
    make_job(synced, JobState.COMMITTING, last_progress_at=timezone.now())
    waiting = protected(customer, agent, status=MachineStatus.IN_SYNC)
    make_job(waiting, JobState.QUEUED)  # queued is not replicating yet
    assert jobs_reconcile() == {**NOTHING, "machines_repaired": 2}
    assert machine_row(fresh).status == MachineStatus.INITIAL_SYNC
    assert machine_row(synced).status == MachineStatus.REPLICATING
    assert machine_row(waiting).status == MachineStatus.IN_SYNC


def test_consistent_paused_and_unprotected_machines_are_left_alone(customer, agent):
    running = protected(customer, agent)
    job_queue(customer, running, trigger=JobTrigger.SCHEDULE)
    job_take_next(customer, agent)
    paused = protected(customer, agent, status=MachineStatus.PAUSED)
    make_job(paused, JobState.RUNNING, last_progress_at=timezone.now())
    unprotected = protected(customer, agent, status=MachineStatus.UNPROTECTED)
    make_job(unprotected, JobState.FAILED)
    assert jobs_reconcile() == NOTHING
    assert machine_row(running).status == MachineStatus.INITIAL_SYNC
    assert machine_row(paused).status == MachineStatus.PAUSED
    assert machine_row(unprotected).status == MachineStatus.UNPROTECTED


# --- Upload sessions of ended jobs (storage's half, through the task) ---------------------------


def open_session(job):
    disk = DiskFactory(machine=job.machine, customer=job.machine.customer)
    session, _ = session_open(job.customer, job.machine, disk, job=job)
    return session


def session_state(session) -> str:
    return UploadSession.objects.for_customer(session.customer_id).get(pk=session.pk).state


def test_open_sessions_of_ended_jobs_are_aborted_after_a_grace(customer, agent):
    def running_job():
        machine = protected(customer, agent)
        job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
        return job_take_next(customer, agent)

    failed, cancelled, fresh, alive = (running_job() for _ in range(4))
    sessions = {
        name: open_session(job)
        for name, job in [
            ("failed", failed),
            ("cancelled", cancelled),
            ("fresh", fresh),
            ("alive", alive),
        ]
    }
    job_fail(failed, "agent died")
    job_cancel(customer, cancelled)
    job_fail(fresh, "just now")
    ReplicationJob.objects.for_customer(customer).filter(pk__in=[failed.pk, cancelled.pk]).update(
        finished_at=timezone.now() - timedelta(minutes=3)
    )
    summary = reconcile_jobs.apply().get()
    assert summary == {**NOTHING, "sessions_aborted": 2}
    assert session_state(sessions["failed"]) == SessionState.ABORTED
    row = UploadSession.objects.for_customer(customer).get(pk=sessions["cancelled"].pk)
    assert (row.state, row.error) == (
        SessionState.ABORTED,
        f"Its replication job {cancelled.pk} ended (cancelled).",
    )
    # The agent of a job that ended a moment ago may still abort on its own.
    assert session_state(sessions["fresh"]) == SessionState.OPEN
    assert session_state(sessions["alive"]) == SessionState.OPEN
    assert reconcile_jobs.apply().get()["sessions_aborted"] == 0


def test_a_session_the_next_job_resumed_is_not_aborted(customer, agent):
    machine = protected(customer, agent)
    job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    first = job_take_next(customer, agent)
    session = open_session(first)
    job_fail(first, "agent killed")
    job_queue(customer, machine, trigger=JobTrigger.SCHEDULE)
    second = job_take_next(customer, agent)
    disk = session.disk
    resumed, was_resumed = session_open(customer, machine, disk, job=second)
    assert was_resumed and resumed.pk == session.pk
    later = timezone.now() + timedelta(hours=1)
    assert sessions_abort_for_ended_jobs(later) == 0
    assert session_state(session) == SessionState.OPEN
